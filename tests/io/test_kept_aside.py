"""A rerun keeps the earlier run's outputs until its own are complete
(``Manifest.kept_aside``, round M's M-7: an interrupted ``tools/demo.py`` rerun lost the
earlier demo)."""
import os
import os.path as osp
import signal

import pytest

from mmseg_ext.io.ownership import PREVIOUS, Manifest
from mmseg_ext.utils.errors import DataError, Interrupted, OutputError


def _contents(root):
    """Every file under ``root`` (bookkeeping left out): relative path -> bytes."""
    seen = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            if name.startswith('.mmseg_ext'):
                continue
            path = osp.join(dirpath, name)
            with open(path, 'rb') as f:
                seen[osp.relpath(path, root)] = f.read()
    return seen


def _write(path, text):
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(text)


@pytest.fixture
def earlier(tmp_path):
    """A work dir whose manifest lists an earlier run: ``a.txt`` and ``sub/b.txt``."""
    work = str(tmp_path / 'work')
    os.makedirs(work)
    manifest = Manifest.claim(work, 'demo')
    _write(osp.join(work, 'a.txt'), 'earlier a\n')
    _write(osp.join(work, 'sub', 'b.txt'), 'earlier b\n')
    manifest.record(osp.join(work, 'a.txt'))
    manifest.record(osp.join(work, 'sub'))
    return work, manifest


def _rerun(work, manifest, fail=None):
    """A rerun writing ``a.txt`` and ``c.txt`` (and listing them), then ``fail``."""
    with manifest.kept_aside():
        try:
            assert osp.isdir(osp.join(work, PREVIOUS))  # the earlier run is kept meanwhile
            assert not osp.exists(osp.join(work, 'a.txt'))
            _write(osp.join(work, 'a.txt'), 'new a\n')
            _write(osp.join(work, 'c.txt'), 'new c\n')
            if fail is not None:
                raise fail
        finally:
            for name in ('a.txt', 'c.txt'):
                manifest.record(osp.join(work, name), save=False)
            manifest.save()


def test_a_complete_rerun_replaces_the_earlier_outputs(earlier):
    work, manifest = earlier
    _rerun(work, manifest)
    assert _contents(work) == {'a.txt': b'new a\n', 'c.txt': b'new c\n'}
    assert not osp.exists(osp.join(work, PREVIOUS))
    assert sorted(Manifest.read(work).entries) == ['a.txt', 'c.txt']


@pytest.mark.parametrize('failure', [DataError('bad image'), Interrupted(signal.SIGTERM, 'SIGTERM'),
                                     KeyboardInterrupt()],
                         ids=['error', 'sigterm', 'sigint'])
def test_a_failed_or_interrupted_rerun_puts_the_earlier_outputs_back(earlier, failure):
    work, manifest = earlier
    before = _contents(work)
    entries = dict(Manifest.read(work).entries)
    with pytest.raises(type(failure)):
        _rerun(work, manifest, fail=failure)
    assert _contents(work) == before                   # byte for byte, c.txt gone
    assert not osp.exists(osp.join(work, PREVIOUS))
    assert Manifest.read(work).entries == entries      # listed exactly as before
    _rerun(work, manifest)                             # and a later rerun still works
    assert _contents(work) == {'a.txt': b'new a\n', 'c.txt': b'new c\n'}


def test_a_rerun_killed_outright_is_named_not_guessed(earlier):
    work, manifest = earlier
    os.mkdir(osp.join(work, PREVIOUS))                 # what SIGKILL mid-run leaves
    os.rename(osp.join(work, 'a.txt'), osp.join(work, PREVIOUS, 'a.txt'))
    with pytest.raises(OutputError, match=rf'^{osp.join(work, PREVIOUS)}: the complete '
                       'outputs of an earlier run, kept aside by a rerun that was killed'):
        _rerun(work, manifest)
    assert _contents(work)[osp.join(PREVIOUS, 'a.txt')] == b'earlier a\n'


def test_an_earlier_output_changed_since_is_refused_before_anything_moves(earlier):
    work, manifest = earlier
    _write(osp.join(work, 'sub', 'b.txt'), 'edited by the user\n')
    before = _contents(work)
    with pytest.raises(OutputError, match='b.txt: changed since this tool wrote it'):
        _rerun(work, manifest)
    assert _contents(work) == before and not osp.exists(osp.join(work, PREVIOUS))


def test_a_first_run_has_nothing_to_keep(tmp_path):
    work = str(tmp_path / 'work')
    os.makedirs(work)
    manifest = Manifest.claim(work, 'demo')
    with pytest.raises(DataError):
        _rerun_first(work, manifest)
    assert _contents(work) == {'a.txt': b'new a\n'}     # listed: the next run replaces it


def _rerun_first(work, manifest):
    with manifest.kept_aside():
        assert not osp.exists(osp.join(work, PREVIOUS))
        _write(osp.join(work, 'a.txt'), 'new a\n')
        manifest.record(osp.join(work, 'a.txt'))
        raise DataError('bad')
