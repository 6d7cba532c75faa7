"""Commits are signal-atomic and all-or-nothing (mmseg_ext/io/staged_dir.py, file_sets.py).

Signals are sent deterministically (``os.kill`` of this process at the exact point,
from a patched ``os.rename``/``os.replace``) while SIGTERM raises ``Interrupted`` like
in the tools; the earlier output must never be hidden in a ``.old-*`` folder.
"""
import os
import os.path as osp
import signal

import pytest

from mmseg_ext.io import atomic, staged_dir
from mmseg_ext.io.file_sets import atomic_write_files
from mmseg_ext.io.staged_dir import StagedDir
from mmseg_ext.utils.errors import Interrupted, OutputError, OutputExistsError

from .test_bad_inputs import snapshot


@pytest.fixture
def sigterm_raises():
    def handler(signum, frame):
        raise Interrupted(signum, 'SIGTERM')
    previous = signal.signal(signal.SIGTERM, handler)
    yield
    signal.signal(signal.SIGTERM, previous)


def publish(path, text, force):
    with StagedDir(path, force=force) as staged:
        open(staged.file('index.json'), 'w').write(text)
        open(staged.file('a/b.txt'), 'w').write(text * 3)
        staged.commit()


def hidden(folder):
    return sorted(n for n in os.listdir(folder) if n.startswith('.'))


def test_sigterm_between_the_renames_publishes_whole(tmp_path, monkeypatch,
                                                     sigterm_raises):
    out = str(tmp_path / 'e')
    publish(out, 'old', False)
    real = os.rename
    calls = []

    def rename(src, dst):
        real(src, dst)
        calls.append(dst)
        if len(calls) == 1:  # the earlier folder is aside: the worst moment
            os.kill(os.getpid(), signal.SIGTERM)
    monkeypatch.setattr(staged_dir.os, 'rename', rename)
    with pytest.raises(Interrupted):
        publish(out, 'new', True)
    assert len(calls) == 2, 'the signal was not deferred to the end of the commit'
    assert open(osp.join(out, 'index.json')).read() == 'new'
    assert open(osp.join(out, 'a/b.txt')).read() == 'newnewnew'
    assert hidden(tmp_path) == []


def test_sigterm_during_removal_of_old_leaves_no_half_copy(tmp_path, monkeypatch,
                                                           sigterm_raises):
    out = str(tmp_path / 'e')
    publish(out, 'old', False)
    real = staged_dir.shutil.rmtree

    def rmtree(path, *a, **k):
        os.kill(os.getpid(), signal.SIGTERM)
        real(path, *a, **k)
    monkeypatch.setattr(staged_dir.shutil, 'rmtree', rmtree)
    with pytest.raises(Interrupted):
        publish(out, 'new', True)
    assert open(osp.join(out, 'index.json')).read() == 'new'
    assert hidden(tmp_path) == []


def test_failed_publish_restores_the_earlier_folder(tmp_path, monkeypatch):
    out = str(tmp_path / 'e')
    publish(out, 'old', False)
    before = snapshot(str(tmp_path))
    real = os.rename

    def rename(src, dst):
        if osp.basename(src).startswith('.e.partial-'):
            raise OSError(5, 'Input/output error')
        real(src, dst)
    monkeypatch.setattr(staged_dir.os, 'rename', rename)
    with pytest.raises(OutputError, match=f'{out}: cannot write the output'):
        publish(out, 'new', True)
    assert snapshot(str(tmp_path)) == before


def test_concurrent_force_publish_is_one_error_and_no_leftovers(tmp_path, monkeypatch):
    """Another run publishes while this one has moved the earlier folder aside."""
    out = str(tmp_path / 'e')
    publish(out, 'old', False)
    real = os.rename
    state = {}

    def rename(src, dst):
        real(src, dst)
        if dst.startswith(str(tmp_path / '.e.old-')) and not state:
            state['other'] = 1  # the other run: its folder appears now
            os.makedirs(osp.join(out, 'x'))
            open(osp.join(out, 'index.json'), 'w').write('other')
    monkeypatch.setattr(staged_dir.os, 'rename', rename)
    with pytest.raises(OutputExistsError, match='appeared while this run'):
        publish(out, 'new', True)
    assert open(osp.join(out, 'index.json')).read() == 'other'
    assert hidden(tmp_path) == []


def files(tmp_path, k):
    return {str(tmp_path / f'f{i}.txt'): f'run {k} file {i}\n' for i in range(4)}


def test_write_files_sigterm_in_publish_loop_is_all_new(tmp_path, monkeypatch,
                                                        sigterm_raises):
    atomic_write_files(files(tmp_path, 1))
    real = os.replace
    calls = []

    def replace(src, dst):
        real(src, dst)
        calls.append(dst)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGTERM)
    monkeypatch.setattr(atomic.os, 'replace', replace)
    with pytest.raises(Interrupted):
        atomic_write_files(files(tmp_path, 2), force=True)
    assert {p: open(p).read() for p in files(tmp_path, 2)} == files(tmp_path, 2)
    assert hidden(tmp_path) == []


def test_write_files_error_in_publish_loop_restores_all(tmp_path, monkeypatch):
    atomic_write_files(files(tmp_path, 1))
    (tmp_path / 'stale.txt').write_text('stale')
    before = snapshot(str(tmp_path))
    real = os.replace
    calls = []

    def replace(src, dst):
        calls.append(dst)
        if len(calls) == 3 and osp.basename(src).startswith('.f'):
            raise OSError(5, 'Input/output error')
        real(src, dst)
    monkeypatch.setattr(atomic.os, 'replace', replace)
    with pytest.raises(OutputError, match='cannot write the output'):
        atomic_write_files(files(tmp_path, 2), force=True,
                           remove=[str(tmp_path / 'stale.txt')])
    assert snapshot(str(tmp_path)) == before
