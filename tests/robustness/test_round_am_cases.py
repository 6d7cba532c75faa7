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
