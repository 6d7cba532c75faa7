"""A rerun that rewrites its work dir in place keeps the earlier run until it is complete.

``tools/demo.py`` writes its outputs at fixed places of its work dir. A rerun must not
lose the earlier, complete demo when it fails, is interrupted or is killed, so
:func:`kept_aside` moves the earlier outputs into the hidden folder :data:`PREVIOUS`
first (renames on one file system) and removes them only once the rerun is complete.

Every step is recorded in the work dir's manifest (:class:`~mmseg_ext.io.ownership.Manifest`),
in the entry of :data:`PREVIOUS` (key ``rerun``), before or as it happens, so a run
killed outright at any moment is finished or undone by the next one
(:func:`recover_previous`), never guessed:

* no entry, the folder there: killed while setting the earlier outputs aside (the
  manifest still lists them in place): they are moved back;
* ``running``: the earlier outputs are in :data:`PREVIOUS`, listed there; the rerun's
  outputs are not listed yet, so nothing proves which of the other files are its partial
  outputs and which someone put there meanwhile. They are all moved, never deleted, into
  a hidden folder ``.killed-rerun`` (:data:`KILLED`), the earlier outputs come back, and
  the run stops naming that folder for the user to look through;
* ``complete``: the rerun's outputs are listed; the removal of :data:`PREVIOUS` is
  finished;
* ``restoring``: the rerun failed; its listed outputs are being removed and the earlier
  ones moved back (``back`` names those already back): the next run goes on with it.
"""
from __future__ import annotations

import contextlib
import os
import os.path as osp
from typing import Iterator, List

from ..utils.errors import OutputError
from .deferred_signals import signals_deferred
from .manifest_records import MANIFEST
from .output_errors import output_error
from .ownership import Manifest, _walk
from .work_dir_lock import LOCK

#: the hidden folder of a work dir where a rerun keeps the earlier run's outputs
PREVIOUS = '.previous-run'

#: where the next run moves what a rerun killed outright left beside the earlier outputs
KILLED = '.killed-rerun'


def _state(manifest: Manifest):
    entry = manifest.entries.get(PREVIOUS)
    return entry.get('rerun') if isinstance(entry, dict) else None


def _set_state(manifest: Manifest, state: str, back: List[str] = ()) -> None:
    manifest.entries[PREVIOUS] = dict(type='dir', rerun=state, back=list(back))
    manifest.save()


def _aside(manifest: Manifest) -> str:
    return osp.join(manifest.work_dir, PREVIOUS)


@contextlib.contextmanager
def kept_aside(manifest: Manifest) -> Iterator[None]:
    """Run the block (a rerun writing the work dir in place) with the earlier run's
    listed outputs kept in :data:`PREVIOUS` until it returns (see the module doc).

    The block lists what it writes (``manifest.record``) before it ends, also when it
    fails. When it raises (an error, SIGINT, SIGTERM), the outputs it listed are removed
    and the earlier ones are moved back; a file it did not list stays.

    Raises:
        OutputError: a killed rerun is still to be undone (call
            :func:`recover_previous` first), an earlier output changed since it was
            listed, or a rename failed.
    """
    if osp.lexists(_aside(manifest)):
        raise OutputError(f'{_aside(manifest)}: the outputs of an earlier run kept aside '
                          'by a rerun that did not finish; run the tool again to undo it')
    manifest.check_removable()
    work_dir = manifest.work_dir
    tops = sorted({r.split('/')[0] for r in manifest.entries
                   if osp.lexists(osp.join(work_dir, r.split('/')[0]))})
    if not tops:
        yield
        return
    aside = False
    try:
        with signals_deferred():
            _move(tops, work_dir, _aside(manifest))  # killed here: no entry, moved back
            manifest.entries = {f'{PREVIOUS}/{r}': e for r, e in manifest.entries.items()
                                if r.split('/')[0] in tops}
            _set_state(manifest, 'running')
            aside = True
        # a SIGINT/SIGTERM deferred while setting aside is raised as the block above
        # ends, here: it is undone like one that arrives in the rerun itself
        yield
    except BaseException as exc:
        if not aside:  # the setting aside failed: the next run undoes it
            raise
        # a failure here leaves the state recorded, and the next run goes on with it;
        # the user reads why (a note under the error line)
        with signals_deferred():
            try:
                _restore(manifest)
            except (OutputError, OSError) as err:
                exc.add_note(str(err))
        raise
    with signals_deferred():
        _set_state(manifest, 'complete')
        manifest.remove_all(under=PREVIOUS)


def recover_previous(manifest: Manifest) -> bool:
    """Finish or undo what a rerun killed outright (SIGKILL, power loss) left (see the
    module doc).

    Returns:
        Whether there was something to finish or undo.

    Raises:
        OutputError: :data:`PREVIOUS` is not a folder or holds what the manifest does
            not explain; an earlier output is blocked (named); or a killed rerun's
            files were moved into :data:`KILLED` for the user to look through (the
            earlier outputs are back in place then).
    """
    aside = _aside(manifest)
    if not osp.lexists(aside):
        if PREVIOUS in manifest.entries:  # removed by hand after it was emptied
            del manifest.entries[PREVIOUS]
            manifest.save()
        return False
    if osp.islink(aside) or not osp.isdir(aside):
        raise OutputError(f'{aside}: not the folder where this tool keeps an earlier '
                          'run\'s outputs; move it away and run again')
    state = _state(manifest)
    if state is None:
        _undo_setting_aside(manifest)
    elif state == 'complete':
        with signals_deferred():
            manifest.remove_all(under=PREVIOUS)
    elif state == 'running':
        listed = {r.split('/')[0] for r in manifest.entries}
        left = [n for n in sorted(os.listdir(manifest.work_dir))
                if n not in (MANIFEST, LOCK, PREVIOUS) and n not in listed]
        killed = _free_name(manifest.work_dir, KILLED) if left else ''
        with signals_deferred():
            if left:
                _move(left, manifest.work_dir, killed)  # moved, never deleted
            _restore(manifest)
        if left:
            raise OutputError(
                f'{killed}: what a rerun killed outright left in {manifest.work_dir} '
                '(its partial outputs, and anything put there meanwhile), moved here, '
                'nothing deleted; the earlier outputs are back in place. Look through '
                'it, remove it, and run again')
    else:
        with signals_deferred():
            _restore(manifest)
    return True


def _free_name(folder: str, name: str) -> str:
    """``folder/name``, or ``folder/name-2``, ``-3``... the first that does not exist."""
    path, n = osp.join(folder, name), 1
    while osp.lexists(path):
        n += 1
        path = osp.join(folder, f'{name}-{n}')
    return path


def _undo_setting_aside(manifest: Manifest) -> None:
    """Killed while moving the earlier outputs aside: move back what went (only names
    the manifest lists in place, none in the way)."""
    aside = _aside(manifest)
    listed = {r.split('/')[0] for r in manifest.entries}
    names = sorted(os.listdir(aside))
    stray = [n for n in names if n not in listed or osp.lexists(
        osp.join(manifest.work_dir, n))]
    if stray:
        raise OutputError(f'{osp.join(aside, stray[0])}: not an output this tool set aside '
                          f'(the manifest records no rerun, or {stray[0]} is also in the '
                          f'work dir); move {aside} away and run again')
    with signals_deferred():
        _move(names, aside, manifest.work_dir)


def _restore(manifest: Manifest) -> None:
    """Remove the rerun's listed outputs and move the earlier ones back, recording each
    step (state ``restoring``). What is blocked (a file of someone else's inside a new
    output, or at an earlier output's place) stays as it is, the rest goes on, and the
    first block is raised at the end.

    Raises:
        OutputError: naming the first path in the way (the state stays ``restoring``).
    """
    aside = _aside(manifest)
    back = list(manifest.entries.get(PREVIOUS, {}).get('back') or [])
    _set_state(manifest, 'restoring', back)
    blocked: List[OutputError] = []
    new_tops = sorted({r.split('/')[0] for r in manifest.entries
                       if r != PREVIOUS and not r.startswith(PREVIOUS + '/')} - set(back))
    for top in new_tops:
        try:
            manifest.remove_all(under=top)  # nothing of it removed when it holds another's
        except OutputError as exc:
            blocked.append(exc)
    for name in sorted(os.listdir(aside)):
        target = osp.join(manifest.work_dir, name)
        if osp.lexists(target):
            inner = next((p for p in _walk(target) if p != target and
                          not _listed(manifest, p)), target)
            blocked.append(OutputError(
                f'{inner}: not the tool\'s, in the way of the earlier output kept in '
                f'{osp.join(aside, name)}; move it away and run again'))
            continue
        try:
            os.rename(osp.join(aside, name), target)
        except OSError as exc:
            raise output_error(target, exc) from None
        prefix = f'{PREVIOUS}/{name}'
        manifest.entries = {(r[len(PREVIOUS) + 1:] if r == prefix or
                             r.startswith(prefix + '/') else r): e
                            for r, e in manifest.entries.items()}
        back.append(name)
        _set_state(manifest, 'restoring', back)
    if blocked:
        raise OutputError(f'{blocked[0]} (the earlier outputs not in its way are back; '
                          f'the rest stay in {aside} until the next run)')
    os.rmdir(aside)
    del manifest.entries[PREVIOUS]
    manifest.save()


def _listed(manifest: Manifest, path: str) -> bool:
    try:
        return manifest.rel(path) in manifest.entries
    except ValueError:
        return False


def _move(names: List[str], src: str, dst: str) -> None:
    """Rename each of ``names`` from the folder ``src`` into ``dst`` (made when missing;
    ``src`` removed when it is :data:`PREVIOUS` and left empty), never over a path; on
    an error, the names moved so far go back."""
    made = not osp.isdir(dst)
    if made:
        os.mkdir(dst)
    moved: List[str] = []
    try:
        for name in names:
            if osp.lexists(osp.join(dst, name)):
                raise FileExistsError(0, 'in the way', osp.join(dst, name))
            os.rename(osp.join(src, name), osp.join(dst, name))
            moved.append(name)
    except OSError as exc:
        for name in reversed(moved):
            os.rename(osp.join(dst, name), osp.join(src, name))
        if made:
            os.rmdir(dst)
        if isinstance(exc, FileExistsError):
            raise OutputError(f'{exc.filename}: in the way of an earlier output; move it '
                              'away and run again') from None
        raise output_error(exc.filename or src, exc) from None
    if osp.basename(src) == PREVIOUS:
        os.rmdir(src)
