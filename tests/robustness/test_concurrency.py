"""Concurrency: two runs on one work dir. The work dir is locked while a run uses it
(``flock``): a second run is refused with one line naming the holder's pid and changes
nothing; a lock left by a killed process blocks nothing."""
import os
import signal
import subprocess
import sys

import pytest

from mmseg_ext.io.work_dir_lock import LOCK, WorkDirLock
from mmseg_ext.utils.errors import OutputError

from .cv_fakes import SHAPES, run_cv, shapes_cfg_options, shapes_world
from .test_bad_inputs import assert_refused, run_main, snapshot

HOLD = '''
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
os.ftruncate(fd, 0)
os.write(fd, f"{os.getpid()}\\n".encode())
print("held", flush=True)
time.sleep(600)
'''


def hold_lock(work):
    """Another process holding ``work``'s lock, as a running tool does."""
    proc = subprocess.Popen([sys.executable, '-c', HOLD, str(work / LOCK)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == 'held'
    return proc


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    return shapes_world(tmp_path_factory, 'conc')


def cli_argv(shapes, work):
    root = shapes['root']
    return [SHAPES, '-k', '2', '--work-dir', str(work), '--no-progress', '--cfg-options',
            *(f'{s}_dataloader.dataset.data_root={root}' for s in ('train', 'val', 'test')),
            'model.data_preprocessor.size=(32,40)', 'log_level=WARNING']


@pytest.mark.parametrize('force', [False, True], ids=['plain', 'force'])
def test_a_second_run_on_a_work_dir_in_use_is_refused(shapes, tmp_path, force):
    work = tmp_path / 'w'
    run_cv(SHAPES, work, shapes['ckpt'], shapes_cfg_options(shapes['root']))
    holder = hold_lock(work)
    try:
        before = snapshot(str(work), shapes['root'])
        code, lines = run_main('cv.py', cli_argv(shapes, work) + (['--force'] * force))
        assert_refused(code, lines, 1)
        assert lines == [f'error: {work}: in use by another run (pid {holder.pid})']
        assert snapshot(str(work), shapes['root']) == before
    finally:
        holder.kill()
        holder.wait()
    # killed: the kernel dropped its lock, and the lock file it left blocks nothing
    assert (work / LOCK).read_text().strip() == str(holder.pid)
    summary = run_cv(SHAPES, work, shapes['ckpt'], shapes_cfg_options(shapes['root']))
    assert [f.fold for f in summary.folds] == [0, 1]


def test_self_train_on_a_work_dir_in_use_is_refused(shapes, tmp_path):
    work = tmp_path / 'st'
    work.mkdir()
    holder = hold_lock(work)
    try:
        before = snapshot(str(work))
        code, lines = run_main('self_train.py', [
            SHAPES, SHAPES, '--unlabelled', f'{shapes["root"]}/images/val', '--img-suffix',
            '.png', '--work-dir', str(work), '--cfg-options',
            f'train_dataloader.data_root={shapes["root"]}'])
        assert_refused(code, lines, 1)
        assert lines == [f'error: {work}: in use by another run (pid {holder.pid})']
        assert snapshot(str(work)) == before
    finally:
        holder.kill()
        holder.wait()


def test_the_lock_is_released_on_errors_and_signals(tmp_path):
    work = str(tmp_path / 'w')
    with pytest.raises(RuntimeError):
        with WorkDirLock(work):
            with pytest.raises(OutputError, match=f'^{work}: in use by another run '
                               f'\\(pid {os.getpid()}\\)$'):
                WorkDirLock(work).acquire()             # held: even this process waits
            raise RuntimeError('a stage failed')
    WorkDirLock(work).acquire().release()              # released by the error
    # a process that holds the lock and dies of SIGTERM releases it too
    proc = subprocess.Popen([sys.executable, '-c', HOLD, os.path.join(work, LOCK)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == 'held'
    with pytest.raises(OutputError, match='in use by another run'):
        WorkDirLock(work).acquire()
    proc.send_signal(signal.SIGTERM)
    proc.wait()
    WorkDirLock(work).acquire().release()
