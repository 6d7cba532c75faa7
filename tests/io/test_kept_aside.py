"""A rerun keeps the earlier run's outputs until its own are complete
(``io.rerun_aside``; round M's M-7: an interrupted ``tools/demo.py`` rerun lost the
earlier demo; rounds N and O: files of others, and a SIGKILL at every step)."""
import os
import os.path as osp
import shutil
import signal

import pytest

from mmseg_ext.io.ownership import Manifest
from mmseg_ext.io.rerun_aside import KILLED, PREVIOUS, kept_aside, recover_previous
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
    with kept_aside(manifest):
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


def test_a_rerun_that_did_not_finish_must_be_undone_first(earlier):
    work, manifest = earlier
    os.mkdir(osp.join(work, PREVIOUS))
    with pytest.raises(OutputError, match=rf'^{osp.join(work, PREVIOUS)}: the outputs of '
                       'an earlier run kept aside by a rerun that did not finish'):
        _rerun(work, manifest)


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
    with kept_aside(manifest):
        assert not osp.exists(osp.join(work, PREVIOUS))
        _write(osp.join(work, 'a.txt'), 'new a\n')
        manifest.record(osp.join(work, 'a.txt'))
        raise DataError('bad')


def test_a_file_put_in_the_work_dir_during_a_failed_rerun_stays(earlier):
    """Round N's N-1: the rerun lists only what it wrote, so a failure removes those
    and leaves a file someone put there meanwhile."""
    work, manifest = earlier
    before = _contents(work)

    def add_notes():
        _write(osp.join(work, 'notes.txt'), 'mine\n')
        raise DataError('bad')
    with pytest.raises(DataError):
        with kept_aside(manifest):
            try:
                _write(osp.join(work, 'a.txt'), 'new a\n')
                add_notes()
            finally:
                manifest.record(osp.join(work, 'a.txt'))
    assert _contents(work) == dict(before, **{'notes.txt': b'mine\n'})
    assert 'notes.txt' not in Manifest.read(work).entries


def _killed_rerun(work, manifest, during_move=False):
    """What a rerun killed outright leaves: the earlier outputs in PREVIOUS (all, or
    only ``a.txt`` when it was killed while moving them) and partial new ones."""
    aside = osp.join(work, PREVIOUS)
    os.mkdir(aside)
    os.rename(osp.join(work, 'a.txt'), osp.join(aside, 'a.txt'))
    if during_move:
        return  # the manifest still lists the earlier outputs in place
    os.rename(osp.join(work, 'sub'), osp.join(aside, 'sub'))
    manifest.entries = {f'{PREVIOUS}/{r}': e for r, e in manifest.entries.items()}
    manifest.entries[PREVIOUS] = {'type': 'dir', 'rerun': 'running', 'back': []}
    manifest.save()
    _write(osp.join(work, 'a.txt'), 'partial a\n')
    _write(osp.join(work, '.a.txt.partial-x1'), 'staging\n')


@pytest.mark.parametrize('during_move', [False, True], ids=['after', 'while-moving'])
def test_a_rerun_killed_outright_is_undone_by_the_next(earlier, during_move):
    """N-5 and P-1: the next run puts the earlier outputs back, listed as before. What
    the killed rerun left beside them cannot be proven its own (a file someone put
    there meanwhile looks the same), so it is moved into KILLED, never deleted, and
    the run stops naming it."""
    work, manifest = earlier
    before = _contents(work)
    entries = dict(Manifest.read(work).entries)
    _killed_rerun(work, manifest, during_move)
    manifest = Manifest.read(work)
    if during_move:   # nothing of the rerun's yet
        assert recover_previous(manifest) is True
    else:
        with pytest.raises(OutputError, match=rf'^{osp.join(work, KILLED)}: what a rerun '
                           'killed outright left .* nothing deleted; the earlier outputs '
                           'are back in place'):
            recover_previous(manifest)
        assert _contents(osp.join(work, KILLED)) == {'a.txt': b'partial a\n',
                                                    '.a.txt.partial-x1': b'staging\n'}
        shutil.rmtree(osp.join(work, KILLED))
    assert _contents(work) == before and not osp.exists(osp.join(work, PREVIOUS))
    assert Manifest.read(work).entries == entries
    assert recover_previous(manifest) is False   # nothing left to undo
    _rerun(work, manifest)
    assert _contents(work) == {'a.txt': b'new a\n', 'c.txt': b'new c\n'}


def test_a_killed_rerun_beside_a_file_of_someone_else_deletes_nothing(earlier):
    """P-1: a file someone put in the work dir during the killed rerun (even one named
    like an output) is moved with the rerun's partial outputs, never deleted."""
    work, manifest = earlier
    _killed_rerun(work, manifest)
    _write(osp.join(work, 'notes.txt'), 'mine\n')
    _write(osp.join(work, 'sub2', 'mine.txt'), 'mine too\n')
    with pytest.raises(OutputError, match=KILLED):
        recover_previous(Manifest.read(work))
    kept = _contents(osp.join(work, KILLED))
    assert kept['notes.txt'] == b'mine\n' and kept['sub2/mine.txt'] == b'mine too\n'
    assert _contents(work)['a.txt'] == b'earlier a\n'


def test_an_earlier_output_is_never_renamed_over_a_file(earlier):
    """Putting the earlier outputs back refuses to replace what took a name meanwhile
    (a rename onto a file replaces it without a word); they stay kept aside, named."""
    work, manifest = earlier
    with pytest.raises(DataError):
        with kept_aside(manifest):
            _write(osp.join(work, 'a.txt'), 'someone else\n')   # unlisted
            raise DataError('bad')
    assert open(osp.join(work, 'a.txt')).read() == 'someone else\n'
    assert open(osp.join(work, PREVIOUS, 'a.txt')).read() == 'earlier a\n'


def _state(work):
    return Manifest.read(work).entries.get(PREVIOUS, {}).get('rerun')


def test_a_kill_while_the_earlier_outputs_are_dropped_finishes_the_drop(earlier,
                                                                          monkeypatch):
    """Round O's O-6: killed after the rerun completed, while removing PREVIOUS: the
    next run finishes the removal; the complete rerun stays as it is."""
    work, manifest = earlier
    real = Manifest.remove_all

    def killed(self, under=None):
        if under == PREVIOUS:
            os.remove(osp.join(work, PREVIOUS, 'a.txt'))   # one file went, then SIGKILL
            raise SystemExit('killed')
        return real(self, under)
    monkeypatch.setattr(Manifest, 'remove_all', killed)
    with pytest.raises(SystemExit):
        _rerun(work, manifest)
    monkeypatch.undo()
    assert _state(work) == 'complete'
    after = {k: v for k, v in _contents(work).items() if not k.startswith(PREVIOUS)}
    assert recover_previous(Manifest.read(work)) is True
    assert _contents(work) == after == {'a.txt': b'new a\n', 'c.txt': b'new c\n'}
    assert not osp.exists(osp.join(work, PREVIOUS))


def test_a_kill_while_the_earlier_outputs_come_back_is_finished_by_the_next(earlier,
                                                                            monkeypatch):
    """O-6: killed while a failed rerun moved the earlier outputs back: the names
    already back are recorded, so the next run finishes, losing nothing."""
    work, manifest = earlier
    before = _contents(work)
    real = os.rename
    calls = []

    def rename(src, dst):
        if osp.basename(osp.dirname(src)) == PREVIOUS and calls:
            raise SystemExit('killed')                       # the second one back
        if osp.basename(osp.dirname(src)) == PREVIOUS:
            calls.append(src)
        return real(src, dst)
    with pytest.raises(SystemExit):
        with kept_aside(manifest):
            try:
                _write(osp.join(work, 'c.txt'), 'new c\n')
                monkeypatch.setattr(os, 'rename', rename)
                raise DataError('bad')
            finally:
                manifest.record(osp.join(work, 'c.txt'))
    monkeypatch.undo()
    assert _state(work) == 'restoring'
    assert recover_previous(Manifest.read(work)) is True
    assert _contents(work) == before and not osp.exists(osp.join(work, PREVIOUS))


def test_a_previous_folder_someone_made_is_named(earlier):
    """O-7: a ``.previous-run/`` the user made (a copy of an output), with no rerun in
    the manifest, is named as not the tool's; nothing moves."""
    work, manifest = earlier
    os.mkdir(osp.join(work, PREVIOUS))
    _write(osp.join(work, PREVIOUS, 'a.txt'), 'my backup\n')
    before = _contents(work)
    with pytest.raises(OutputError, match=rf'{osp.join(work, PREVIOUS, "a.txt")}: not an '
                       'output this tool set aside'):
        recover_previous(Manifest.read(work))
    assert _contents(work) == before


def test_a_file_of_someone_else_in_a_new_output_folder_blocks_and_is_kept(earlier):
    """O-1: the rerun lists only the files it wrote inside its own new folder; when it
    fails, a file someone put there keeps that folder, and the earlier one stays kept
    aside, named, until it is moved away."""
    work, manifest = earlier
    with pytest.raises(DataError) as failed:
        with kept_aside(manifest):
            try:
                _write(osp.join(work, 'sub', 'b.txt'), 'new b\n')
                _write(osp.join(work, 'sub', 'mine.txt'), 'mine\n')
                raise DataError('bad')
            finally:
                manifest.record(osp.join(work, 'sub'),
                                accept=lambda p: not p.endswith('mine.txt'))
    assert open(osp.join(work, 'sub', 'mine.txt')).read() == 'mine\n'
    assert open(osp.join(work, PREVIOUS, 'sub', 'b.txt')).read() == 'earlier b\n'
    # P-3: the error says what could not be put back (a note under its line)
    assert 'sub/mine.txt' in failed.value.__notes__[0]
    assert open(osp.join(work, 'a.txt')).read() == 'earlier a\n'   # not blocked: back
    with pytest.raises(OutputError, match=rf'^{osp.join(work, "sub", "mine.txt")}: was '
                       'not written by this tool.*the earlier outputs not in its way are '
                       'back'):
        recover_previous(Manifest.read(work))
    assert open(osp.join(work, 'a.txt')).read() == 'earlier a\n'   # not blocked: back
    os.remove(osp.join(work, 'sub', 'mine.txt'))
    assert recover_previous(Manifest.read(work)) is True
    assert open(osp.join(work, 'sub', 'b.txt')).read() == 'earlier b\n'


def test_a_signal_deferred_while_setting_aside_is_undone_like_any_other(earlier,
                                                                        monkeypatch):
    """SIGTERM that arrives while the earlier outputs are being moved aside is deferred
    and raised as that step ends, before the rerun's own block: it left the earlier
    demo in the aside folder (found under load by tests/tools/test_demo.py). It is
    undone like a signal during the rerun: the earlier outputs are back in place."""
    import contextlib

    import mmseg_ext.io.rerun_aside as rerun_aside
    work, manifest = earlier
    before = _contents(work)
    real = rerun_aside.signals_deferred
    calls = []

    @contextlib.contextmanager
    def deferred_then_raised():
        with real():
            yield
        calls.append(1)
        if len(calls) == 1:  # the first block: setting aside
            raise Interrupted(signal.SIGTERM, 'SIGTERM')

    monkeypatch.setattr(rerun_aside, 'signals_deferred', deferred_then_raised)
    ran = []
    with pytest.raises(Interrupted):
        with kept_aside(manifest):
            ran.append(1)
    assert not ran
    assert not osp.exists(osp.join(work, PREVIOUS))
    assert _contents(work) == before
