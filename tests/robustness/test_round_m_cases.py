"""Round M of hostile inputs (issue 28), each case by its class:

* thresholds applied twice: cv's fold vote is already calibrated (each fold model's own
  thresholds moved to 0.5; its source records ``fold_thresholds``); every writer that
  thresholds refuses other thresholds on it (:func:`mmseg_ext.io.probs.check_thresholds_apply`);
* one submission given twice to the hard vote with its rows reordered or its line
  endings changed (other bytes, the same masks);
* a ``last_checkpoint`` pointer naming a deleted checkpoint, or holding two lines, is
  named with its problem (with ``--resume`` and without);
* a training image without ground truth (a hand-bone root without ``outputs_json/``)
  is one line naming the image, not an ``AttributeError`` from the head.
"""
import json
import os
import os.path as osp
import shutil
import sys

import numpy as np
import pytest

TESTS = osp.dirname(osp.dirname(osp.abspath(__file__)))
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)

from conftest import CONFIG, REPO, data_options, run_tool  # noqa: E402
from probs_helpers import write_images  # noqa: E402

from robustness.test_bad_inputs import assert_refused, run_main, snapshot  # noqa: E402

CLASSES = ['finger-1', 'finger-2']


def _folder(root, value, source=None):
    from mmseg_ext.io.probs import ProbFolderWriter
    with ProbFolderWriter(str(root), CLASSES, 'multi-label', dtype='uint8',
                          source=source) as w:
        for name in ('a', 'b'):
            p = np.zeros((2, 8, 8), np.float32)
            p[0, 2:6, 2:6] = value
            p[1, 1:3, 4:8] = value / 2
            w.write(p, f'ID1/{name}.png', (8, 8))
        w.commit()
    return str(root)


@pytest.fixture
def world(tmp_path):
    w = dict(root=str(tmp_path))
    w['calibrated'] = _folder(tmp_path / 'ens', 0.8, source=dict(
        ensemble=[], fold_thresholds=[{c: 0.3 for c in CLASSES}]))
    w['thr'] = str(tmp_path / 'thr.json')
    with open(w['thr'], 'w') as f:
        json.dump({'finger-1': 0.3, 'finger-2': 0.4}, f)
    w['imgs'] = write_images(tmp_path / 'imgs', {'ID1/a.png': (8, 8), 'ID1/b.png': (8, 8)})
    return w


@pytest.mark.parametrize('tool,argv', [
    ('make_submission.py', lambda w: [w['calibrated'], '--format', 'handbone', '--out',
                                      f'{w["root"]}/s.csv', '--thresholds', w['thr']]),
    ('make_submission.py', lambda w: [w['calibrated'], '--format', 'handbone', '--out',
                                      f'{w["root"]}/s.csv', '--threshold', '0.4']),
    ('pseudo_label.py', lambda w: [w['calibrated'], '--out-dir', f'{w["root"]}/pl',
                                   '--thresholds', w['thr']]),
    ('visualize.py', lambda w: ['overlay', w['calibrated'], '--img-dir', w['imgs'],
                                '--out-dir', f'{w["root"]}/vis',
                                '--thresholds', w['thr']]),
])
def test_thresholds_are_refused_on_a_calibrated_fold_vote(world, tool, argv):
    before = snapshot(world['root'])
    code, lines = run_main(tool, argv(world) + ['--no-progress'])
    assert_refused(code, lines, 1, world['calibrated'], 'a calibrated fold vote',
                   'without thresholds')
    assert snapshot(world['root']) == before


def test_a_calibrated_fold_vote_is_decided_at_one_half(world):
    out = f'{world["root"]}/s.csv'
    code, lines = run_main('make_submission.py', [world['calibrated'], '--format',
                                                  'handbone', '--out', out, '--no-progress'])
    assert code == 0, lines
    import csv
    rows = {(r['image_name'], r['class']): r['rle'] for r in csv.DictReader(open(out))}
    for name in ('a.png', 'b.png'):
        # finger-1 at 0.8 (rows 2-5, columns 2-5 of 8x8, 1-indexed row-major runs of 4);
        # finger-2 at 0.4, below 0.5: empty
        assert rows[(name, 'finger-1')] == '19 4 27 4 35 4 43 4'
        assert rows[(name, 'finger-2')] == ''
        assert all(v == '' for (n, c), v in rows.items() if n == name and c not in CLASSES)


def _csvs(tmp_path):
    a = _folder(tmp_path / 'pa', 0.8)
    b = _folder(tmp_path / 'pb', 0.45)   # another model: finger-2 below 0.5 here
    out = {}
    for name, probs in (('a', a), ('b', b)):
        out[name] = str(tmp_path / f'{name}.csv')
        code, lines = run_main('make_submission.py', [probs, '--format', 'handbone',
                                                      '--out', out[name], '--no-progress'])
        assert code == 0, lines
    return out


def _split_runs(line):
    """A CSV row with each run of 2+ pixels written as two runs (the same mask)."""
    image, cls, rle = line.rsplit(',', 2)
    numbers = [int(v) for v in rle.split()]
    runs = []
    for start, length in zip(numbers[0::2], numbers[1::2]):
        runs += [start, 1, start + 1, length - 1] if length > 1 else [start, length]
    return f'{image},{cls},{" ".join(map(str, runs))}'


@pytest.mark.parametrize('variant', ['reordered', 'crlf', 'split-runs'])
def test_one_submission_given_twice_in_other_bytes_is_one_hard_vote_input(tmp_path,
                                                                           variant):
    csvs = _csvs(tmp_path)
    lines = open(csvs['a']).read().splitlines()
    twin = tmp_path / 'twin.csv'
    if variant == 'reordered':
        twin.write_text('\n'.join([lines[0]] + lines[1:][::-1]) + '\n')
    elif variant == 'split-runs':
        twin.write_text('\n'.join([lines[0]] + [_split_runs(x) for x in lines[1:]]) + '\n')
    else:
        twin.write_bytes(('\r\n'.join(lines) + '\r\n').encode())
    assert twin.read_bytes() != open(csvs['a'], 'rb').read()
    before = snapshot(str(tmp_path))
    code, err = run_main('ensemble.py', ['--csv', csvs['a'], twin, csvs['b'], '--out',
                                         tmp_path / 'v.csv', '--no-progress'])
    assert_refused(code, err, 2, '--csv', csvs['a'], str(twin), 'the same mask on every row')
    assert snapshot(str(tmp_path)) == before
    code, err = run_main('ensemble.py', ['--csv', csvs['a'], csvs['b'], csvs['a'] + '',
                                         '--out', tmp_path / 'v.csv', '--no-progress'])
    assert code == 2                                  # the same file twice, as before


def _trained(tmp_path, shapes_root):
    work = tmp_path / 'w'
    proc = run_tool('tools/train.py', CONFIG, '--work-dir', str(work),
                    *data_options(shapes_root, 1))
    assert proc.returncode == 0, proc.stderr[-2000:]
    return work


def test_a_pointer_to_a_deleted_checkpoint_is_named(tmp_path, shapes_root):
    work = _trained(tmp_path, shapes_root)
    pointer = work / 'last_checkpoint'
    target = pointer.read_text().strip()
    os.remove(target)
    for resume, words in (([], ['or one to a deleted checkpoint', f"names '{target[:200]}",
                                'which does not exist', 'move it away']),
                          (['--resume'], [f'names {target}', 'which is not a file'])):
        proc = run_tool('tools/train.py', CONFIG, '--work-dir', str(work), *resume,
                        *data_options(shapes_root, 1))
        last = proc.stderr.strip().splitlines()[-1]
        assert proc.returncode == 1 and last.startswith(f'error: {pointer}: '), last
        for word in words:
            assert word in last, last
    pointer.write_text(f'{tmp_path}/x\n{tmp_path}/y\n')
    proc = run_tool('tools/train.py', CONFIG, '--work-dir', str(work), '--resume',
                    *data_options(shapes_root, 1))
    assert proc.stderr.strip().splitlines()[-1] == \
        f'error: {pointer}: holds 2 lines; expected one checkpoint path'


def test_a_training_image_without_ground_truth_is_named(tmp_path):
    data = tmp_path / 'data'
    proc = run_tool('tools/make_synthetic_handbone.py', '--out', str(data), '--patients',
                    '5', '--size', '64x64', '--test-patients', '1')
    assert proc.returncode == 0, proc.stderr
    shutil.rmtree(data / 'train' / 'outputs_json')
    roots = [f'{s}_dataloader.dataset.data_root={data}/train' for s in ('train', 'val')]
    proc = run_tool('tools/train.py', 'custom_configs/demo/unet-s5-tiny_multilabel_1xb4-'
                    '1500i_handbone-synth-128x128.py', '--work-dir', str(tmp_path / 'w'),
                    '--cfg-options', *roots, 'train_cfg.max_iters=1',
                    'train_dataloader.batch_size=2')
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 1 and 'Traceback' not in proc.stderr, proc.stderr[-2000:]
    assert last.startswith(f'error: {data}/train/DCM/') and \
        'no ground truth to learn from' in last, last
    assert not (tmp_path / 'w').exists()               # M-6: the refusal left nothing


def test_a_refused_training_keeps_a_work_dir_it_did_not_make(tmp_path):
    """M-6's boundary: only a work dir the refused run made goes; one that held the
    user's files stays as it was, with this run's log folder beside them."""
    data = tmp_path / 'data'
    proc = run_tool('tools/make_synthetic_handbone.py', '--out', str(data), '--patients',
                    '5', '--size', '64x64', '--test-patients', '1')
    assert proc.returncode == 0, proc.stderr
    shutil.rmtree(data / 'train' / 'outputs_json')
    work = tmp_path / 'mine'
    work.mkdir()
    (work / 'notes.txt').write_text('mine\n')
    roots = [f'{s}_dataloader.dataset.data_root={data}/train' for s in ('train', 'val')]
    proc = run_tool('tools/train.py', 'custom_configs/demo/unet-s5-tiny_multilabel_1xb4-'
                    '1500i_handbone-synth-128x128.py', '--work-dir', str(work),
                    '--cfg-options', *roots, 'train_cfg.max_iters=1',
                    'train_dataloader.batch_size=2')
    assert proc.returncode == 1 and 'no ground truth to learn from' in proc.stderr
    assert (work / 'notes.txt').read_text() == 'mine\n'


def test_a_refused_test_run_leaves_no_work_dir(tmp_path, shapes_root):
    """The same class in ``tools/test.py``: a data error after the runner started, in a
    work dir the run made, removes that work dir."""
    work = _trained(tmp_path, shapes_root)
    checkpoint = (work / 'last_checkpoint').read_text().strip()
    for name in os.listdir(osp.join(shapes_root, 'labels', 'val')):
        with open(osp.join(shapes_root, 'labels', 'val', name), 'wb') as f:
            f.write(b'not a png')
    fresh = tmp_path / 'fresh'
    proc = run_tool('tools/test.py', CONFIG, checkpoint, '--work-dir', str(fresh),
                    *data_options(shapes_root, 1))
    assert proc.returncode == 1 and 'Traceback' not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1].startswith('error: '), proc.stderr[-500:]
    assert not fresh.exists()


def test_a_stale_pointer_of_the_run_itself_is_dropped_and_the_stage_trains_again(
        tmp_path):
    """cv's fold (and a self-training stage) whose own ``last_checkpoint`` names a
    checkpoint the user deleted trains again instead of being refused; a pointer the run
    did not write stays, named by training."""
    from mmseg_ext.io.ownership import Manifest
    from mmseg_ext.training.stages import discard_stale_pointer, resumable
    work = tmp_path / 'cv'
    fold = work / 'fold0'
    work.mkdir()
    manifest = Manifest.claim(str(work), 'cv')
    fold.mkdir()
    pointer = fold / 'last_checkpoint'
    pointer.write_text(str(fold / 'iter_8.pth'))
    manifest.record(str(fold))
    assert resumable(str(fold), manifest) is False
    assert not pointer.exists() and 'fold0/last_checkpoint' not in manifest.entries
    pointer.write_text(str(fold / 'iter_8.pth'))        # written by someone else: kept
    assert discard_stale_pointer(str(fold), manifest) is False and pointer.exists()
    manifest.record(str(pointer))
    (fold / 'iter_8.pth').write_bytes(b'x')             # the checkpoint is there: kept
    assert discard_stale_pointer(str(fold), manifest) is False and pointer.exists()


@pytest.mark.parametrize('signame', ['SIGTERM', 'SIGINT'])
@pytest.mark.parametrize('when', ['atexit', 'teardown'])
def test_a_signal_while_the_interpreter_exits_never_ends_it_silently(tmp_path, signame,
                                                                    when):
    """M-8 (and round N's N-3): a signal after ``main`` returned, while the interpreter
    tears down (atexit handlers, then module and object teardown, where Python has put
    the default handlers back), leaves the exit code the tool's own: 0 after its
    output, never a 143 without an ``error:`` line."""
    import subprocess
    script = tmp_path / 'late.py'
    late = f'os.kill(os.getpid(), signal.{signame}); time.sleep(0.5)'
    hook = (f'atexit.register(lambda: ({late.replace(";", ",")}))' if when == 'atexit' else
            # an object whose finaliser runs in the module teardown, after atexit
            f'class Late:\n    def __del__(self):\n        {late}\nkeep = Late()')
    script.write_text(
        'import atexit, os, signal, sys, time\n'
        f'sys.path.insert(0, {REPO!r})\n'
        'from mmseg_ext.utils.cli import cli_main\n'
        f'{hook}\n'
        '@cli_main\n'
        'def main():\n'
        '    print("done", flush=True)\n'
        'main()\n')
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=60)
    assert proc.stdout == 'done\n'
    assert proc.returncode == 0 and 'error' not in proc.stderr, (proc.returncode,
                                                                 proc.stderr)
