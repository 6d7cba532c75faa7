"""Two runs writing one output at once: the second is refused while the first builds it
(issue 28). Before, two ``tools/inference.py --force`` runs into one folder both exited
0 and the later one replaced the earlier one's output.

Another process holds the output's writer lock (:mod:`mmseg_ext.io.output_lock`) as a
running tool does; each tool that writes a file or a folder output is then run into that
output with ``--force`` and must give one line naming the output, exit non-zero, and
leave the earlier output as it was. Once the other process is gone, the same command
succeeds.
"""
import os
import subprocess
import sys

import pytest

from mmseg_ext.io.output_lock import output_lock
from mmseg_ext.utils.errors import OutputError

from .test_bad_inputs import run_main, snapshot

HOLD = '''
import sys, time
from mmseg_ext.io.output_lock import output_lock
with output_lock(sys.argv[1]):
    print('held', flush=True)
    time.sleep(120)
'''


@pytest.fixture
def held():
    """``hold(path)``: another process holds the writer lock of ``path``."""
    procs = []

    def hold(path, env=None):
        proc = subprocess.Popen([sys.executable, '-c', HOLD, str(path)],
                                stdout=subprocess.PIPE, text=True,
                                env={**os.environ, **(env or {})})
        procs.append(proc)
        assert proc.stdout.readline().strip() == 'held'
        return proc
    yield hold
    for proc in procs:
        proc.kill()
        proc.wait()


def test_a_second_writer_is_refused_and_the_first_keeps_its_output(held, tmp_path):
    out = tmp_path / 'out.txt'
    proc = held(out)
    with pytest.raises(OutputError, match=rf'^{out}: another run is writing this output '
                       rf'now \(process {proc.pid}\); wait for it'):
        with output_lock(str(out)):
            pass
    proc.kill()
    proc.wait()
    with output_lock(str(out)):   # free again once the other process is gone
        pass


def test_the_lock_is_keyed_by_the_resolved_path(held, tmp_path):
    (tmp_path / 'a').mkdir()
    os.symlink(tmp_path / 'a', tmp_path / 'link')
    held(tmp_path / 'a' / 'x.csv')
    with pytest.raises(OutputError, match='another run is writing'):
        with output_lock(str(tmp_path / 'link' / '..' / 'a' / 'x.csv')):
            pass
    with output_lock(str(tmp_path / 'a' / 'y.csv')):  # another output: free
        pass


def test_runs_with_their_own_tmpdir_share_the_lock(held, tmp_path, monkeypatch):
    """Batch schedulers give each job its own ``$TMPDIR``; two such jobs writing one
    output still exclude each other (hostile round s10: both published)."""
    import tempfile
    (tmp_path / 'tA').mkdir()
    (tmp_path / 'tB').mkdir()
    held(tmp_path / 'o', env={'TMPDIR': str(tmp_path / 'tA')})
    monkeypatch.setenv('TMPDIR', str(tmp_path / 'tB'))
    monkeypatch.setattr(tempfile, 'tempdir', None)  # gettempdir() reads TMPDIR again
    with pytest.raises(OutputError, match='another run is writing'):
        with output_lock(str(tmp_path / 'o')):
            pass


def test_reentrant_within_a_process(tmp_path):
    with output_lock(str(tmp_path / 'o')):
        with output_lock(str(tmp_path / 'o')):
            pass


@pytest.fixture(scope='module')
def probs(tmp_path_factory):
    """A hand-bone probability folder of two 8x8 images (29 classes)."""
    import numpy as np
    from probs_helpers import write_prob_folder

    from mmseg_ext.utils.class_names import HAND_BONE_CLASSES
    rng = np.random.default_rng(0)
    images = {f'ID00{i}/img{i}.png': (rng.random((len(HAND_BONE_CLASSES), 8, 8)), (8, 8))
              for i in range(2)}
    root = tmp_path_factory.mktemp('lock')
    return dict(dir=write_prob_folder(root / 'probs', images, list(HAND_BONE_CLASSES)),
                dir2=write_prob_folder(root / 'probs2', {k: (p * 0.5, size) for k, (p, size)
                                                         in images.items()},
                                       list(HAND_BONE_CLASSES), dtype='float16'))


def test_tools_refuse_an_output_another_run_is_writing(held, tmp_path, probs):
    """A folder output (ensemble's soft vote) and a file output (make_submission's CSV),
    each written once, then again with --force while another run holds it."""
    cases = [('ensemble.py', lambda out: [probs['dir'], probs['dir2'], '--out-dir', out]),
             ('make_submission.py', lambda out: [probs['dir'], '--format', 'handbone',
                                                 '--out', out])]
    for tool, argv in cases:
        out = str(tmp_path / f'{tool}.out')
        code, _ = run_main(tool, argv(out))
        assert code == 0
        before = snapshot(str(tmp_path))
        proc = held(out)
        code, lines = run_main(tool, argv(out) + ['--force'])
        assert code != 0
        assert lines[-1].startswith(f'error: {out}: another run is writing this output now '
                                    f'(process {proc.pid})')
        assert snapshot(str(tmp_path)) == before
        proc.kill()
        proc.wait()
        code, _ = run_main(tool, argv(out) + ['--force'])
        assert code == 0


def test_a_lock_folder_that_is_a_link_is_passed_over(tmp_path, monkeypatch):
    """A planted link at the lock folder's name (another user's trap) is not followed:
    the locks go to the next root."""
    from mmseg_ext.io import output_lock as module
    first, second, elsewhere = (tmp_path / n for n in ('r1', 'r2', 'elsewhere'))
    for folder in (first, second, elsewhere):
        folder.mkdir()
    name = f'mmseg_ext-locks-{os.getuid()}'
    os.symlink(elsewhere, first / name)
    monkeypatch.setattr(module, 'LOCK_ROOTS', (str(first), str(second)))
    with output_lock(str(tmp_path / 'out')):
        assert len(os.listdir(second / name)) == 1
    assert os.listdir(elsewhere) == []
