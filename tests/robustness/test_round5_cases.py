"""The fifth round of bad inputs (session 14): each class fixed where it lives.

* ownership by tool, not by kind of output: a probability folder one tool wrote is not
  replaced by another tool's ``--force`` (:class:`mmseg_ext.io.staged_dir.StagedDir`);
* options that would be ignored or match nothing: ``visualize overlay --gt`` with no
  ground truth of these images, ``--thresholds`` on multi-class probabilities;
* list files resolved against the files there (:func:`mmseg_ext.io.images.read_image_list`):
  every image suffix in any case, an entry that names two images, the same image twice;
* output names of another format (``submission.png`` would get CSV text);
* sizes the data gives: a hard-voted run past its image, a confusion matrix of no pixel,
  a pipeline scale of 0;
* messages: no ``--force`` suggested where ``--force`` would be refused too, a file
  where a folder is expected named as such, fold counts naming the data they count.

Each refusal asserts the exit status, one ``error:`` line naming the problem, and that no
file changed.
"""
import os
import os.path as osp

import numpy as np
import pytest
from conftest import REPO
from probs_helpers import two_image_world, write_images, write_prob_folder

from mmseg_ext.utils.errors import DataError, OutputError

from .test_bad_inputs import CLASSES, run_main, snapshot
from .test_hostile_s11 import refused
from .test_round4_cases import PORT

JSRT = osp.join(REPO, 'custom_configs', 'jsrt',
                'unet-s5-tiny_multilabel_1xb4-1k_jsrt-chest-256x256.py')


@pytest.fixture
def world(tmp_path):
    return two_image_world(tmp_path, CLASSES, prob_folders=('probs', 'probs2'))


class ConstantPredictor:
    """A stand-in for :class:`~mmseg_ext.inference.ProbabilityPredictor`: 0.6 everywhere."""
    classes = tuple(CLASSES)
    task = 'multi-label'

    def predict(self, path, out_size):
        return np.full((2, 8, 8), 0.6, np.float32), (8, 8)


# ------------------------------------------------------------------ ownership by tool
def test_force_replaces_only_the_same_tools_probability_folder(world, tmp_path):
    from mmseg_ext.inference.predictor import infer_folder
    from mmseg_ext.io.probs import ProbFolder
    fused = tmp_path / 'fused'
    status, _ = run_main('ensemble.py', [world['probs'], world['probs2'], '--out-dir', fused,
                                         '--no-progress'])
    assert status == 0
    before = snapshot(str(fused))
    with pytest.raises(OutputError, match=r'another tool \(tools/ensemble.py\)'):
        infer_folder(ConstantPredictor(), world['imgs'], str(fused), force=True,
                     progress=False)
    assert snapshot(str(fused)) == before

    predicted = tmp_path / 'predicted'
    infer_folder(ConstantPredictor(), world['imgs'], str(predicted), progress=False)
    refused(world['root'], 'ensemble.py',
            [world['probs'], world['probs2'], '--out-dir', predicted, '--force',
             '--no-progress'], 1, 'another tool (tools/inference.py)')
    # the same tool replaces its own unchanged folder
    infer_folder(ConstantPredictor(), world['imgs'], str(predicted), force=True,
                 progress=False)
    assert ProbFolder(str(predicted)).keys() == ['ID1/a', 'ID1/b']


# ------------------------------------------------------------------ options matching nothing
def test_overlay_ground_truth_of_other_images_is_refused(world, tmp_path):
    other_gt = write_images(tmp_path / 'gt', {'ID9/zz.png': (8, 8)})
    refused(world['root'], 'visualize.py',
            ['overlay', world['probs'], '--img-dir', world['imgs'], '--gt',
             other_gt, '--out-dir', tmp_path / 'vis', '--no-progress'], 1,
            'no ground truth for any of the 2 images')


def test_overlay_thresholds_on_multiclass_probabilities_are_refused(tmp_path):
    probs = {'ID1/a.png': (np.full((2, 8, 8), 0.5, np.float32), (8, 8))}
    folder = write_prob_folder(tmp_path / 'mc', probs, CLASSES, task='multi-class')
    imgs = write_images(tmp_path / 'imgs', {'ID1/a.png': (8, 8)})
    refused(str(tmp_path), 'visualize.py',
            ['overlay', folder, '--img-dir', imgs, '--thresholds', '0.3',
             '--out-dir', tmp_path / 'vis', '--no-progress'], 1,
            'thresholds apply to multi-label probabilities only')


# ------------------------------------------------------------------ list files
def _touch(root, names):
    for name in names:
        path = osp.join(root, name)
        os.makedirs(osp.dirname(path), exist_ok=True)
        with open(path, 'wb') as f:
            f.write(b'x')
    return str(root)


@pytest.mark.parametrize('entries,expected', [
    ('a\nsub/b\nc\n', ['a.png', 'sub/b.JPG', 'c.jpeg']),      # any suffix, any case
    ('a.png\nc.jpeg\n', ['a.png', 'c.jpeg']),                 # full names
    ('x.png.png\n', ['x.png.png']),                           # the longer name in full
    ('x\n', ['x.png']),                                       # the stem of the shorter
])
def test_list_entries_resolve_to_the_one_image_they_name(tmp_path, entries, expected):
    from mmseg_ext.io.images import IMG_SUFFIXES, read_image_list
    root = _touch(tmp_path / 'imgs', ['a.png', 'sub/b.JPG', 'c.jpeg', 'x.png', 'x.png.png'])
    lst = tmp_path / 'list.txt'
    lst.write_text(entries)
    assert read_image_list(str(lst), IMG_SUFFIXES, root=root) == expected


@pytest.mark.parametrize('entries,words', [
    ('x.png\n', ['list.txt:1', 'x.png names 2 images', 'x.png, x.png.png']),
    ('a\nb\na.png\n', ['list.txt:3', 'a.png is the image of line 1 (a.png) again']),
    ('a\nnothere\n', ['list.txt:2', 'nothere: no such image', 'nothere{.png,.jpg']),
])
def test_list_entries_naming_two_images_one_twice_or_none_are_refused(tmp_path, entries,
                                                                      words):
    from mmseg_ext.io.images import IMG_SUFFIXES, read_image_list
    root = _touch(tmp_path / 'imgs', ['a.png', 'b.png', 'x.png', 'x.png.png'])
    lst = tmp_path / 'list.txt'
    lst.write_text(entries)
    with pytest.raises(DataError) as info:
        read_image_list(str(lst), IMG_SUFFIXES, root=root)
    for word in words:
        assert word in str(info.value)


# ------------------------------------------------------------------ output names
@pytest.mark.parametrize('tool,argv', [
    ('make_submission.py', lambda w, t: [w['probs'], '--format', 'handbone', '--out',
                                         t / 'sub.png', '--no-progress']),
    ('tune_thresholds.py', lambda w, t: [w['probs'], '--gt', w['imgs'], '--out',
                                         t / 'thr.csv', '--no-progress']),
])
def test_an_output_name_of_another_format_is_refused(world, tmp_path, tool, argv):
    refused(world['root'], tool, argv(world, tmp_path), 1, 'name of another format')


def test_hard_vote_output_name_and_run_past_the_image_end(world, tmp_path):
    rows = ''.join(f'a.png,{c},1 4\n' for c in CLASSES)
    past = ''.join(f'a.png,{c},60 10\n' for c in CLASSES)  # 60..69 of an 8x8 image
    a, b, c = (tmp_path / n for n in ('a.csv', 'b.csv', 'c.csv'))
    a.write_text('image_name,class,rle\n' + rows)
    other = rows.replace(f'a.png,{CLASSES[-1]},1 4', f'a.png,{CLASSES[-1]},2 3')
    b.write_text('image_name,class,rle\n' + ''.join(reversed(other.splitlines(True))))
    c.write_text('image_name,class,rle\n' + past)
    imgs = write_images(tmp_path / 'test', {'a.png': (8, 8)})
    refused(world['root'], 'ensemble.py',
            ['--csv', a, b, '--out', tmp_path / 'vote.png', '--no-progress'], 1,
            'vote.png', 'name of another format')
    refused(world['root'], 'ensemble.py',
            ['--csv', a, b, c, '--img-dir', imgs, '--out', tmp_path / 'vote.csv',
             '--no-progress'], 1, 'c.csv', 'a.png')
    status, lines = run_main('ensemble.py', ['--csv', a, b, '--img-dir', imgs, '--out',
                                             tmp_path / 'ok.csv', '--no-progress'])
    assert status == 0, lines
    assert (tmp_path / 'ok.csv').read_text().splitlines()[1] == f'a.png,{CLASSES[0]},1 4'


def test_a_confusion_matrix_of_no_pixel_is_refused(tmp_path):
    matrix = tmp_path / 'cm.npy'
    np.save(matrix, np.zeros((3, 3), np.int64))
    refused(str(tmp_path), 'visualize.py', ['confusion', '--matrix', matrix, '--out',
                                            tmp_path / 'cm.png'], 1, 'every cell is 0')


# ------------------------------------------------------------------ --force hints
def test_no_force_hint_where_force_would_be_refused_too(world, tmp_path):
    user = tmp_path / 'mine.csv'
    user.write_text('my notes\n')
    status, lines = run_main('make_submission.py', [world['probs'], '--format', 'handbone',
                                                    '--out', user, '--no-progress'])
    assert status == 1 and len(lines) == 1, lines
    assert 'was not written by this tool' in lines[0] and '--force' not in lines[0]
    assert user.read_text() == 'my notes\n'
    folder = tmp_path / 'a_folder'
    folder.mkdir()
    a, b = tmp_path / 'a.csv', tmp_path / 'b.csv'
    rows = [f'a.png,{c},1 4\n' for c in CLASSES]
    a.write_text('image_name,class,rle\n' + ''.join(rows))
    rows[-1] = rows[-1].replace(',1 4', ',2 3')  # another model's last row
    b.write_text('image_name,class,rle\n' + ''.join(reversed(rows)))
    status, lines = run_main('ensemble.py', ['--csv', a, b, '--out', folder,
                                             '--no-progress'])
    assert status == 1 and len(lines) == 1, lines
    assert 'is a folder, expected a file name' in lines[0] and '--force' not in lines[0]


def test_an_owned_output_without_force_still_suggests_it(world, tmp_path):
    out = tmp_path / 'sub.csv'
    argv = [world['probs'], '--format', 'handbone', '--out', out, '--no-progress']
    assert run_main('make_submission.py', argv)[0] == 0
    status, lines = run_main('make_submission.py', argv)
    assert status == 1 and 'already exists (use --force to replace it)' in lines[0]
    assert run_main('make_submission.py', argv + ['--force'])[0] == 0


# ------------------------------------------------------------------ files as folders
def test_a_file_given_as_a_folder_is_named_as_a_file(world, tmp_path):
    from mmseg_ext.io.images import list_images
    from mmseg_ext.io.output_errors import output_error
    from mmseg_ext.io.probs import ProbFolder
    a_file = tmp_path / 'a_file'
    a_file.write_text('x')
    for call in (lambda: list_images(str(a_file)), lambda: ProbFolder(str(a_file))):
        with pytest.raises(DataError, match='not a folder .a regular file.; expected the'):
            call()
    try:
        os.makedirs(str(a_file / 'sub'))
    except OSError as exc:
        message = str(output_error(str(a_file / 'sub'), exc))
    assert message.endswith(f'({a_file} is a file, not a folder)'), message


def test_more_folds_than_patients_names_the_data(tmp_path):
    from mmseg_ext.datasets.hand_bone import HandBoneDataset
    root = tmp_path / 'hb'
    write_images(root / 'DCM', {'ID1/a.png': (8, 8), 'ID2/b.png': (8, 8)})
    with pytest.raises(DataError) as info:
        HandBoneDataset(data_root=str(root), fold=0, num_folds=5, test_mode=True,
                        lazy_init=False, pipeline=[])
    message = str(info.value)
    assert message.startswith(str(root / 'DCM')) and 'num_folds=5' in message \
        and 'of the 2 listed images' in message


# ------------------------------------------------------------------ pipeline sizes
@pytest.mark.parametrize('scale', ['(0,0)', '(-5,10)', '0'])
def test_a_pipeline_scale_that_is_not_positive_is_named_as_the_config_value(scale):
    from mmseg_ext.config.loading import load_config
    from mmseg_ext.utils.errors import InvalidArgumentError
    key = 'test_dataloader.dataset.pipeline.1.scale'
    with pytest.raises(InvalidArgumentError, match=key.replace('.', r'\.') + ' is'):
        load_config(JSRT, {key: eval(scale)})


def test_a_pipeline_scale_in_the_config_file_names_the_file(tmp_path):
    from mmseg_ext.config.loading import load_config
    from mmseg_ext.utils.errors import ConfigError
    cfg = tmp_path / 'bad_scale.py'
    cfg.write_text(f"_base_ = ['{JSRT}']\n"
                   "test_dataloader = dict(dataset=dict(pipeline=[\n"
                   "    dict(type='LoadImageFromFileChecked'),\n"
                   "    dict(type='Resize', scale=(0, 256), keep_ratio=True),\n"
                   "    dict(type='PackMultiLabelSegInputs')]))\n")
    with pytest.raises(ConfigError, match=f'{cfg}: test_dataloader.dataset.pipeline.1.scale'):
        load_config(str(cfg))


# ------------------------------------------------------------------ round C (helper)
def _two_same_named(tmp_path):
    """Probabilities of ID1/a.png and ID2/a.png (2 classes, 8x8) and ground truth of
    ID2/a only."""
    rng = np.random.default_rng(7)
    pa, pb = (rng.random((2, 8, 8)).astype(np.float32) for _ in range(2))
    probs = write_prob_folder(tmp_path / 'p', {'ID1/a.png': (pa, (8, 8)),
                                               'ID2/a.png': (pb, (8, 8))}, CLASSES)
    imgs = write_images(tmp_path / 'i', {'ID1/a.png': (8, 8), 'ID2/a.png': (8, 8)})
    os.makedirs(tmp_path / 'gt' / 'ID2')
    np.save(tmp_path / 'gt' / 'ID2' / 'a.npy', pb > 0.5)
    return probs, imgs, str(tmp_path / 'gt'), pb


def test_ground_truth_of_another_folders_image_is_never_used(tmp_path):
    from mmseg_ext.io.ground_truth import GroundTruth
    probs, imgs, gt, _ = _two_same_named(tmp_path)
    refused(str(tmp_path), 'tune_thresholds.py', [probs, '--gt', gt, '--no-progress'], 1,
            'no ground truth for image ID1/a')
    status, _ = run_main('visualize.py', ['overlay', probs, '--img-dir', imgs, '--gt', gt,
                                          '--out-dir', tmp_path / 'v', '--no-progress'])
    assert status == 0
    truth = GroundTruth(gt, CLASSES)
    assert truth.find('ID1/a') is None and truth.find('ID2/a').endswith('ID2/a.npy')
    # by file stem still, where the folders agree as far as both go
    flat = tmp_path / 'flat'
    flat.mkdir()
    np.save(flat / 'a.npy', np.zeros((2, 8, 8), bool))
    nested = tmp_path / 'nested' / 'train' / 'ID1'
    nested.mkdir(parents=True)
    np.save(nested / 'a.npy', np.zeros((2, 8, 8), bool))
    assert GroundTruth(str(flat), CLASSES).find('ID1/a').endswith('flat/a.npy')
    assert GroundTruth(str(tmp_path / 'nested'), CLASSES).find('ID1/a').endswith(
        'train/ID1/a.npy')


def test_a_port_sample_naming_one_of_two_same_named_images_is_refused(tmp_path):
    probs = np.zeros((5, 8, 8), np.float32)
    probs[0] = 1.0
    folder = write_prob_folder(tmp_path / 'p8', {'ID1/a.png': (probs, (8, 8)),
                                                 'ID2/a.png': (probs, (8, 8))}, PORT,
                               task='multi-class')
    sample = tmp_path / 'sample.csv'
    sample.write_text('file_name,class,prediction\n' +
                      ''.join(f'a.png,{c},\n' for c in PORT[1:]))
    refused(str(tmp_path), 'make_submission.py',
            [folder, '--format', 'port', '--sample', sample, '--out', tmp_path / 's.csv',
             '--no-progress'], 1, 'two images are named a.png (ID1/a, ID2/a)')


@pytest.mark.parametrize('rows,words', [
    ('a.png,1,\na.png,container_truck,\n', [':3:', "already on line 2, there as '1'"]),
    ('a.png,01,\na.png,1,\n', [':3:', "(a.png, 1) already on line 2, there as '01'"]),
])
def test_a_port_sample_row_twice_is_judged_by_the_class_it_means(tmp_path, rows, words):
    probs = np.zeros((5, 8, 8), np.float32)
    probs[0] = 1.0
    folder = write_prob_folder(tmp_path / 'p', {'a.png': (probs, (8, 8))}, PORT,
                               task='multi-class')
    sample = tmp_path / 'sample.csv'
    sample.write_text('file_name,class,prediction\n' + rows)
    refused(str(tmp_path), 'make_submission.py',
            [folder, '--format', 'port', '--sample', sample, '--out', tmp_path / 's.csv',
             '--no-progress'], 1, *words)


def test_training_lines_of_scalars_json_are_never_charted(tmp_path):
    from mmseg_ext.visualization.charts import read_class_metrics
    scalars = tmp_path / 'scalars.json'
    scalars.write_text(
        '{"Dice.A": 80.0, "Dice.B": 60.0, "mDice": 70.0, "step": 100}\n'
        '{"IoU.A": 50.0, "IoU.B": 40.0, "step": 105}\n'
        '{"lr": 0.001, "loss": 0.5, "decode.loss_bce": 0.3, "decode.loss_dice": 0.2, '
        '"iter": 110, "step": 110}\n')
    assert read_class_metrics(str(scalars)) == {'IoU': {'A': 50.0, 'B': 40.0}}
    assert read_class_metrics(str(scalars), ['Dice']) == {'Dice': {'A': 80.0, 'B': 60.0}}
    status, lines = run_main('visualize.py', ['chart', scalars, '--metrics', 'Dice', '--out',
                                              tmp_path / 'c.png'])
    assert status == 0 and (tmp_path / 'c.png').is_file(), lines
    refused(str(tmp_path), 'visualize.py', ['chart', scalars, '--metrics', 'Acc', '--out',
                                            tmp_path / 'd.png'], 2,
            "no per-class ['Acc'] (has ['IoU'])")


def test_an_override_of_a_pipeline_variable_nothing_reads_is_refused():
    from mmseg_ext.config.loading import load_config
    from mmseg_ext.utils.errors import InvalidArgumentError
    with pytest.raises(InvalidArgumentError) as info:
        load_config(JSRT, {'test_pipeline.1.scale': (128, 128)})
    message = str(info.value)
    assert 'test_pipeline.1.scale' in message and \
        'override test_dataloader.dataset.pipeline.1.scale and ' \
        'val_dataloader.dataset.pipeline.1.scale instead' in message
    cfg = load_config(JSRT, {'test_dataloader.dataset.pipeline.1.scale': (128, 128)})
    assert tuple(cfg.test_dataloader.dataset.pipeline[1].scale) == (128, 128)


def test_check_classes_with_an_empty_name_and_a_missing_row(world, tmp_path):
    out = tmp_path / 'sub.csv'
    assert run_main('make_submission.py', [world['probs'], '--format', 'handbone', '--out',
                                           out, '--no-progress'])[0] == 0
    for spec in ('Trapezium,,Pisiform', 'Trapezium,Pisiform,'):
        refused(str(tmp_path), 'make_submission.py',
                ['--check', out, '--format', 'handbone', '--img-dir', world['imgs'],
                 '--classes', spec, '--no-progress'], 2, 'a class name is empty')
    lines = out.read_text().splitlines()
    missing = tmp_path / 'missing.csv'
    missing.write_text('\n'.join(lines[:1] + lines[2:]) + '\n')  # a.png's first class
    from conftest import run_tool
    proc = run_tool('tools/make_submission.py', '--check', str(missing), '--format',
                    'handbone', '--img-dir', world['imgs'], '--no-progress')
    text = proc.stdout + proc.stderr
    assert proc.returncode == 1
    assert "image a.png: missing classes ['Trapezium']" in text, text
    assert 'unknown class' not in text, text


# ------------------------------------------------------------------ round D (helper)
def _jpgs(root, names):
    """8x8 grey images of any file name (the bytes of the format the suffix says)."""
    import cv2
    for name in names:
        path = osp.join(str(root), name)
        os.makedirs(osp.dirname(path), exist_ok=True)
        ok, data = cv2.imencode(osp.splitext(name)[1].lower(),
                                np.full((8, 8, 3), 90, np.uint8))
        assert ok
        with open(path, 'wb') as f:
            f.write(data.tobytes())
    return str(root)


@pytest.mark.parametrize('names,suffix,words', [
    (['a.jpg', 'a.JPG', 'b.jpg', 'c.jpg', 'd.jpg'], '.jpg', ["have one split name 'a'"]),
    (['a\nb.png', 'a.png', 'b.png', 'c.png'], '.png', ['holds a line break']),
    ([' e.png', 'a.png', 'b.png', 'c.png'], '.png', ['white space']),
    (['#1.png', 'a.png', 'b.png', 'c.png'], '.png', ['begins with #']),
])
def test_kfold_refuses_names_its_split_files_cannot_hold(tmp_path, names, suffix, words):
    img = _jpgs(tmp_path / 'img', names)
    refused(str(tmp_path), 'kfold.py', ['folder', img, '--img-suffix', suffix, '--out',
                                        tmp_path / 'k', '-k', '2', '--no-progress'], 1,
            *words)


def test_kfold_handbone_refuses_two_images_of_one_stem(tmp_path):
    from mmseg_ext.preparation.synthetic import write_synthetic_handbone
    data = str(tmp_path / 'hb')
    write_synthetic_handbone(data, num_patients=2, size=(32, 32), progress=False)
    import shutil
    first = sorted(glob_pngs(f'{data}/train/DCM'))[0]
    shutil.copyfile(first, first[:-4] + '.PNG')
    refused(str(tmp_path), 'kfold.py', ['handbone', f'{data}/train', '--out',
                                        tmp_path / 'k', '-k', '2'], 1, 'one split name')


def glob_pngs(root):
    return [osp.join(d, f) for d, _, files in os.walk(root) for f in files
            if f.endswith('.png')]


def _coco():
    return dict(images=[dict(id=i, file_name=f'{i}.jpg', height=8, width=8)
                        for i in range(8)],
                annotations=[dict(id=i, image_id=i, category_id=1 + i % 2, iscrowd=0,
                                  area=4, bbox=[1, 1, 2, 2],
                                  segmentation=[[1, 1, 3, 1, 3, 3]]) for i in range(8)],
                categories=[dict(id=1, name='a'), dict(id=2, name='b')])


@pytest.mark.parametrize('change,words', [
    (lambda c: c['categories'].append(dict(id=1, name='c')), 'category id 1 appears twice'),
    (lambda c: c['images'][0].pop('id'), '"id" is None'),
    (lambda c: c['images'].append('x.jpg'), "images[8] is 'x.jpg', not an object"),
    (lambda c: c['annotations'].append(5), 'annotations[8] is'),
    (lambda c: c['categories'].append(3), 'categories[2] is'),
    (lambda c: c['images'][0].update(id=[1]), '"id" is [1]'),
    (lambda c: c['annotations'][0].update(image_id=[0]), '"image_id" is [0]'),
    (lambda c: c['images'][0].update(file_name=5), '"file_name" is 5, not text'),
])
@pytest.mark.parametrize('tool', ['kfold', 'coco_to_masks'])
def test_coco_structure_is_checked_where_the_file_is_read(tmp_path, change, words, tool):
    import json
    coco = _coco()
    change(coco)
    (tmp_path / 'ann').mkdir()
    path = tmp_path / 'ann' / 'c.json'
    path.write_text(json.dumps(coco))
    argv = (['coco', path, '--out', tmp_path / 'k', '-k', '2', '--no-progress']
            if tool == 'kfold' else [path, tmp_path / 'm', '--no-progress'])
    refused(str(tmp_path), f'{tool}.py', argv, 1, str(path), words)


def test_kfold_coco_lists_refuse_a_file_name_with_a_line_break(tmp_path):
    import json
    coco = _coco()
    coco['images'][1]['file_name'] = 'b\nc.jpg'
    path = tmp_path / 'c.json'
    path.write_text(json.dumps(coco))
    refused(str(tmp_path), 'kfold.py', ['coco', path, '--out', tmp_path / 'k', '-k', '2',
                                        '--lists', '--no-progress'], 1,
            'holds a line break')


def test_self_training_refuses_training_images_as_unlabelled(tmp_path):
    from conftest import run_tool

    from mmseg_ext.datasets.synthetic import make_shapes_dataset
    root = make_shapes_dataset(str(tmp_path / 'shapes'), num_train=2, num_val=2,
                               size=(32, 40), seed=1)
    shapes = osp.join(REPO, 'custom_configs', 'demo', 'fcn_r18-tiny_shapes-64x80.py')
    options = [f'{s}_dataloader.dataset.data_root={root}' for s in ('train', 'val', 'test')]
    proc = run_tool('tools/self_train.py', shapes, shapes, '--unlabelled',
                    f'{root}/images/train', '--img-suffix', '.png', '--work-dir',
                    str(tmp_path / 'w'), '--cfg-options', *options, 'train_cfg.max_iters=1')
    assert proc.returncode == 1, proc.stderr
    assert 'an unlabelled image is a training image' in proc.stderr.strip().splitlines()[-1]
    # refused under the work dir's lock, before any stage; the work dir this run made
    # held only its lock and manifest, and a refusal leaves nothing (round L)
    assert not osp.exists(tmp_path / 'w')


def test_a_threshold_search_range_that_admits_no_level_says_why(world, tmp_path):
    refused(world['root'], 'tune_thresholds.py', [world['probs'], '--gt', world['imgs'],
                                                  '--search', '1', '1', '--no-progress'],
            2, 'no threshold level lies in this range')


def test_a_port_sample_with_its_columns_in_another_order_is_refused(tmp_path):
    probs = np.zeros((5, 8, 8), np.float32)
    probs[0] = 1.0
    folder = write_prob_folder(tmp_path / 'p', {'b.jpg': (probs, (8, 8))}, PORT,
                               task='multi-class')
    sample = tmp_path / 'sample.csv'
    sample.write_text('file_name,prediction,class\nb.jpg,,4\n')
    refused(str(tmp_path), 'make_submission.py',
            [folder, '--format', 'port', '--sample', sample, '--out', tmp_path / 's.csv',
             '--no-progress'], 1, 'the header starts file_name,prediction, expected '
            'file_name,class')


# ------------------------------------------------------------------ round E (helper)
def test_a_hard_vote_leaving_out_a_test_image_is_refused(tmp_path):
    imgs = write_images(tmp_path / 'img', {'ID1/a.png': (6, 7), 'ID1/b.png': (6, 7),
                                          'ID1/c.png': (6, 7)})
    rows = 'image_name,class,rle\na.png,c1,1 3\nb.png,c1,\n'
    a, b = tmp_path / 's0.csv', tmp_path / 's1.csv'
    a.write_text(rows)
    b.write_text('image_name,class,rle\nb.png,c1,\na.png,c1,1 3\n')
    refused(str(tmp_path), 'ensemble.py', ['--csv', a, b, '--out', tmp_path / 'v.csv',
                                           '--img-dir', imgs, '--no-progress'], 1,
            'image c.png has no rows in')


def test_one_flat_ground_truth_file_for_two_images_is_refused(tmp_path):
    g = np.zeros((1, 8, 8), np.float32)
    g[0, 2:6, 2:6] = 0.9
    probs = write_prob_folder(tmp_path / 'P', {'ID1/a.png': (g, (8, 8)),
                                               'ID2/a.png': (1 - g - 0.05, (8, 8))}, ['c1'])
    (tmp_path / 'gt').mkdir()
    np.save(tmp_path / 'gt' / 'a.npy', (g > 0.5).astype(np.uint8))
    refused(str(tmp_path), 'tune_thresholds.py', [probs, '--gt', tmp_path / 'gt',
                                                  '--no-progress'], 1,
            'the ground truth of both ID1/a and ID2/a')


@pytest.mark.parametrize('record', [
    '{"val/Dice.a": 10, "val/Dice.b": 20, "test/Dice.a": 90, "test/Dice.b": 80}',
    '{"Dice.a": 10, "val/Dice.a": 90, "Dice.b": 5, "val/Dice.b": 5}',
])
def test_two_keys_of_one_metric_and_class_are_refused(tmp_path, record):
    metrics = tmp_path / 'm.json'
    metrics.write_text(record + '\n')
    refused(str(tmp_path), 'visualize.py', ['chart', metrics, '--out', tmp_path / 'c.svg'],
            1, "are both Dice of class 'a'")


def test_kfold_refuses_a_split_name_that_is_another_images_file_name(tmp_path):
    img = _jpgs(tmp_path / 'img', ['a.jpg', 'a.jpg.jpg', 'b.jpg', 'c.jpg', 'd.jpg'])
    refused(str(tmp_path), 'kfold.py', ['folder', img, '--out', tmp_path / 'k', '-k', '2',
                                        '--no-progress'], 1,
            "the split name 'a.jpg' of image a.jpg.jpg is the file name of another image")


def test_test_out_refuses_two_images_saved_under_one_name(tmp_path):
    from mmseg_ext.config.loading import load_config
    from mmseg_ext.datasets.synthetic import make_shapes_dataset
    from mmseg_ext.training.runner import check_unique_output_names
    root = make_shapes_dataset(str(tmp_path / 's'), num_train=1, num_val=2, size=(32, 40),
                               seed=1)
    sub = tmp_path / 'sub'
    for kind in ('images', 'labels'):
        for folder, src in (('a', '0000.png'), ('b', '0001.png')):
            os.makedirs(sub / kind / 'val' / folder)
            os.link(osp.join(root, kind, 'val', src), sub / kind / 'val' / folder / 'x.png')
    shapes = osp.join(REPO, 'custom_configs', 'demo', 'fcn_r18-tiny_shapes-64x80.py')
    cfg = load_config(shapes, {'test_dataloader.dataset.data_root': str(sub)})
    with pytest.raises(DataError, match=r'val/a/x.png and .*val/b/x.png would be saved as '
                                        r'one prediction x.png'):
        check_unique_output_names(cfg, str(tmp_path / 'out'))
    check_unique_output_names(load_config(shapes, {
        'test_dataloader.dataset.data_root': root}), str(tmp_path / 'out'))  # no error


# ------------------------------------------------------------------ round F (helper)
def test_one_file_reached_by_two_paths_is_listed_once_or_refused(tmp_path):
    from mmseg_ext.io.images import IMG_SUFFIXES, list_images, read_image_list
    img = write_images(tmp_path / 'img', {'sub/x0.png': (8, 8), 'a.png': (8, 8),
                                          'b.png': (8, 8), 'c.png': (8, 8)})
    os.symlink('sub', tmp_path / 'img' / 'sublink')
    with pytest.raises(DataError, match='sub/x0.png and sublink/x0.png are one file'):
        list_images(img)
    refused(str(tmp_path), 'kfold.py', ['folder', img, '--img-suffix', '.png', '--out',
                                        tmp_path / 'k', '-k', '2', '--no-progress'], 1,
            'are one file')
    lst = tmp_path / 'list.txt'
    lst.write_text('sub/x0\nsublink/x0\n')
    with pytest.raises(DataError, match='list.txt:2: sublink/x0 is the image of line 1'):
        read_image_list(str(lst), IMG_SUFFIXES, root=img)


def test_a_run_of_some_folds_keeps_the_complete_runs_summary(tmp_path, tmp_path_factory):
    import json

    from .cv_fakes import SHAPES, run_cv, shapes_cfg_options, shapes_world
    w = shapes_world(tmp_path_factory, 'shapes')
    options = shapes_cfg_options(w['root'])
    run_cv(SHAPES, tmp_path / 'cv', w['ckpt'], options)
    complete = (tmp_path / 'cv' / 'summary.json').read_bytes()
    assert json.loads(complete)['metric'] == 'IoU'
    s = run_cv(SHAPES, tmp_path / 'cv', w['ckpt'], options, folds=[1])
    assert (tmp_path / 'cv' / 'summary.json').read_bytes() == complete
    partial = json.loads((tmp_path / 'cv' / 'summary_folds.json').read_text())
    assert partial['metric'] == 'IoU' and s.files['summary'].endswith('summary_folds.json')


def test_pipeline_sizes_in_a_mapping_are_checked_too():
    from mmengine.config import Config

    from mmseg_ext.config.checks import check_pipeline_sizes
    from mmseg_ext.utils.errors import ConfigError
    affine = dict(type='Affine', scale=dict(x=(0.9, 1.1), y=(0.9, 1.1)))
    check_pipeline_sizes(Config(dict(train_pipeline=[
        dict(type='Albu', transforms=[affine])])), 'c.py', {})  # valid: no error
    affine['scale']['y'] = (0.0, 1.1)
    with pytest.raises(ConfigError, match=r'c.py: train_pipeline.0.transforms.0.scale'):
        check_pipeline_sizes(Config(dict(train_pipeline=[
            dict(type='Albu', transforms=[affine])])), 'c.py', {})
