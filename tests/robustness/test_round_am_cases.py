"""Round AM of bad inputs (issue 28): images left out for the case of their suffix,
failed trainings' work dirs, unlabelled images named by another case, empty parents of
a failed output, a resume past the end, a wrong COCO width."""
import os
import os.path as osp
import shutil

import pytest
from conftest import REPO, run_tool

SHAPES = osp.join(REPO, 'custom_configs', 'demo', 'fcn_r18-tiny_shapes-64x80.py')


def _options(root, iters=1):
    return [f'{s}_dataloader.dataset.data_root={root}' for s in ('train', 'val', 'test')] + [
        f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
        f'default_hooks.checkpoint.interval={iters}']


def _upper_case(root):
    """``0001.png`` of train and val renamed ``0001.PNG`` (labels unchanged)."""
    for split in ('train', 'val'):
        os.rename(osp.join(root, 'images', split, '0001.png'),
                  osp.join(root, 'images', split, '0001.PNG'))


def test_an_image_whose_suffix_differs_in_case_is_not_left_out(tmp_path, shapes_root):
    """AM-4 (silent-wrong): with ``img_suffix='.png'``, mmseg's folder data set does not
    list ``0001.PNG``: train.py trained on 5 of 6 images, test.py scored 2 of 3, cv.py
    made its folds without it, while inference and kfold took it. Each refuses now,
    naming the file, before anything is trained or scored."""
    from mmseg_ext.training.image_suffix_case import check_suffix_case
    from mmseg_ext.utils.errors import DataError
    root = shutil.copytree(shapes_root, tmp_path / 'ds')
    _upper_case(root)
    expected = f"{root}/images/train/0001.PNG: its suffix differs in case from the data " \
               "set's img_suffix '.png'"
    proc = run_tool('tools/train.py', SHAPES, '--work-dir', str(tmp_path / 'w'),
                    '--cfg-options', *_options(root))
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1].startswith(f'error: {expected}')
    assert not (tmp_path / 'w').exists()  # refused before the first iteration (AM-2 too)
    proc = run_tool('tools/cv.py', SHAPES, '-k', '2', '--work-dir', str(tmp_path / 'cv'),
                    '--no-progress', '--cfg-options', *_options(root))
    assert proc.returncode == 1 and expected in proc.stderr.strip().splitlines()[-1], \
        proc.stderr[-2000:]
    assert not (tmp_path / 'cv').exists()
    # the validation set of a test run, through mmseg's own data set
    from mmengine.config import Config

    from mmseg_ext import register_all_modules
    from mmseg_ext.workflows.cross_validation.pool import build_dataset
    register_all_modules()
    cfg = Config.fromfile(SHAPES)
    val = dict(cfg.val_dataloader.dataset.to_dict(), data_root=str(root), pipeline=[])
    dataset = build_dataset(val)
    assert len(dataset) == 2  # mmseg lists 2 of the 3 images
    with pytest.raises(DataError, match=f'{root}/images/val/0001.PNG: its suffix differs'):
        check_suffix_case(dataset)
    # the images renamed back: nothing to say
    for split in ('train', 'val'):
        os.rename(osp.join(root, 'images', split, '0001.PNG'),
                  osp.join(root, 'images', split, '0001.png'))
    check_suffix_case(build_dataset(val))


def test_a_training_that_fails_building_its_loaders_leaves_no_work_dir(tmp_path,
                                                                        shapes_root):
    """AM-2: an image folder misspelt in ``data_prefix`` failed when the runner built
    its training loader (a ``FileNotFoundError``, not a domain error), and the new work
    dir stayed with its lock, owner record, config dump and log folder."""
    proc = run_tool('tools/train.py', SHAPES, '--work-dir', str(tmp_path / 'a' / 'w'),
                    '--cfg-options', *_options(shapes_root),
                    'train_dataloader.dataset.data_prefix.img_path=images/trian')
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert 'images/trian' in proc.stderr.strip().splitlines()[-1]
    assert not (tmp_path / 'a').exists()  # nor the parent it made


@pytest.mark.parametrize('line,close', [
    ('train_dataloder = dict(batch_size=1)', 'train_dataloader'),
    ("val_evaluater = dict(type='IoUMetric', iou_metrics=['mDice'])", 'val_evaluator'),
    ('optim_wraper = dict(optimizer=dict(lr=0.1))', 'optim_wrapper'),
])
def test_a_misspelt_setting_in_a_config_file_is_refused(tmp_path, line, close):
    """AM-1 (silent-wrong): a misspelt top-level setting in a config file was ignored
    and the run used the base config's value, exit 0 (the same typo in --cfg-options
    was refused). A name one typo away from a setting is refused, naming both; the
    file's own variables, far from every setting, pass."""
    from mmseg_ext.config.loading import load_config
    from mmseg_ext.utils.errors import ConfigError
    config = tmp_path / 'typo.py'
    config.write_text(f"_base_ = ['{SHAPES}']\n{line}\n")
    with pytest.raises(ConfigError, match=f'typo.py: {line.split()[0]} is not a setting '
                       f'anything reads .* one typo away from {close}'):
        load_config(str(config))
    fine = tmp_path / 'fine.py'
    fine.write_text(f"_base_ = ['{SHAPES}']\nmy_scale = (64, 80)\n"
                    "test_pipeline = [dict(type='LoadImageFromFileChecked')]\n")
    load_config(str(fine))


def test_every_shipped_config_passes_the_spelling_check():
    """The check on every config of custom_configs/ (none holds a near-miss name)."""
    import glob

    from mmengine.config import Config

    from mmseg_ext.config.checks import check_top_level_spelling
    configs = sorted(glob.glob(osp.join(REPO, 'custom_configs', '**', '*.py'),
                               recursive=True))
    configs = [c for c in configs if '_base_' not in c.split(os.sep)]
    assert len(configs) > 20
    for config in configs:
        check_top_level_spelling(Config.fromfile(config), config)


def test_an_unlabelled_image_whose_suffix_differs_in_case_is_named_as_it_is(tmp_path,
                                                                           shapes_root):
    """AM-5: ``self_train.py`` listed ``UPPER.PNG`` (the listing ignores case), then failed
    after the runner was built on ``UPPER.png: cannot be read``, a file that does not
    exist. Refused before anything runs, naming the real file."""
    unl = tmp_path / 'unl'
    unl.mkdir()
    for i, name in enumerate(('a.png', 'UPPER.PNG')):
        shutil.copy(osp.join(shapes_root, 'images', 'val', sorted(os.listdir(
            osp.join(shapes_root, 'images', 'val')))[i]), unl / name)
    proc = run_tool('tools/self_train.py', SHAPES, SHAPES, '--unlabelled', str(unl),
                    '--img-suffix', '.png', '--work-dir', str(tmp_path / 'w'),
                    '--cfg-options', *_options(shapes_root))
    assert proc.returncode == 1, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {unl / 'UPPER.PNG'}: its suffix differs in case from "
                           "the image suffix '.png'"), last
    assert 'mmengine' not in proc.stderr  # before any runner
    assert not (tmp_path / 'w').exists()


def test_a_failed_output_leaves_no_parent_folders_it_made(tmp_path):
    """AM-6: ``inference.py``, ``pseudo_label.py`` and ``visualize.py overlay`` made the
    missing parents of ``--out-dir`` (``a1/a2/probs``) and left them, empty, when the run
    failed. Every staged output folder and every atomically written file removes the
    empty folders it made above it when nothing is published; a parent that existed, or
    that holds anything, stays."""
    from mmseg_ext.io.atomic import atomic_open
    from mmseg_ext.io.staged_dir import StagedDir
    (tmp_path / 'kept').mkdir()
    with pytest.raises(RuntimeError):
        with StagedDir(str(tmp_path / 'kept' / 'a1' / 'a2' / 'probs')) as staged:
            open(staged.file('x.txt'), 'w').close()
            raise RuntimeError('an input turned out bad')
    with pytest.raises(RuntimeError):
        with atomic_open(str(tmp_path / 'kept' / 'n1' / 'n2' / 'sub.csv')) as f:
            f.write('id\n')
            raise RuntimeError('an input turned out bad')
    assert os.listdir(tmp_path / 'kept') == []
    # a made parent that meanwhile holds a file of someone else's stays, with it
    with pytest.raises(RuntimeError):
        with StagedDir(str(tmp_path / 'kept' / 'b1' / 'probs')) as staged:
            (tmp_path / 'kept' / 'b1' / 'notes.txt').write_text('mine')
            raise RuntimeError('bad')
    assert os.listdir(tmp_path / 'kept' / 'b1') == ['notes.txt']
    # published: the parents stay with it
    with StagedDir(str(tmp_path / 'kept' / 'c1' / 'probs')) as staged:
        open(staged.file('index.json'), 'w').close()
        staged.commit()
    assert os.listdir(tmp_path / 'kept' / 'c1') == ['probs']


def test_inference_that_fails_leaves_no_parents(tmp_path, shapes_root):
    """AM-6 through the tool: a truncated image fails inference after its output folder's
    parents were made."""
    images = tmp_path / 'imgs'
    images.mkdir()
    src = osp.join(shapes_root, 'images', 'val')
    shutil.copy(osp.join(src, sorted(os.listdir(src))[0]), images / 'a.png')
    data = (images / 'a.png').read_bytes()
    (images / 'b.png').write_bytes(data[:len(data) // 2])
    proc = run_tool('tools/train.py', SHAPES, '--work-dir', str(tmp_path / 'w'),
                    '--cfg-options', *_options(shapes_root))
    assert proc.returncode == 0, proc.stderr[-2000:]
    proc = run_tool('tools/inference.py', SHAPES, str(tmp_path / 'w' / 'iter_1.pth'),
                    '--img-dir', str(images), '--out-dir', str(tmp_path / 'a1' / 'a2' / 'p'),
                    '--no-progress', '--cfg-options', *_options(shapes_root))
    assert proc.returncode == 1 and 'b.png' in proc.stderr.strip().splitlines()[-1], \
        proc.stderr[-2000:]
    assert not (tmp_path / 'a1').exists()


def test_resuming_past_the_end_of_the_schedule_is_refused(tmp_path, shapes_root):
    """AM-3: ``train.py --resume`` with ``train_cfg.max_iters`` below the checkpoint's
    iteration ended at once with exit 0: no training, no validation, no word. Refused,
    naming both numbers; resuming a finished run says there is nothing left."""
    work = tmp_path / 'w'
    proc = run_tool('tools/train.py', SHAPES, '--work-dir', str(work), '--cfg-options',
                    *_options(shapes_root, 2))
    assert proc.returncode == 0, proc.stderr[-2000:]
    before = sorted(os.listdir(work))
    proc = run_tool('tools/train.py', SHAPES, '--work-dir', str(work), '--resume',
                    '--cfg-options', *_options(shapes_root, 1))
    assert proc.returncode == 1, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert 'iter_2.pth: saved at iteration 2, past this run\'s train_cfg.max_iters=1' \
        in last, last
    assert sorted(os.listdir(work)) == before  # the refused run's log folder went
    proc = run_tool('tools/train.py', SHAPES, '--work-dir', str(work), '--resume',
                    '--cfg-options', *_options(shapes_root, 2))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'nothing left to train' in proc.stdout + proc.stderr


def test_a_wrong_coco_width_is_named_before_the_annotations_it_puts_outside(tmp_path):
    """AM-7: a COCO file recording an image 10 px wide (454 real) was refused for an
    annotation that "covers no pixel of the 10x373 image"; the width is the cause. With
    the images at hand (``coco_to_masks --img-root``, the data set), the size is named."""
    import json

    import cv2
    import numpy as np

    from mmseg_ext.datasets.coco_index import CocoFormatError
    from mmseg_ext.preparation.coco_to_masks import coco_to_masks
    images = tmp_path / 'images'
    images.mkdir()
    cv2.imwrite(str(images / 'a.png'), np.zeros((37, 45, 3), np.uint8))
    coco = dict(images=[dict(id=1, file_name='a.png', width=10, height=37)],
                categories=[dict(id=1, name='thing')],
                annotations=[dict(id=21, image_id=1, category_id=1, iscrowd=0,
                                  segmentation=[[30, 5, 40, 5, 40, 20, 30, 20]])])
    ann = tmp_path / 'ann.json'
    ann.write_text(json.dumps(coco))
    with pytest.raises(CocoFormatError, match=r'a.png: image is 45x37 .* but the annotation '
                       r'file says 10x37 \(image id 1\)'):
        coco_to_masks(str(ann), str(tmp_path / 'm'), img_root=str(images), progress=False)
    with pytest.raises(CocoFormatError, match='covers no pixel of the 10x37 image'):
        coco_to_masks(str(ann), str(tmp_path / 'm'), progress=False)  # no images: as before
    from mmseg_ext import register_all_modules
    from mmseg_ext.workflows.cross_validation.pool import build_dataset
    register_all_modules()
    with pytest.raises(CocoFormatError, match='image is 45x37'):
        build_dataset(dict(type='CocoSemanticDataset', ann_file=str(ann),
                           data_prefix=dict(img_path=str(images)),
                           metainfo=dict(classes=('Background', 'thing')), pipeline=[]))
    assert not (tmp_path / 'm').exists()


def test_the_suffix_check_reads_a_folder_with_a_link_loop_once(tmp_path):
    """The check walks the image folder as mmengine lists it (links followed, hidden
    files skipped); a link back to the folder is read once, not until the path is too
    long."""
    from mmseg_ext.training.image_suffix_case import check_suffix_case
    from mmseg_ext.utils.errors import DataError

    class Listed:
        img_suffix, ann_file = '.png', ''

        def __init__(self, folder, names):
            self.data_prefix = dict(img_path=str(folder))
            self.names = names

        def __len__(self):
            return len(self.names)

        def get_data_info(self, i):
            return dict(img_path=str(tmp_path / 'imgs' / self.names[i]))

    folder = tmp_path / 'imgs'
    (folder / 'sub').mkdir(parents=True)
    (folder / 'a.png').write_bytes(b'x')
    (folder / '.hidden.PNG').write_bytes(b'x')  # mmengine skips hidden files too
    (folder / 'sub' / 'loop').symlink_to(folder)
    check_suffix_case(Listed(folder, ['a.png']))
    (folder / 'sub' / 'b.PNG').write_bytes(b'x')
    with pytest.raises(DataError, match=r'sub/b.PNG: its suffix differs in case .*\(1 such'):
        check_suffix_case(Listed(folder, ['a.png']))


def test_an_image_given_as_a_label_map_is_called_one(tmp_path):
    """Round AK (AK-4): a re-encoded copy of the X-rays given as ``--gt`` was refused as
    "holds the label value 34, but there are 29 classes", and the user hunted a damaged
    label map. A refused map with as many values as a picture asks whether it is one;
    a label map of a few classes too many does not."""
    import numpy as np

    from mmseg_ext.io.ground_truth import check_label_values
    from mmseg_ext.utils.errors import DataError
    picture = np.arange(256, dtype=np.uint8).reshape(16, 16)
    with pytest.raises(DataError, match='holds 256 distinct values, as a picture does: an '
                       'image given as the labels'):
        check_label_values(picture, 29, 'x.png')
    few = np.array([[0, 1, 30, 31]], np.uint8)
    with pytest.raises(DataError) as info:
        check_label_values(few, 29, 'y.png')
    assert 'picture' not in str(info.value)
