"""Hostile round s11 (issue 28): values checked once where they enter, folders a failed
download made are removed, and the flags the guarantees promise exist.

Each refusal asserts the exit status, one ``error:`` line naming the problem (no
traceback) and that no file anywhere changed (``snapshot``); each accepted input asserts
a value worked out here. The rules live in :mod:`mmseg_ext.visualization.charts`
(confusion matrices, metric values), :mod:`mmseg_ext.utils.class_names` and
:mod:`mmseg_ext.datasets.coco_index` (class and category names),
:mod:`mmseg_ext.utils.per_class` (whole numbers within int64),
:mod:`mmseg_ext.io.download` and :mod:`mmseg_ext.training.weights` (``file://`` URLs,
created folders, existing files), :mod:`mmseg_ext.io.ground_truth` (float 0/1 masks).
"""
import contextlib
import hashlib
import io
import json
import os
import os.path as osp
import threading

import numpy as np
import pytest
from conftest import load_tool, run_tool
from probs_helpers import write_prob_folder

from .test_bad_inputs import CLASSES, assert_refused, run_main, snapshot


def refused(root, tool, argv, code, *words):
    """Run ``tool``; assert the refusal and that nothing under ``root`` changed."""
    before = snapshot(root)
    status, lines = run_main(tool, argv)
    assert_refused(status, lines, code, *words)
    assert snapshot(root) == before


def stdout_of(tool, argv):
    """``(exit status, stdout)`` of a tool run in-process (stderr dropped)."""
    proc = run_tool(f'tools/{tool}', *[str(a) for a in argv])
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


# ------------------------------------------------------------------ 1 confusion --matrix
@pytest.mark.parametrize('matrix,words', [
    (np.array([[1.0, np.nan], [0.0, 1.0]]), ['cell (0, 1)', 'nan', 'not finite']),
    (np.array([[1.0, 0.0], [np.inf, 1.0]]), ['cell (1, 0)', 'inf', 'not finite']),
    (np.array([[1, -2], [0, 1]], np.int64), ['cell (0, 1)', '-2', 'negative']),
    (np.array([[0.5, 0.5], [0.2, 0.8]]), ['cell (0, 0)', '0.5', 'not a whole number']),
    (np.array([[2 ** 63, 0], [0, 1]], np.uint64), ['cell (0, 0)', 'beyond int64']),
    (np.array([[2.0 ** 63, 0], [0, 1]]), ['cell (0, 0)', 'beyond int64']),
    (np.zeros((2, 3)), ['(C, C)', '(2, 3)']),
    (np.array([['a', 'b'], ['c', 'd']]), ['expected numbers']),
])
def test_confusion_matrix_is_checked_before_the_png(tmp_path, matrix, words):
    path = tmp_path / 'cm.npy'
    np.save(path, matrix)
    out = tmp_path / 'cm.png'
    refused(str(tmp_path), 'visualize.py', ['confusion', '--matrix', path, '--out', out],
            1, 'cm.npy', *words)
    assert not out.exists()


@pytest.mark.parametrize('classes,code,words', [
    (['a', 'a'], 2, ['--classes', "'a' appears twice"]),
    (['a', ' b'], 2, ['--classes', 'class 1', 'white space']),
    (['a', 'b', 'c'], 2, ['--classes', '3 name(s)', '2 classes']),
])
def test_confusion_class_names_are_checked(tmp_path, classes, code, words):
    path = tmp_path / 'cm.npy'
    np.save(path, np.array([[3, 1], [0, 4]]))
    out = tmp_path / 'cm.png'
    refused(str(tmp_path), 'visualize.py', ['confusion', '--matrix', path, '--out', out,
                                            '--classes', *classes], code, *words)
    assert not out.exists()


def test_confusion_total_of_huge_counts_is_exact(tmp_path):
    """Three cells of 2**62: int64 wraps the sum to a negative number."""
    path = tmp_path / 'cm.npy'
    np.save(path, np.array([[2 ** 62, 2 ** 62], [2 ** 62, 0]], np.int64))
    out = tmp_path / 'cm.png'
    text = stdout_of('visualize.py', ['confusion', '--matrix', path, '--out', out])
    assert text.strip() == f'confusion: 2 classes, {3 * 4611686018427387904} pixels -> {out}'
    assert out.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_confusion_whole_float_counts_are_counts(tmp_path):
    path = tmp_path / 'cm.npy'
    np.save(path, np.array([[3.0, 1.0], [0.0, 4.0]], np.float32))
    out = tmp_path / 'cm.png'
    text = stdout_of('visualize.py', ['confusion', '--matrix', path, '--out', out,
                                      '--classes', 'road', 'sky'])
    assert text.strip() == f'confusion: 2 classes, 8 pixels -> {out}'


# ------------------------------------------------------------------ 2 chart values
@pytest.mark.parametrize('value', ['-40', '300', '1e308', '-1e308', '100.000001'])
def test_chart_values_outside_0_100_are_refused(tmp_path, value):
    metrics = tmp_path / 'm.json'
    metrics.write_text(f'{{"Dice.a": 50, "val/Dice.b": {value}}}')
    out = tmp_path / 'c.png'
    refused(str(tmp_path), 'visualize.py', ['chart', metrics, '--out', out],
            1, 'm.json', "'val/Dice.b'", '[0, 100]')
    assert not out.exists()


def test_chart_values_at_the_ends_of_the_range_are_drawn(tmp_path):
    metrics = tmp_path / 'm.json'
    metrics.write_text('{"Dice.a": 0, "Dice.b": 0.5, "IoU.a": 100, "IoU.b": 7}')
    out = tmp_path / 'c.png'
    text = stdout_of('visualize.py', ['chart', metrics, '--out', out])
    assert text.strip() == f'chart: Dice, IoU for 2 classes -> {out}'


def test_chart_names_the_line_of_a_scalars_file(tmp_path):
    metrics = tmp_path / 'scalars.json'
    metrics.write_text('{"Dice.a": 3, "step": 1}\n{"Dice.a": -1, "step": 2}\n')
    refused(str(tmp_path), 'visualize.py', ['chart', metrics, '--out', tmp_path / 'c.png'],
            1, 'scalars.json:2', "'Dice.a'")


# ------------------------------------------------------------------ 3 COCO class names
def write_coco(path, names):
    """One 8x8 image with one square annotation per category (ids 1, 2, ...)."""
    cats = [dict(id=i, name=n) for i, n in enumerate(names, 1)]
    anns = [dict(id=i, image_id=1, category_id=i, iscrowd=0, area=4.0,
                 segmentation=[[1.0 + i, 1.0, 3.0 + i, 1.0, 3.0 + i, 3.0, 1.0 + i, 3.0]])
            for i in range(1, len(names) + 1)]
    path.write_text(json.dumps(dict(images=[dict(id=1, file_name='a.jpg', height=8,
                                                 width=8)],
                                    annotations=anns, categories=cats)))
    return path


@pytest.mark.parametrize('classes,words', [
    ('Background,Paper,Glass,Paper', ["'Paper' appears twice"]),
    ('Background,Paper,Glass,', ['class 3', 'empty']),
    ('Background,,Paper', ['class 1', 'empty']),
    ('Paper,Glass', ["first class must be the background 'Background'"]),
])
def test_coco_to_masks_classes_option_is_checked(tmp_path, classes, words):
    ann = write_coco(tmp_path / 'ann.json', ['Paper', 'Glass'])
    refused(str(tmp_path), 'coco_to_masks.py', [ann, tmp_path / 'masks', '--classes',
                                                classes, '--no-progress'],
            2, '--classes', *words)
    assert not (tmp_path / 'masks').exists()


@pytest.mark.parametrize('names,argv,words', [
    (['Paper', ' '], [], ['category 2', 'white space']),
    (['Paper', ' '], ['--classes', 'Background,Paper'], ['category 2', 'white space']),
    (['Paper', 'Background'], [], ['category 2', "named 'Background'", 'background']),
    (['Paper', 'Background'], ['--classes', 'Background,Paper'],
     ['category 2', "named 'Background'"]),
    (['Paper', 'Glass'], ['--background-name', 'Paper'], ['category 1', "named 'Paper'"]),
    (['Paper', 'Glass'], ['--background-name', 'Paper', '--classes', 'Paper,Glass'],
     ['category 1', "named 'Paper'", 'rename the category']),
])
def test_coco_category_names_are_checked(tmp_path, names, argv, words):
    ann = write_coco(tmp_path / 'ann.json', names)
    refused(str(tmp_path), 'coco_to_masks.py', [ann, tmp_path / 'masks', *argv,
                                                '--no-progress'],
            1, 'ann.json', *words)
    assert not (tmp_path / 'masks').exists()


def test_coco_to_masks_paints_every_category_it_counts(tmp_path):
    """A legitimate file and class list (spaces around names dropped): the masks are
    pycocotools' own painting by category name."""
    import cv2
    from coco_reference import load_coco, reference_label_maps
    ann = write_coco(tmp_path / 'ann.json', ['Paper', 'Glass'])
    text = stdout_of('coco_to_masks.py', [ann, tmp_path / 'masks', '--classes',
                                          'Background, Glass ,Paper', '--no-progress'])
    assert '(2 annotations painted' in text
    label = cv2.imread(str(tmp_path / 'masks' / 'a.png'), cv2.IMREAD_UNCHANGED)
    expected = reference_label_maps(load_coco(str(ann)), ['Background', 'Glass', 'Paper'],
                                    'area_desc')['a.jpg']
    assert set(np.unique(expected)) == {0, 1, 2}
    assert (label == expected).all()


def test_coco_dataset_shares_the_category_rule(tmp_path):
    from mmseg_ext.datasets import CocoSemanticDataset
    from mmseg_ext.utils.errors import ConfigError, DataError
    write_coco(tmp_path / 'ann.json', ['Paper', 'Background'])
    kw = dict(data_root=str(tmp_path), data_prefix=dict(img_path=''), check_files=False,
              pipeline=[])
    with pytest.raises(DataError, match=r"category 2 is named 'Background'"):
        CocoSemanticDataset(ann_file='ann.json', metainfo=dict(
            classes=('Background', 'Paper')), **kw)
    write_coco(tmp_path / 'ann.json', ['Paper', 'Glass'])
    with pytest.raises(ConfigError, match=r"'Paper' appears twice"):
        CocoSemanticDataset(ann_file='ann.json', metainfo=dict(
            classes=('Background', 'Paper', 'Paper')), **kw)


# ------------------------------------------------------------------ 4 per-class numbers
@pytest.fixture
def probs_world(tmp_path):
    probs = {'ID1/a.png': (np.full((2, 8, 8), 0.8, np.float32), (8, 8))}
    return dict(root=str(tmp_path),
                probs=write_prob_folder(tmp_path / 'probs', probs, CLASSES))


@pytest.mark.parametrize('option', ['--min-area', '--keep-largest'])
@pytest.mark.parametrize('value', ['1e30', '9223372036854775808'])
def test_whole_number_options_beyond_int64_are_refused(probs_world, option, value):
    out = osp.join(probs_world['root'], 'sub.csv')
    refused(probs_world['root'], 'make_submission.py',
            [probs_world['probs'], '--format', 'handbone', '--out', out, option, value,
             '--no-progress'], 2, option, 'beyond int64')


@pytest.mark.parametrize('option', ['--min-area', '--keep-largest'])
def test_whole_numbers_beyond_int64_in_json_are_refused(probs_world, option):
    spec = osp.join(probs_world['root'], 'spec.json')
    with open(spec, 'w') as f:
        f.write('{"Trapezium": 1e30}')
    refused(probs_world['root'], 'make_submission.py',
            [probs_world['probs'], '--format', 'handbone', '--out',
             osp.join(probs_world['root'], 'sub.csv'), option, spec, '--no-progress'],
            1, 'spec.json', "'Trapezium'", 'beyond int64')


def test_the_largest_int64_is_kept_exactly():
    from mmseg_ext.utils.per_class import per_class_option
    top = 2 ** 63 - 1
    assert per_class_option(str(top), ['a'], 'min_area', int, 0) == {'a': top}
    assert per_class_option({'a': top}, ['a'], 'min_area', int, 0) == {'a': top}
    assert per_class_option('1e18', ['a'], 'min_area', int, 0) == {'a': 10 ** 18}


# ------------------------------------------------------------------ 5 get_weights
def unblock_fifo_later(path, after_s=5.0, until_s=60.0):
    """A thread that opens the FIFO ``path`` for writing (then closes it) once a reader
    waits on it: a reader that should never have opened it then gets an empty file
    instead of blocking the test for ever."""
    stop = threading.Event()

    def run():
        if stop.wait(after_s):
            return
        for _ in range(int(until_s * 10)):
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # no reader (ENXIO)
                if stop.wait(0.1):
                    return
                continue
            os.close(fd)
            return

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return stop


@pytest.mark.parametrize('kind', ['fifo', 'folder', 'device'])
def test_file_url_must_name_a_regular_file(tmp_path, kind):
    src = tmp_path / 'src'
    src.mkdir()
    target = {'fifo': src / 'w.pth', 'folder': src / 'dir', 'device': '/dev/zero'}[kind]
    if kind == 'fifo':
        os.mkfifo(target)
    elif kind == 'folder':
        os.mkdir(target)
    words = {'fifo': 'FIFO', 'folder': 'a folder', 'device': 'a character device'}[kind]
    work = tmp_path / 'work'  # the snapshot's root: it must not open the FIFO itself
    work.mkdir()
    out = work / 'new' / 'pretrain'
    stop = unblock_fifo_later(str(target)) if kind == 'fifo' else threading.Event()
    try:
        refused(str(work), 'get_weights.py',
                ['hrnetv2-w18', '--url', f'file://{target}', '--out-dir', out,
                 '--no-progress'], 1, f'file://{target}', words)
    finally:
        stop.set()
    assert os.listdir(work) == []  # the folders the run made are gone


def fake_weights(tmp_path, data, prefix, filename='fake.pth'):
    from mmseg_ext.models.weights_catalog import PretrainedWeights
    src = tmp_path / 'weights_src.pth'
    src.write_bytes(data)
    return PretrainedWeights(name='fake', filename=filename, urls=(src.as_uri(),),
                             check_key='x', override='model.pretrained=None',
                             description='test', sha256_prefix=prefix)


def test_failed_download_removes_only_the_folders_it_made(tmp_path):
    from mmseg_ext.training.weights import fetch_weights
    from mmseg_ext.utils.errors import DownloadError
    weights = fake_weights(tmp_path, b'bytes', '00000000', 'timm/model/fake.pth')
    with pytest.raises(DownloadError, match='expected 00000000'):
        fetch_weights(weights, str(tmp_path / 'a' / 'pretrain'), progress=False)
    assert not (tmp_path / 'a').exists()
    (tmp_path / 'mine').mkdir()  # a folder that was there: kept, even empty
    with pytest.raises(DownloadError):
        fetch_weights(weights, str(tmp_path / 'mine'), progress=False)
    assert sorted(os.listdir(tmp_path)) == ['mine', 'weights_src.pth']
    assert os.listdir(tmp_path / 'mine') == []
    good = hashlib.sha256(b'bytes').hexdigest()[:8]
    ok = fake_weights(tmp_path, b'bytes', good, 'timm/model/fake.pth')
    result = fetch_weights(ok, str(tmp_path / 'b'), progress=False)
    assert open(result.path, 'rb').read() == b'bytes'
    assert result.path == str(tmp_path / 'b' / 'timm' / 'model' / 'fake.pth')


def test_invalid_user_file_is_not_offered_to_force(tmp_path):
    out = tmp_path / 'pretrain'
    out.mkdir()
    user = out / 'hrnetv2_w18-00eb2006.pth'
    user.write_bytes(b'my own file')
    src = tmp_path / 'src.pth'
    src.write_bytes(b'junk')
    argv = ['hrnetv2-w18', '--url', f'file://{src}', '--out-dir', out, '--no-progress']
    before = snapshot(str(tmp_path))
    status, lines = run_main('get_weights.py', argv)
    assert_refused(status, lines, 1, str(user), 'not valid', 'no ownership record',
                   'move it away')
    assert '--force' not in lines[-1]
    # what the message promised: --force would not have replaced it either
    refused(str(tmp_path), 'get_weights.py', [*argv, '--force'], 1, 'no ownership record')
    assert snapshot(str(tmp_path)) == before


def test_invalid_own_file_gets_the_force_hint(tmp_path):
    """A file with get_weights' record, unchanged, that fails its check: --force would
    replace it, so the refusal says so, and --force does."""
    from mmseg_ext.io.owned_file import commit_record, stage_record
    from mmseg_ext.training.weights import OWNER, fetch_weights
    from mmseg_ext.utils.errors import OutputExistsError
    good = hashlib.sha256(b'bytes').hexdigest()[:8]
    weights = fake_weights(tmp_path, b'bytes', good)
    out = tmp_path / 'pretrain'
    out.mkdir()
    target = out / 'fake.pth'
    target.write_bytes(b'damaged')
    commit_record(stage_record(str(target), str(target), OWNER), str(target))
    with pytest.raises(OutputExistsError, match='exists but is not valid'):
        fetch_weights(weights, str(out), progress=False)
    result = fetch_weights(weights, str(out), progress=False, force=True)
    assert result.status == 'downloaded' and target.read_bytes() == b'bytes'


# ------------------------------------------------------------------ 6 --no-progress
def test_kfold_folder_bar_turns_off(tmp_path):
    import cv2
    imgs, labels = tmp_path / 'img', tmp_path / 'lab'
    imgs.mkdir()
    labels.mkdir()
    for i in range(4):
        cv2.imwrite(str(imgs / f'{i}.jpg'), np.full((8, 8, 3), 9, np.uint8))
        cv2.imwrite(str(labels / f'{i}.png'), np.full((8, 8), i % 2, np.uint8))
    argv = ['folder', imgs, '--labels', labels, '-k', '2']
    shown = run_tool('tools/kfold.py', *map(str, argv), '--out', str(tmp_path / 'a'))
    assert shown.returncode == 0 and 'reading labels' in shown.stderr
    quiet = run_tool('tools/kfold.py', *map(str, argv), '--out', str(tmp_path / 'b'),
                     '--no-progress')
    assert quiet.returncode == 0, quiet.stderr
    assert 'reading labels' not in quiet.stderr and '%|' not in quiet.stderr
    assert sorted(os.listdir(tmp_path / 'a')) == sorted(os.listdir(tmp_path / 'b'))


def test_make_synthetic_handbone_bar_turns_off(tmp_path):
    argv = ['--patients', '1', '--images-per-patient', '1', '--test-patients', '0',
            '--size', '32x32']
    shown = run_tool('tools/make_synthetic_handbone.py', '--out', str(tmp_path / 'a'),
                     *argv)
    assert shown.returncode == 0 and '%|' in shown.stderr
    quiet = run_tool('tools/make_synthetic_handbone.py', '--out', str(tmp_path / 'b'),
                     *argv, '--no-progress')
    assert quiet.returncode == 0, quiet.stderr
    assert '%|' not in quiet.stderr
    def files(root):
        return sorted(osp.relpath(osp.join(d, f), root) for d, _, fs in os.walk(root)
                      for f in fs)
    assert files(tmp_path / 'a') == files(tmp_path / 'b') != []


# ------------------------------------------------------------------ 7 float 0/1 masks
@pytest.fixture
def gt_world(tmp_path):
    probs = {'ID1/a.png': (np.full((2, 8, 8), 0.8, np.float32), (8, 8)),
             'ID1/b.png': (np.full((2, 8, 8), 0.3, np.float32), (8, 8))}
    root = str(tmp_path)
    return dict(root=root, probs=write_prob_folder(tmp_path / 'probs', probs, CLASSES))


def write_gt(root, name, dtype, values=None):
    """``root/name/ID1/{a,b}.npy``: a = class 0 everywhere, b = nothing (or ``values``)."""
    for key, fill in (('a', 1), ('b', 0)):
        os.makedirs(osp.join(root, name, 'ID1'), exist_ok=True)
        arr = np.zeros((2, 8, 8), dtype)
        arr[0] = fill
        if values is not None and key == 'b':
            arr[1, 0, 0] = values
        np.save(osp.join(root, name, 'ID1', key + '.npy'), arr)
    return osp.join(root, name)


def tuned(w, gt, out):
    run = run_tool('tools/tune_thresholds.py', w['probs'], '--gt', gt, '--out',
                   osp.join(w['root'], out), '--no-progress')
    assert run.returncode == 0, run.stderr
    with open(osp.join(w['root'], out)) as f:
        return json.load(f)


@pytest.mark.parametrize('dtype', ['float32', 'float64', 'float16'])
def test_float_masks_of_exactly_0_and_1_are_ground_truth(gt_world, dtype):
    """The same masks as uint8 (accepted before) give the same thresholds."""
    reference = tuned(gt_world, write_gt(gt_world['root'], 'gt_u8', np.uint8), 'u8.json')
    floats = tuned(gt_world, write_gt(gt_world['root'], 'gt_f', dtype), 'f.json')
    assert floats == reference


@pytest.mark.parametrize('value,words', [(np.nan, 'mask value nan'),
                                         (0.5, 'mask value 0.5'),
                                         (np.inf, 'mask value inf'),
                                         (-1.0, 'mask value -1.0')])
def test_float_masks_with_other_values_are_refused(gt_world, value, words):
    gt = write_gt(gt_world['root'], 'gt', np.float32, value)
    refused(gt_world['root'], 'tune_thresholds.py',
            [gt_world['probs'], '--gt', gt, '--out', osp.join(gt_world['root'], 't.json'),
             '--no-progress'], 1, 'gt/ID1/b.npy', words)


# ------------------------------------------------------------------ 8 cv --help ranges
def test_cv_help_states_the_rank_and_gpu_ranges():
    module = load_tool(osp.join(osp.dirname(osp.dirname(osp.dirname(
        osp.abspath(__file__)))), 'tools', 'cv.py'))
    text = io.StringIO()
    with contextlib.redirect_stdout(text), pytest.raises(SystemExit):
        module.parse_args(['--help'])
    flat = ' '.join(text.getvalue().split())
    gpus = flat.split('--gpus N ', 1)[1].split('--ranks-per-fold', 1)[0]
    ranks = flat.split('--ranks-per-fold R ', 1)[1].split('--device', 1)[0]
    assert 'N >= 0' in gpus
    assert 'R in [0, the GPUs given and visible]' in ranks
    assert '[0, the CPU count]' in ranks
