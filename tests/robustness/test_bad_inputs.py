"""The bad-input harness: classes of bad input crossed with every tool that can meet them.

Each cell runs a tool's ``main`` in this process (fast: no interpreter start) on a small
world of valid inputs with one thing wrong, and checks the guarantees of
docs/tool_guarantees.md in one place:

* the exit status (1 for bad data or files, 2 for a command line that cannot run,
  143 for SIGTERM);
* stderr is one ``error:`` line naming what is wrong, with no traceback;
* nothing was written, changed or removed anywhere in the world or the cell's own
  folder (so nothing partial, nothing outside the output, every input untouched).

Classes: path escapes (list entries, index.json keys, COCO file_name, outputs inside
their inputs), non-images, foreign checkpoints, unwritable outputs, existing outputs
(a second run onto the first one's output), and SIGTERM arriving in the middle of a
tool's work (after the first item of its progress loop). Bad option values are walked
over every tool's parser in tests/tools/test_cli_conventions.py; launches in
tests/tools/test_launch_scripts.py; odd image sizes in tests/configs/test_any_image_size.py.
"""
import contextlib
import hashlib
import io
import json
import os
import os.path as osp
import shutil
import signal
import sys

import numpy as np
import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TESTS = osp.dirname(osp.dirname(osp.abspath(__file__)))
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)

from probs_helpers import write_images, write_prob_folder  # noqa: E402

SHAPES = osp.join(REPO, 'custom_configs', 'demo', 'fcn_r18-tiny_shapes-64x80.py')
CLASSES = ['Trapezium', 'Pisiform']
UNWRITABLE = '/sys/mmseg_ext_out'  # refuses new files even to root


# ------------------------------------------------------------------ running a tool
def run_main(tool, argv):
    """``(exit status, stderr lines)`` of ``tools/<tool>``'s main run in-process."""
    from conftest import load_tool
    module = load_tool(osp.join(REPO, 'tools', tool))
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()), \
            pytest.raises(SystemExit) as stop:
        module.main([str(a) for a in argv])
    return stop.value.code, err.getvalue().strip().splitlines()


def snapshot(*roots):
    """Every file and folder under ``roots``: path -> content hash (None for folders)."""
    seen = {}
    for root in roots:
        for dirpath, _dirs, files in os.walk(root):
            seen[dirpath] = None
            for name in files:
                path = osp.join(dirpath, name)
                with open(path, 'rb') as f:
                    seen[path] = hashlib.sha1(f.read()).hexdigest()
    return seen


def assert_refused(code, lines, expected_code, *words):
    errors = [line for line in lines if line.startswith('error:')]
    assert code == expected_code, (code, lines)
    assert len(errors) == 1 and not any('Traceback' in line for line in lines), lines
    for word in words:
        assert word in errors[0], (word, errors[0])


# ------------------------------------------------------------------ the world
@pytest.fixture(scope='module')
def world(tmp_path_factory):
    """Valid inputs of every kind the tools read (treated as read-only by the cells)."""
    from mmseg_ext.config.loading import load_config
    from mmseg_ext.config.model import build_bare_model
    from mmseg_ext.datasets.synthetic import make_shapes_dataset
    from mmseg_ext.datasets.synthetic.coco import make_trash_coco
    root = tmp_path_factory.mktemp('world')
    probs = {f'ID1/{n}.png': (np.full((2, 8, 8), p, np.float32), (8, 8))
             for n, p in (('a', 0.8), ('b', 0.3))}
    w = dict(root=str(root))
    w['probs'] = write_prob_folder(root / 'probs', probs, CLASSES)
    w['probs2'] = write_prob_folder(root / 'probs2', {k: (p * 0.5, s) for k, (p, s) in
                                                      probs.items()}, CLASSES, dtype='float16')
    w['imgs'] = write_images(root / 'imgs', {k: (8, 8) for k in probs})
    make_trash_coco(str(root / 'coco'), num_train=2, num_val=1, num_test=0, size=(16, 16))
    w['coco'] = str(root / 'coco' / 'train.json')
    w['shapes'] = make_shapes_dataset(str(root / 'shapes'), num_train=2, num_val=2,
                                      size=(32, 40), seed=1)
    cfg = load_config(SHAPES)
    torch.manual_seed(0)
    w['ckpt'] = str(root / 'shapes.pth')
    torch.save({'state_dict': build_bare_model(cfg).state_dict(), 'meta': {}}, w['ckpt'])
    # a model of 7 classes (its data sets name the 7 too, as a real config would)
    other = load_config(SHAPES, {'model.decode_head.num_classes': 7, **{
        f'{s}_dataloader.dataset.metainfo.classes': tuple('abcdefg')
        for s in ('train', 'val', 'test')}})
    w['foreign'] = str(root / 'foreign.pth')
    torch.save({'state_dict': build_bare_model(other).state_dict(), 'meta': {}},
               w['foreign'])
    return w


def shapes_options(w, name):
    return ['--cfg-options', f'train_dataloader.dataset.data_root={w["shapes"]}',
            f'val_dataloader.dataset.data_root={w["shapes"]}',
            f'test_dataloader.dataset.data_root={w["shapes"]}',
            'model.data_preprocessor.size=(32,40)', 'train_cfg.max_iters=1',
            'log_level=WARNING', f'visualizer.name=harness_{name}']


def escaped_probs(w, tmp, key='../../x'):
    folder = shutil.copytree(w['probs'], osp.join(tmp, 'bad_probs'))
    index = json.load(open(osp.join(folder, 'index.json')))
    index['images'][0]['key'] = key
    json.dump(index, open(osp.join(folder, 'index.json'), 'w'))
    return folder


def corrupt_images(w, tmp):
    folder = shutil.copytree(w['imgs'], osp.join(tmp, 'imgs'))
    with open(osp.join(folder, 'ID1', 'a.png'), 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n truncated')
    return folder


def image_list(tmp, entries):
    path = osp.join(tmp, 'list.txt')
    with open(path, 'w') as f:
        f.write('\n'.join(entries) + '\n')
    return path


def escaping_splits(tmp):
    folder = osp.join(tmp, 'splits')
    os.makedirs(folder)
    for j, names in enumerate((['../../x'], [])):
        with open(osp.join(folder, f'val_fold{j}.txt'), 'w') as f:
            f.write(''.join(n + '\n' for n in names))
    return folder


def coco_escape(w, tmp):
    coco = json.load(open(w['coco']))
    coco['images'][0]['file_name'] = '../../x.jpg'
    path = osp.join(tmp, 'bad.json')
    json.dump(coco, open(path, 'w'))
    return path


# ------------------------------------------------------------------ the table
# (id, tool, argv(world, tmp) -> list, exit status, words the error line must hold)
CASES = [
    # path escapes
    ('escape/inference-list-dotdot', 'inference.py', lambda w, t: [
        SHAPES, w['ckpt'], '--img-dir', w['shapes'] + '/images', '--out-dir', f'{t}/o',
        '--img-list', image_list(t, ['val/0000', '../imgs/ID1/a'])], 1,
     ['list.txt:2', 'leaves its folder']),
    ('escape/inference-list-absolute', 'inference.py', lambda w, t: [
        SHAPES, w['ckpt'], '--img-dir', w['shapes'] + '/images', '--out-dir', f'{t}/o',
        '--img-list', image_list(t, [w['shapes'] + '/images/val/0000.png'])], 1,
     ['list.txt:1', 'absolute path']),
    ('escape/ensemble-index-key', 'ensemble.py', lambda w, t: [
        escaped_probs(w, t), w['probs2'], '--out-dir', f'{t}/o', '--no-progress'], 1,
     ['index.json: images[0].key', 'leaves its folder']),
    ('escape/pseudo_label-index-key', 'pseudo_label.py', lambda w, t: [
        escaped_probs(w, t), '--out-dir', f'{t}/o', '--no-progress'], 1,
     ['index.json: images[0].key']),
    ('escape/visualize-index-key', 'visualize.py', lambda w, t: [
        'overlay', escaped_probs(w, t), '--img-dir', w['imgs'], '--out-dir', f'{t}/o',
        '--no-progress'], 1, ['index.json: images[0].key']),
    ('escape/make_submission-index-key', 'make_submission.py', lambda w, t: [
        escaped_probs(w, t), '--format', 'handbone', '--out', f'{t}/s.csv',
        '--no-progress'], 1, ['index.json: images[0].key']),
    ('escape/tune_thresholds-index-key', 'tune_thresholds.py', lambda w, t: [
        escaped_probs(w, t), '--gt', w['imgs'], '--out', f'{t}/thr.json',
        '--no-progress'], 1, ['index.json: images[0].key']),
    ('escape/coco_to_masks-file_name', 'coco_to_masks.py', lambda w, t: [
        coco_escape(w, t), f'{t}/masks', '--no-progress'], 1, ['../../x.jpg']),
    ('escape/self_train-list-absolute', 'self_train.py', lambda w, t: [
        SHAPES, SHAPES, '--unlabelled', w['shapes'] + '/images/val', '--img-suffix', '.png',
        '--unlabelled-list', image_list(t, [w['shapes'] + '/images/val/0000.png']),
        '--work-dir', f'{t}/st'], 1, ['absolute path']),
    ('escape/cv-work-dir-inside-input', 'cv.py', lambda w, t: [
        SHAPES, '-k', '2', '--work-dir', w['shapes'] + '/images/train/cv',
        *shapes_options(w, 'cv')], 2, ['--work-dir', 'inside the input folder']),
    ('escape/cv-splits-unknown-image', 'cv.py', lambda w, t: [
        SHAPES, '-k', '2', '--work-dir', f'{t}/cv', '--splits', escaping_splits(t),
        *shapes_options(w, 'cv2')], 1, ['val_fold0.txt', '../../x', 'not an image']),
    ('escape/make_submission-out-inside-input', 'make_submission.py', lambda w, t: [
        w['probs'], '--format', 'handbone', '--out', w['probs'] + '/index.json', '--force',
        '--no-progress'], 2, ['--out', 'inside the input folder']),
    ('escape/ensemble-out-inside-input', 'ensemble.py', lambda w, t: [
        w['probs'], w['probs2'], '--out-dir', w['probs'] + '/fused', '--no-progress'], 2,
     ['--out-dir', 'inside the input folder']),
    ('escape/tune_thresholds-out-inside-input', 'tune_thresholds.py', lambda w, t: [
        w['probs'], '--gt', w['imgs'], '--out', w['probs'] + '/thr.json'], 2,
     ['--out', 'inside the input folder']),
    ('escape/inference-out-holds-input', 'inference.py', lambda w, t: [
        SHAPES, w['ckpt'], '--img-dir', w['shapes'] + '/images', '--out-dir', w['shapes'],
        '--force'], 2, ['--out-dir', 'holds the input']),
    ('escape/visualize-out-is-input', 'visualize.py', lambda w, t: [
        'overlay', w['probs'], '--img-dir', w['imgs'], '--out-dir', w['imgs'], '--force'],
     2, ['--out-dir', 'also an input']),
    # files that are not images
    ('non-image/inference', 'inference.py', lambda w, t: [
        SHAPES, w['ckpt'], '--img-dir', corrupt_images(w, t), '--out-dir', f'{t}/o',
        '--no-progress'], 1, ['a.png', 'cannot decode image']),
    ('non-image/make_submission-img-dir', 'make_submission.py', lambda w, t: [
        w['probs'], '--format', 'handbone', '--out', f'{t}/s.csv', '--img-dir',
        corrupt_images(w, t), '--no-progress'], 1, ['a.png']),
    ('non-image/visualize', 'visualize.py', lambda w, t: [
        'overlay', w['probs'], '--img-dir', corrupt_images(w, t), '--out-dir', f'{t}/o',
        '--no-progress'], 1, ['a.png']),
    # checkpoints of another model
    ('foreign-checkpoint/test', 'test.py', lambda w, t: [
        SHAPES, w['foreign'], '--work-dir', f'{t}/w', *shapes_options(w, 'test')], 1,
     ['foreign.pth', 'does not fit']),
    ('foreign-checkpoint/inference', 'inference.py', lambda w, t: [
        SHAPES, w['foreign'], '--img-dir', w['shapes'] + '/images', '--out-dir', f'{t}/o'],
     1, ['foreign.pth', 'does not fit']),
    ('foreign-checkpoint/train-load_from', 'train.py', lambda w, t: [
        SHAPES, '--work-dir', f'{t}/w', *shapes_options(w, 'train'),
        f'load_from={w["foreign"]}'], 1, ['foreign.pth', 'does not fit']),
    # outputs that cannot be written
    ('unwritable/make_submission', 'make_submission.py', lambda w, t: [
        w['probs'], '--format', 'handbone', '--out', f'{UNWRITABLE}/s.csv',
        '--no-progress'], 1, ['cannot write the output']),
    ('unwritable/ensemble', 'ensemble.py', lambda w, t: [
        w['probs'], w['probs2'], '--out-dir', UNWRITABLE, '--no-progress'], 1,
     ['cannot write the output']),
    ('unwritable/pseudo_label', 'pseudo_label.py', lambda w, t: [
        w['probs'], '--out-dir', UNWRITABLE, '--no-progress'], 1,
     ['cannot write the output']),
    ('unwritable/visualize', 'visualize.py', lambda w, t: [
        'overlay', w['probs'], '--img-dir', w['imgs'], '--out-dir', UNWRITABLE,
        '--no-progress'], 1, ['cannot write the output']),
    ('unwritable/coco_to_masks', 'coco_to_masks.py', lambda w, t: [
        w['coco'], UNWRITABLE, '--no-progress'], 1, ['cannot write the output']),
    ('unwritable/kfold', 'kfold.py', lambda w, t: [
        'coco', w['coco'], '--out', UNWRITABLE, '-k', '2'], 1, [UNWRITABLE]),
    ('unwritable/inference', 'inference.py', lambda w, t: [
        SHAPES, w['ckpt'], '--img-dir', w['shapes'] + '/images', '--out-dir', UNWRITABLE,
        '--no-progress'], 1, ['cannot write the output']),
]


@pytest.mark.parametrize('case', CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_writes_nothing(case, world, tmp_path, fast_cpu):
    _, tool, argv, code, words = case
    args = argv(world, str(tmp_path))  # the cell's own bad inputs are made first
    before = snapshot(world['root'], str(tmp_path))
    status, lines = run_main(tool, args)
    assert_refused(status, lines, code, *words)
    assert snapshot(world['root'], str(tmp_path)) == before
    assert not osp.exists(UNWRITABLE)


# ------------------------------------------------------------------ existing outputs
WRITERS = [
    ('make_submission', 'make_submission.py', lambda w, out: [
        w['probs'], '--format', 'handbone', '--out', out, '--no-progress'], 'file'),
    ('ensemble', 'ensemble.py', lambda w, out: [
        w['probs'], w['probs2'], '--out-dir', out, '--no-progress'], 'dir'),
    ('pseudo_label', 'pseudo_label.py', lambda w, out: [
        w['probs'], '--out-dir', out, '--no-progress'], 'dir'),
    ('visualize', 'visualize.py', lambda w, out: [
        'overlay', w['probs'], '--img-dir', w['imgs'], '--out-dir', out, '--no-progress'],
     'dir'),
    ('coco_to_masks', 'coco_to_masks.py', lambda w, out: [
        w['coco'], out, '--no-progress'], 'dir'),
    ('inference', 'inference.py', lambda w, out: [
        SHAPES, w['ckpt'], '--img-dir', w['shapes'] + '/images/val', '--out-dir', out,
        '--no-progress'], 'dir'),
]


@pytest.mark.parametrize('writer', WRITERS, ids=[w[0] for w in WRITERS])
def test_second_run_onto_an_output_changes_nothing(writer, world, tmp_path, fast_cpu):
    """A second run onto the first run's output (or onto someone's folder) is refused
    without --force and changes nothing; the first run's output stays as it was."""
    _, tool, argv, kind = writer
    out = str(tmp_path / ('out.csv' if kind == 'file' else 'out'))
    status, lines = run_main(tool, argv(world, out))
    assert status == 0, lines
    before = snapshot(world['root'], str(tmp_path))
    status, lines = run_main(tool, argv(world, out))
    assert_refused(status, lines, 1, out, 'already exists', '--force')
    assert snapshot(world['root'], str(tmp_path)) == before


# ------------------------------------------------------------------ signals
@pytest.mark.parametrize('writer', WRITERS, ids=[w[0] for w in WRITERS])
def test_sigterm_during_the_work_leaves_nothing(writer, world, tmp_path, monkeypatch,
                                                fast_cpu):
    """SIGTERM arrives after the first item of the tool's progress loop (every tool
    shows one): exit 143, the one line 'error: interrupted', no output and no
    temporary file left, inputs untouched."""
    import tqdm.std
    real_iter = tqdm.std.tqdm.__iter__
    signalled = []

    def iterate_then_signal(self):
        for n, item in enumerate(real_iter(self)):
            if n == 1 and not signalled:
                signalled.append(1)
                os.kill(os.getpid(), signal.SIGTERM)
            yield item

    monkeypatch.setattr(tqdm.std.tqdm, '__iter__', iterate_then_signal)
    _, tool, argv, kind = writer
    out = str(tmp_path / ('out.csv' if kind == 'file' else 'out'))
    before = snapshot(world['root'], str(tmp_path))
    status, lines = run_main(tool, [a for a in argv(world, out) if a != '--no-progress'])
    assert signalled, 'the tool never reached its progress loop'
    assert status == 143, lines
    assert [x for x in lines if x.startswith('error:')] == ['error: interrupted'], lines
    assert not any('Traceback' in x for x in lines), lines
    assert snapshot(world['root'], str(tmp_path)) == before


def test_every_tool_meets_the_harness():
    """Each tool that reads user data appears in at least one cell above."""
    covered = {c[1] for c in CASES} | {w[1] for w in WRITERS}
    tools = {'inference.py', 'ensemble.py', 'pseudo_label.py', 'visualize.py',
             'make_submission.py', 'tune_thresholds.py', 'coco_to_masks.py', 'kfold.py',
             'self_train.py', 'test.py', 'train.py', 'cv.py'}
    assert tools <= covered, tools - covered

