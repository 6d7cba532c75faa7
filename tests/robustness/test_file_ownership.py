"""``--force`` replaces a single output file only when the tool wrote it and it is unchanged.

Every tool whose output is one file the user names (a submission CSV, a hard-voted CSV,
a thresholds JSON, a chart, a downloaded checkpoint) is run over:

* a file of the user's at that path (no ownership record): refused with one ``error:``
  line naming it, the file byte for byte as it was;
* the tool's own earlier output: replaced;
* the tool's own output, edited by the user since: refused, the edit kept;
* another tool's output: refused.

Also the demo, whose work dir is its own: a folder with the user's files is refused
before anything is written.
"""
import hashlib
import json
import os
import os.path as osp

import numpy as np
import pytest

from . import test_bad_inputs as harness
from .test_bad_inputs import run_main

world = harness.world  # the harness's valid inputs (a module fixture)


@pytest.fixture(scope='module')
def extra(world, tmp_path_factory):
    """Inputs the harness world lacks: ground truth, a matrix, two CSVs, a download."""
    root = tmp_path_factory.mktemp('file_ownership')
    for key in ('ID1/a', 'ID1/b'):
        os.makedirs(root / 'gt' / 'ID1', exist_ok=True)
        np.save(root / 'gt' / f'{key}.npy', np.ones((2, 8, 8), np.uint8))
    np.save(root / 'matrix.npy', np.array([[3, 1], [0, 4]], np.int64))
    csvs = []
    for name, threshold in (('a.csv', '0.5'), ('b.csv', '0.2')):  # two runs, not a copy
        status, lines = run_main('make_submission.py', [
            world['probs'], '--format', 'handbone', '--out', root / name, '--thresholds',
            threshold, '--no-progress'])
        assert status == 0, lines
        csvs.append(str(root / name))
    assert open(csvs[0]).read() != open(csvs[1]).read()
    blob = root / 'weights.bin'
    blob.write_bytes(os.urandom(4096))
    return dict(gt=str(root / 'gt'), matrix=str(root / 'matrix.npy'), csvs=csvs,
                blob=blob.as_uri())


# (id, tool, argv(world, extra, out) -> list, the output file's name inside `out`'s
# folder, or None when `out` is the file itself)
FILE_WRITERS = [
    ('make_submission', 'make_submission.py', lambda w, x, out: [
        w['probs'], '--format', 'handbone', '--out', out, '--no-progress'], None),
    ('ensemble_hard_vote', 'ensemble.py', lambda w, x, out: [
        '--csv', *x['csvs'], '--out', out, '--no-progress'], None),
    ('tune_thresholds', 'tune_thresholds.py', lambda w, x, out: [
        w['probs'], '--gt', x['gt'], '--out', out, '--no-progress'], None),
    ('visualize_confusion', 'visualize.py', lambda w, x, out: [
        'confusion', '--matrix', x['matrix'], '--classes', 'a', 'b', '--out', out], None),
    ('get_weights', 'get_weights.py', lambda w, x, out: [
        'hrnetv2-w18', '--url', x['blob'], '--out-dir', osp.dirname(out),
        '--no-progress'], 'hrnetv2_w18-00eb2006.pth'),
]
IDS = [w[0] for w in FILE_WRITERS]
#: the writers whose test inputs give a successful run (get_weights' own download is
#: tested through its function, with weights whose checksum the test knows)
RUNNABLE = [w for w in FILE_WRITERS if w[0] != 'get_weights']


def _paths(tmp_path, name):
    """``(path given to the tool, the file it writes)``."""
    if name is None:  # a name every writer takes: no suffix (a chart is then a PNG;
        # a suffix of one format, .png or .csv, is refused by the others)
        out = str(tmp_path / 'out' / 'result')
        return out, out
    return str(tmp_path / 'out' / 'x'), str(tmp_path / 'out' / name)


def _run(tool, make_argv, world, extra, out, force):
    return run_main(tool, [*make_argv(world, extra, out), *(['--force'] if force else [])])


def _refused(status, lines, target):
    errors = [line for line in lines if line.startswith('error:')]
    assert status != 0, lines
    assert len(errors) == 1 and not any('Traceback' in line for line in lines), lines
    assert target in errors[0], (target, errors[0])
    return errors[0]


@pytest.mark.parametrize('writer', FILE_WRITERS, ids=IDS)
def test_force_refuses_a_users_file(writer, world, extra, tmp_path):
    _, tool, make_argv, name = writer
    out, target = _paths(tmp_path, name)
    os.makedirs(osp.dirname(target))
    with open(target, 'wb') as f:
        f.write(b'the user\'s own file')
    status, lines = _run(tool, make_argv, world, extra, out, force=True)
    error = _refused(status, lines, target)
    assert 'not written by this tool' in error, error
    assert open(target, 'rb').read() == b'the user\'s own file'
    assert os.listdir(osp.dirname(target)) == [osp.basename(target)]  # nothing left


@pytest.mark.parametrize('writer', RUNNABLE, ids=[w[0] for w in RUNNABLE])
def test_force_replaces_the_tools_own_output_but_not_an_edited_one(
        writer, world, extra, tmp_path):
    _, tool, make_argv, name = writer
    out, target = _paths(tmp_path, name)
    status, lines = _run(tool, make_argv, world, extra, out, force=False)
    assert status == 0, lines
    first = open(target, 'rb').read()
    status, lines = _run(tool, make_argv, world, extra, out, force=False)
    assert status != 0 and open(target, 'rb').read() == first  # exists, no --force

    os.utime(target, ns=(1, 1))  # so a replacement is told apart by its mtime
    status, lines = _run(tool, make_argv, world, extra, out, force=True)
    error = _refused(status, lines, target)  # the mtime changed: not as written
    assert 'changed since' in error, error

    with open(target, 'wb') as f:  # the same bytes written again: still not as written
        f.write(first)
    status, lines = _run(tool, make_argv, world, extra, out, force=True)
    _refused(status, lines, target)
    assert open(target, 'rb').read() == first


@pytest.mark.parametrize('writer', RUNNABLE, ids=[w[0] for w in RUNNABLE])
def test_force_replaces_the_tools_own_unchanged_output(writer, world, extra, tmp_path):
    _, tool, make_argv, name = writer
    out, target = _paths(tmp_path, name)
    status, lines = _run(tool, make_argv, world, extra, out, force=False)
    assert status == 0, lines
    before = os.stat(target)
    status, lines = _run(tool, make_argv, world, extra, out, force=True)
    assert status == 0, lines
    after = os.stat(target)
    assert after.st_ino != before.st_ino  # a new file in its place
    records = [n for n in os.listdir(osp.dirname(target)) if n.endswith('_owner.json')]
    assert len(records) == 1, os.listdir(osp.dirname(target))
    record = json.load(open(osp.join(osp.dirname(target), records[0])))
    assert (record['file'], record['size'], record['mtime_ns']) == (
        osp.basename(target), after.st_size, after.st_mtime_ns)


def test_get_weights_force_replaces_only_its_own_unchanged_download(tmp_path):
    from mmseg_ext.training.weights import PretrainedWeights, fetch_weights
    from mmseg_ext.utils.errors import OutputError
    data = b'weights of a test'
    src = tmp_path / 'src.pth'
    src.write_bytes(data)
    weights = PretrainedWeights(
        name='fake', filename='fake.pth', urls=(src.as_uri(),), check_key='x',
        override='model.pretrained=None', description='test',
        sha256_prefix=hashlib.sha256(data).hexdigest()[:8])
    out = tmp_path / 'pretrain'
    first = fetch_weights(weights, str(out), progress=False)
    assert first.status == 'downloaded'
    inode = os.stat(first.path).st_ino
    again = fetch_weights(weights, str(out), progress=False, force=True)
    assert again.status == 'downloaded' and os.stat(again.path).st_ino != inode
    os.utime(again.path, ns=(1, 1))  # touched by the user: no longer as downloaded
    with pytest.raises(OutputError, match='changed since this tool wrote it'):
        fetch_weights(weights, str(out), progress=False, force=True)
    assert os.stat(again.path).st_mtime_ns == 1


def test_force_refuses_another_tools_output(world, extra, tmp_path):
    """A hard-voted CSV is not make_submission's to replace, though both are CSVs."""
    out = str(tmp_path / 'sub.csv')
    status, lines = run_main('ensemble.py', ['--csv', *extra['csvs'], '--out', out,
                                             '--no-progress'])
    assert status == 0, lines
    first = open(out, 'rb').read()
    status, lines = run_main('make_submission.py', [
        world['probs'], '--format', 'handbone', '--out', out, '--no-progress', '--force'])
    error = _refused(status, lines, out)
    assert 'written by ensemble' in error, error
    assert open(out, 'rb').read() == first


def test_a_record_that_is_not_a_file_is_refused_before_writing(world, tmp_path):
    out = tmp_path / 'sub.csv'
    from mmseg_ext.io.owned_file import record_path
    os.makedirs(record_path(str(out)))
    status, lines = run_main('make_submission.py', [
        world['probs'], '--format', 'handbone', '--out', out, '--no-progress'])
    _refused(status, lines, record_path(str(out)))
    assert not out.exists()


def test_the_demo_refuses_a_folder_with_the_users_files(tmp_path):
    """Before, the demo wrote data/, val_metrics.json and submission.csv over whatever
    the folder held."""
    work = tmp_path / 'mine'
    work.mkdir()
    (work / 'submission.csv').write_text('my best submission\n')
    status, lines = run_main('demo.py', ['--work-dir', work, '--max-iters', '1'])
    _refused(status, lines, str(work))
    assert sorted(os.listdir(work)) == ['submission.csv']
    assert (work / 'submission.csv').read_text() == 'my best submission\n'
