"""Output folders built under a hidden name and published whole (:class:`StagedDir`).

:class:`StagedDir` stages everything of an output folder (one file per image plus an
index) in a hidden sibling folder that :meth:`StagedDir.commit` renames to the target,
with a hidden manifest of what it staged (:mod:`mmseg_ext.io.folder_manifest`);
:func:`replace_folders` moves several finished folders into place as one commit.

A folder is published with a rename, which fails onto a non-empty folder, so when two
runs write the same new output the second to finish gets
:class:`~mmseg_ext.utils.errors.OutputExistsError`. ``force`` replaces an existing
folder only when everything in it is listed, unchanged, in its manifest (a file the user
added or edited there, a folder without a manifest, or a symbolic link at the target is
refused, named), and never a folder that a work directory's manifest lists unless this
process holds that work directory's lock
(:data:`~mmseg_ext.io.work_dir_lock.HELD_WORK_DIRS`). Any exception removes the staging
folder; an ``OSError`` of writing inside a :class:`StagedDir` block becomes an
:class:`~mmseg_ext.utils.errors.OutputError` naming the output, not the hidden folder.

The renames that replace an earlier output run with SIGINT/SIGTERM deferred
(:func:`~mmseg_ext.io.deferred_signals.signals_deferred`): an interruption never hides
the earlier output in a hidden ``.<name>.old-*`` folder, and an error in the middle
restores what was there.
"""
from __future__ import annotations

import contextlib
import errno
import os
import os.path as osp
import shutil
import tempfile
from typing import Callable, List, Optional, Sequence, Tuple

from ..utils.errors import OutputError, OutputExistsError
from .deferred_signals import signals_deferred
from .folder_manifest import check_replaceable_folder, write_folder_manifest
from .made_folders import first_missing, remove_empty_parents
from .manifest_records import MANIFEST, owning_work_dir
from .output_errors import inside, is_write_error, make_parent, output_error, write_reason
from .output_lock import output_lock
from .staging import release_staging, staging_folder, temp_prefix, user_path
from .work_dir_lock import HELD_WORK_DIRS


def replace_folders(pairs: Sequence[Tuple[str, str]],
                    after_publish: Optional[Callable[[], None]] = None) -> None:
    """Move each finished folder ``new`` to ``target`` (replacing a ``target`` folder or
    file), all or none, with SIGINT/SIGTERM deferred
    (:func:`~mmseg_ext.io.deferred_signals.signals_deferred`).

    The earlier ``target`` is renamed aside to a hidden ``.<name>.old-*`` sibling until
    every folder is in place and ``after_publish`` (still inside the commit) returned,
    then removed; on any error each earlier ``target`` is put back.

    Raises:
        OutputError: a rename failed (named as the target).
    """
    moved: List[Tuple[Optional[str], str, str]] = []  # (earlier aside, target, new)
    with signals_deferred():
        try:
            for new, target in pairs:
                aside = None
                if osp.lexists(target):
                    folder, base = osp.split(osp.abspath(target))
                    try:
                        aside = tempfile.mkdtemp(
                            prefix=temp_prefix(base, 'old-', '', folder), dir=folder)
                        os.rmdir(aside)  # the name, free for the rename
                        os.rename(target, aside)
                    except OSError as exc:
                        aside = None  # nothing was moved
                        raise output_error(target, exc) from None
                moved.append((aside, target, new))
                try:
                    os.rename(new, target)
                except OSError as exc:
                    moved[-1] = (aside, target, '')
                    raise output_error(target, exc) from None
            if after_publish is not None:
                after_publish()
        except BaseException:
            for aside, target, new in reversed(moved):
                with contextlib.suppress(OSError):
                    if new:  # published: move it back to where it was built
                        os.rename(target, new)
                    if aside is not None:
                        os.rename(aside, target)
            raise
        for aside, _, _ in moved:
            if aside is not None:
                remove_tree(aside)


def remove_tree(path: str) -> None:
    """Remove ``path`` whatever it is (a folder with its content, a file, a link),
    ignoring errors (a hidden copy that could not be removed is left behind)."""
    if osp.isdir(path) and not osp.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            os.remove(path)


class StagedDir:
    """Build an output folder under a hidden temporary name; publish it whole.

    :meth:`commit` records what was staged in a hidden manifest inside the folder
    (:mod:`mmseg_ext.io.folder_manifest`: every file with its size and ``mtime_ns``), so a
    later ``force`` run can tell the tool's files from the user's.

    Args:
        path: the final folder.
        force: allow replacing an existing ``path``; it is replaced only when it is
            empty or everything in it is listed, unchanged, in its manifest of the same
            ``marker`` (:func:`~mmseg_ext.io.folder_manifest.check_replaceable_folder`):
            never a folder with a file the tool did not write or one edited since, nor
            a folder without a manifest (someone's, or an older version's output).
        marker: file name that identifies the kind of output folder (``index.json`` of
            a probability folder), named in the message about a folder without a
            manifest.
        tool: the writing tool's name, recorded in the manifest (default: one name
            per ``marker``, for library callers). ``force`` replaces only a folder whose
            manifest names the same ``tool``: ``tools/inference.py --force`` does not
            replace a folder that ``tools/ensemble.py`` wrote, though both write
            probability folders.

    Use as a context manager: an exception removes the temporary folder; call
    :meth:`commit` at the end of the block to publish.

    Errors name the folder as given (``path``), not its absolute form.
    """

    def __init__(self, path: str, force: bool = False, marker: str = 'index.json',
                 tool: Optional[str] = None):
        self.path = osp.abspath(path)
        self.shown = path
        self.force = force
        self.marker = marker
        self.tool = tool or f'mmseg_ext output folder ({marker})'
        self._lock = contextlib.ExitStack()  # one writer per output until commit/abort
        self._lock.enter_context(output_lock(self.path, path))
        #: the highest folder above ``path`` this run creates: removed again, with
        #: the others it made, when nothing is published
        self._made_top = None
        try:
            self._check_target()
            self._made_top = first_missing(osp.dirname(self.path))
            make_parent(self.path)
            self.tmp = staging_folder(path, 'partial-')
        except OSError as exc:
            self._drop_made_parents()
            self._lock.close()
            if isinstance(exc, OutputError):
                raise
            raise output_error(self.path, exc) from None
        except BaseException:
            self._drop_made_parents()
            self._lock.close()
            raise
        self._made = {self.tmp}
        self.committed = False

    def _check_target(self) -> None:
        """Refuse an existing ``path`` this run may not replace (see the class doc).

        Raises:
            OutputError: ``path`` is a symbolic link or not a folder (with or without
                ``force``: never replaced), or, with ``force``, holds something that is
                not the tool's (named).
            OutputExistsError: a non-empty folder and no ``force``.
        """
        path, shown = self.path, self.shown
        if not osp.lexists(path):
            return
        owner = owning_work_dir(path)
        if owner is not None and osp.abspath(owner) not in HELD_WORK_DIRS:
            raise OutputError(f'{shown}: an output of the multi-stage run in {owner} (its '
                              'manifest lists it); only that run replaces it: write '
                              'elsewhere, or run that tool again')
        if osp.islink(path):
            raise OutputError(f'{shown}: is a symbolic link (to {os.readlink(path)}), not a '
                              'folder; an output folder is not written through a link: '
                              'remove the link or choose another output folder')
        if not osp.isdir(path):
            raise OutputError(f'{shown}: exists and is not a folder; not replacing it: '
                              'remove it or choose another output folder')
        try:
            if not os.listdir(path):
                return
            if not self.force:
                raise OutputExistsError(shown)
            check_replaceable_folder(path, shown, self.tool, self.marker)
        except OSError as exc:
            if isinstance(exc, OutputError):
                raise
            raise OutputError(f'{user_path(exc.filename or path)}: cannot be read to tell '
                              f'whether it is this tool\'s ({write_reason(exc)})') from None

    def file(self, relpath: str) -> str:
        """Path inside the temporary folder for ``relpath`` (parent folders created).

        Raises:
            DataError: ``relpath`` is empty, absolute or climbs out with ``..`` (it comes
                from data: an image key, a ``file_name``), so nothing is written outside
                the output folder.
        """
        from .paths import data_relpath
        full = osp.join(self.tmp, data_relpath(relpath, f'{self.path}: output name'))
        folder = osp.dirname(full)
        if folder not in self._made:
            try:
                os.makedirs(folder, exist_ok=True)
            except OSError as exc:
                raise output_error(folder, exc) from None
            self._made.add(folder)
        return full

    def commit(self) -> str:
        """Rename the temporary folder to the final name; return the final path.

        The manifest of what was staged is written first (the folder's last file).
        With ``force`` an existing folder (checked again: entirely the tool's) is renamed
        aside (``.<name>.old-*``), the new one renamed in, and the earlier one removed,
        all with SIGINT/SIGTERM deferred
        (:func:`~mmseg_ext.io.deferred_signals.signals_deferred`): a signal meanwhile is
        delivered once the new folder is in place and the earlier one gone. On an error
        the earlier folder is put back. When another run publishes the same folder in
        between (two ``force`` runs at once), this run leaves the other's output in
        place, removes its own copies and raises :class:`OutputExistsError`.

        Raises:
            OutputExistsError: without ``force``, a non-empty folder appeared at the
                final name while this one was built; with it, another run published
                the folder during this commit.
        """
        try:
            return self._commit()
        finally:
            self._lock.close()  # the output is published (or left as it was)

    def _commit(self) -> str:
        self._record()
        self._check_target()
        with signals_deferred():
            old = self._move_aside() if self.force else None
            if old is not None:  # checked again once no one else can write into it
                try:
                    check_replaceable_folder(old, self.shown, self.tool, self.marker)
                except OutputError as exc:
                    self._put_back(old)
                    raise OutputError(str(exc).replace(old, self.shown)) from None
                except BaseException:  # any failure: the folder goes back where it was
                    self._put_back(old)
                    raise
            try:
                os.rename(self.tmp, self.path)  # fails onto a non-empty folder
            except OSError as exc:
                raced = exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR)
                if old is not None:
                    self._put_back(old)
                if raced:
                    raise OutputExistsError(
                        self.shown, 'appeared while this run was writing it') from None
                raise output_error(self.path, exc) from None
            release_staging(self.tmp)
            self.committed = True
            if old is not None:
                remove_tree(old)
        return self.path

    def _record(self) -> None:
        """Write the manifest of everything staged (the last file of the folder).

        Raises:
            OutputError: it cannot be written (named inside the output).
        """
        try:
            write_folder_manifest(self.tmp, self.tool)
        except OSError as exc:
            raise output_error(osp.join(self.tmp, MANIFEST), exc) from None

    def _move_aside(self) -> Optional[str]:
        """Rename the existing final folder to a new hidden ``.<name>.old-*`` sibling;
        None when there is none (also when another run moved it away just now)."""
        if not osp.lexists(self.path):
            return None
        folder = osp.dirname(self.path)
        try:
            old = tempfile.mkdtemp(prefix=temp_prefix(
                osp.basename(self.path), 'old-', '', folder), dir=folder)
        except OSError as exc:
            raise output_error(self.path, exc) from None
        try:
            os.rename(self.path, old)  # replaces the empty `old`
        except FileNotFoundError:  # another run moved it aside first
            with contextlib.suppress(OSError):
                os.rmdir(old)
            return None
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.rmdir(old)
            raise output_error(self.path, exc) from None
        return old

    def _put_back(self, old: str) -> None:
        """Restore the earlier folder ``old`` after a failed publish; when another run
        has published the folder meanwhile (its output replaces the earlier one, as
        with ``force``), remove ``old`` instead of leaving a hidden copy behind."""
        try:
            os.rename(old, self.path)
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST) and osp.isdir(self.path):
                remove_tree(old)  # another run's complete output is in place

    def abort(self) -> None:
        """Remove the temporary folder (nothing is published), and the empty folders
        this run made above the output."""
        shutil.rmtree(self.tmp, ignore_errors=True)
        release_staging(self.tmp)
        self._drop_made_parents()
        self._lock.close()

    def _drop_made_parents(self) -> None:
        if not osp.lexists(self.path):
            remove_empty_parents(self.path, self._made_top)

    def __enter__(self) -> StagedDir:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        """Remove what was staged unless committed; a write error of the block (a file
        in the staging folder, no space, ``EFBIG``, a short write) is raised as an
        :class:`OutputError` naming the output, not the hidden folder."""
        if self.committed:
            return
        error = None
        if exc is not None and is_write_error(exc, self.tmp):
            named = exc.filename if inside(exc.filename, self.tmp) else self.tmp
            error = output_error(named, exc)  # mapped while the folder is registered
        self.abort()
        if error is not None:
            raise error from None
