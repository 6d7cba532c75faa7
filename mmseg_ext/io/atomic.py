"""One output file that appears whole or not at all, and never replaces one without ``force``.

:func:`atomic_open` (and :func:`atomic_write_text` / :func:`atomic_write_bytes`) writes a
file under a hidden temporary name in the target's folder
(:func:`~mmseg_ext.io.staging.hidden_name`) and publishes it when the ``with`` block
ends without error. The other outputs go through the same rules:
:mod:`mmseg_ext.io.file_sets` (several files as one commit) and
:mod:`mmseg_ext.io.staged_dir` (a whole output folder).

Publishing is exclusive unless ``force`` is given: a file is published with a hard link
(which fails when the name exists), so when two runs write the same new output, the
second to finish gets :class:`~mmseg_ext.utils.errors.OutputExistsError` instead of
silently replacing the first one's result. Any exception, including the ``Interrupted``
that the tools raise on SIGINT/SIGTERM, removes the temporary file, and an error of
writing names the user's output (:mod:`mmseg_ext.io.output_errors`). Publishing is
signal-atomic (:func:`~mmseg_ext.io.deferred_signals.signals_deferred`).

A file the user names as a tool's output is written with its ``owner``: ``force`` then
replaces only that tool's own unchanged file, known by the ownership record published
beside it (:mod:`mmseg_ext.io.owned_file`).
"""
from __future__ import annotations

import contextlib
import errno
import os
import os.path as osp
import tempfile
from typing import Iterator, Optional, Tuple

from ..utils.errors import OutputError, OutputExistsError
from .deferred_signals import signals_deferred
from .made_folders import first_missing, remove_empty_parents
from .output_errors import is_write_error, make_parent, output_error
from .output_lock import output_lock
from .owned_file import (
    check_record_slot,
    check_replaceable_file,
    commit_record,
    discard_record,
    stage_record,
)
from .staging import file_mode, temp_prefix


def check_new_output(path: str, force: bool, owner: Optional[str] = None) -> None:
    """Check that the output file ``path`` may be written: absent, or replaceable.

    An existing ``path`` that ``force`` could not replace either is refused with the
    reason, ``force`` or not, so that no message suggests ``--force`` in vain: a folder
    (a file is expected), or, with ``owner``, a file that is not ``owner``'s own
    unchanged output (:func:`~mmseg_ext.io.owned_file.check_replaceable_file`).

    Raises:
        OutputError: ``path`` cannot be replaced (why, in one line).
        OutputExistsError: ``path`` exists, could be replaced, and ``force`` is False.
    """
    if not osp.lexists(path):
        if owner is not None:
            check_record_slot(path)
        return
    if owner is not None:
        check_replaceable_file(path, owner)
    elif osp.isdir(path) and not osp.islink(path):
        raise OutputError(f'{path}: is a folder, expected a file name')
    if not force:
        raise OutputExistsError(path)



def existing_output(path: str) -> str:
    """What is at ``path``, for an error about publishing there."""
    if osp.islink(path) and not osp.exists(path):
        return f'is a broken symbolic link (to {os.readlink(path)}); remove it first'
    if osp.isdir(path):
        return 'is a folder, expected a file name'
    return 'appeared while this run was writing it'



def publish_file(tmp: str, path: str, force: bool, owner: Optional[str] = None) -> None:
    """Move the finished ``tmp`` to ``path``; without ``force`` never replace a file.

    Args:
        owner: the tool whose user-facing output ``path`` is: ``force`` then replaces
            only that tool's own unchanged file, and the file is published with its
            ownership record (:mod:`mmseg_ext.io.owned_file`). None for a file inside a
            folder whose owner records it otherwise (a work dir's manifest).

    Raises:
        OutputExistsError: ``path`` exists (it appeared while ``tmp`` was written) and
            ``force`` is False; ``tmp`` is left for the caller to remove.
        OutputError: the rename or link failed (named as ``path``, not ``tmp``); or
            ``path`` is not ``owner``'s to replace.
    """
    try:
        with signals_deferred():  # the link-then-unlink (or claim-then-rename) pair
            if owner is None:
                _publish_file(tmp, path, force)
            else:
                _publish_owned_file(tmp, path, force, owner)
    except OSError as exc:
        if isinstance(exc, OutputError):
            raise
        raise output_error(path, exc) from None


def _publish_file(tmp: str, path: str, force: bool) -> None:
    if force:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise OutputExistsError(path, existing_output(path)) from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        # a file system without hard links: claim the name first, then rename onto it
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            raise OutputExistsError(path, existing_output(path)) from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


def _publish_owned_file(tmp: str, path: str, force: bool, owner: str) -> None:
    """:func:`_publish_file` with the ownership record of ``path`` committed with it."""
    if force:
        check_replaceable_file(path, owner)  # again: it may have appeared meanwhile
    else:
        check_record_slot(path)
    staged = stage_record(tmp, path, owner)
    try:
        _publish_file(tmp, path, force)
        commit_record(staged, path)
    finally:
        discard_record(staged)


def temp_beside(path: str, suffix: str = '.tmp') -> Tuple[int, str]:
    """A new hidden temporary file in ``path``'s folder (created when missing):
    ``(open file descriptor, its path)``, with the mode of a plain new file
    (:func:`~mmseg_ext.io.staging.file_mode`), so the published output is as readable
    as any other."""
    folder = make_parent(path)
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=temp_prefix(osp.basename(path), '', suffix, folder), suffix=suffix,
            dir=folder)
    except OSError as exc:
        raise output_error(path, exc) from None
    try:
        os.fchmod(fd, file_mode())
    except OSError:  # a file system without modes: keep what it gives
        pass
    return fd, tmp


@contextlib.contextmanager
def atomic_open(path: str, mode: str = 'w', force: bool = False,
                owner: Optional[str] = None, **open_kwargs) -> Iterator:
    """Open a temporary file that becomes ``path`` when the block succeeds.

    Args:
        path: final file name; its folder is created when missing.
        mode: ``'w'`` (text) or ``'wb'``.
        force: replace an existing ``path``; otherwise an existing ``path`` (before or
            after the block) is an :class:`OutputExistsError`.
        owner: the tool whose user-facing output ``path`` is (see :func:`publish_file`):
            checked before the block runs and again when publishing.
        open_kwargs: passed to :func:`open` (``newline``, ``encoding``...).

    Raises:
        OutputError: another run is writing ``path`` now
            (:func:`~mmseg_ext.io.output_lock.output_lock`); or ``path`` is not
            ``owner``'s to replace.
    """
    with output_lock(path):
        with _atomic_open(path, mode, force, owner, **open_kwargs) as f:
            yield f


@contextlib.contextmanager
def _atomic_open(path: str, mode: str, force: bool, owner: Optional[str],
                 **open_kwargs) -> Iterator:
    if str(path).endswith(('/', os.sep)):
        raise OutputError(f'{path}: ends with a slash, which names a folder; expected a '
                          'file name')
    check_new_output(path, force, owner)  # also refuses a folder at path
    made_top = first_missing(osp.dirname(osp.abspath(path)))  # removed again on failure
    fd, tmp = temp_beside(path)
    try:
        with open(fd, mode, **open_kwargs) as f:
            yield f
        publish_file(tmp, path, force, owner)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        remove_empty_parents(path, made_top)
        if isinstance(exc, OutputError):
            raise
        folder = osp.dirname(osp.abspath(path))
        if exc.filename is not None and not is_write_error(exc, folder):
            raise  # about another file (an input read inside the block): not ours
        raise output_error(path, exc) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        remove_empty_parents(path, made_top)
        raise


def atomic_write_text(path: str, text: str, force: bool = False,
                      owner: Optional[str] = None) -> None:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_open`."""
    with atomic_open(path, 'w', force=force, owner=owner, encoding='utf-8',
                     newline='') as f:
        f.write(text)


def atomic_write_bytes(path: str, data: bytes, force: bool = False,
                       owner: Optional[str] = None) -> None:
    """Write ``data`` to ``path`` through :func:`atomic_open`."""
    with atomic_open(path, 'wb', force=force, owner=owner) as f:
        f.write(data)

