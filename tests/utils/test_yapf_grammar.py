"""yapf's grammar cache under processes that start together (CI failure of stop 48).

yapf 0.43 renames its grammar pickle into place before flushing it; a rank of
``tools/dist_train.sh`` that read it in that window stopped with ``EOFError``. The tests
rebuild the damage by hand (an empty pickle, as that window leaves it) in a cache folder
of their own (``XDG_CACHE_HOME``), and compare the repaired pickles with those yapf writes
itself in a clean folder.
"""
import fcntl
import glob
import os
import pickle
import subprocess
import sys

import pytest

pytest.importorskip('yapf')  # yapf's own modules import only through yapf (a cycle)
from yapf_third_party._ylib2to3.pgen2 import driver  # noqa: E402

if not hasattr(driver, '_generate_pickle_name'):
    pytest.skip('another yapf layout: the guard stands aside', allow_module_level=True)

from mmseg_ext.utils import yapf_grammar  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _python(code, cache):
    env = dict(os.environ, XDG_CACHE_HOME=str(cache), PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, '-c', code], env=env, capture_output=True,
                          text=True, timeout=120)


def _pickles(cache):
    return sorted(glob.glob(os.path.join(str(cache), 'YAPF', '*', '*.pickle')))


def _load(path):
    with open(path, 'rb') as f:
        return pickle.load(f)


def test_empty_cached_grammar_is_written_again(tmp_path):
    clean, damaged = tmp_path / 'clean', tmp_path / 'damaged'
    for cache in (clean, damaged):
        assert _python('import yapf', cache).returncode == 0
    reference = {os.path.basename(p): _load(p) for p in _pickles(clean)}
    assert len(reference) == 2
    for path in _pickles(damaged):
        open(path, 'wb').close()  # what a reader saw in the window, or a killed writer left

    # the damage is real: yapf alone cannot start on it
    alone = _python('import yapf', damaged)
    assert alone.returncode != 0 and 'EOFError' in alone.stderr

    through_plugin = _python('import mmseg_ext, yapf; print("imported")', damaged)
    assert through_plugin.returncode == 0, through_plugin.stderr
    assert 'imported' in through_plugin.stdout
    assert through_plugin.stderr.count("yapf's cached grammar was empty or damaged") == 2
    repaired = {os.path.basename(p): _load(p) for p in _pickles(damaged)}
    assert repaired == reference
    # and yapf alone starts on it again
    assert _python('import yapf', damaged).returncode == 0


def test_readable_cache_is_left_alone(tmp_path):
    assert _python('import yapf', tmp_path).returncode == 0
    before = {p: (os.stat(p).st_mtime_ns, open(p, 'rb').read()) for p in _pickles(tmp_path)}
    run = _python('import mmseg_ext, yapf', tmp_path)
    assert run.returncode == 0, run.stderr
    assert 'damaged' not in run.stderr
    assert {p: (os.stat(p).st_mtime_ns, open(p, 'rb').read())
            for p in _pickles(tmp_path)} == before


def test_guard_holds_the_cache_lock(tmp_path, monkeypatch):
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path))
    folder = os.path.dirname(yapf_grammar.cached_grammar_path('Grammar.txt'))
    with yapf_grammar.grammar_cache_guard():
        fd = os.open(os.path.join(folder, yapf_grammar.LOCK_NAME), os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
    fd = os.open(os.path.join(folder, yapf_grammar.LOCK_NAME), os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released on leaving
    finally:
        os.close(fd)


def test_processes_starting_together_on_a_cold_cache(tmp_path):
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path), PYTHONPATH=ROOT)
    code = 'import mmseg_ext, yapf; print("imported")'
    procs = [subprocess.Popen([sys.executable, '-c', code], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(4)]
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    for code_, out, err in results:
        assert code_ == 0 and 'imported' in out, err
    assert len(_pickles(tmp_path)) == 2
    for path in _pickles(tmp_path):
        assert isinstance(_load(path), dict)
