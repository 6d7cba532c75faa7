"""Outputs that appear whole or not at all, and never replace anything without ``force``.

Every file or folder the project writes goes through here:

* :func:`atomic_open` (and :func:`atomic_write_text` / :func:`atomic_write_bytes`)
  writes a file under a hidden temporary name in the target's folder and publishes it
  when the ``with`` block ends without error;
* :class:`StagedDir` does the same for a whole output folder (one file per image plus an
  index): everything goes into a hidden sibling folder that :meth:`StagedDir.commit`
  renames to the target.

Publishing is exclusive unless ``force`` is given: a file is published with a hard link
(which fails when the name exists) and a folder with a rename (which fails onto a
non-empty folder), so when two runs write the same new output, the second to finish
gets :class:`~mmseg_ext.utils.errors.OutputExistsError` instead of silently replacing
the first one's result. Any exception, including the ``Interrupted`` that the tools raise
on SIGINT/SIGTERM, removes the temporary file or folder. A folder that cannot be written
(permissions, read-only disk, disk full) is an
:class:`~mmseg_ext.utils.errors.OutputError` naming the path.
"""
from __future__ import annotations

import contextlib
import errno
import os
import os.path as osp
import shutil
import tempfile
from typing import Dict, Iterator, List, Optional, Tuple

from ..utils.errors import OutputError, OutputExistsError


def check_new_output(path: str, force: bool) -> None:
    """Raise :class:`OutputExistsError` when ``path`` exists and ``force`` is False."""
    if osp.lexists(path) and not force:
        raise OutputExistsError(path)


def output_error(path: str, exc: OSError) -> OutputError:
    """One-line :class:`OutputError` for an ``OSError`` met while writing ``path``."""
    reason = exc.strerror or str(exc)
    if exc.errno == errno.EROFS:
        reason = 'read-only file system'
    elif exc.errno in (errno.ENOSPC, errno.EDQUOT):
        reason = 'no space left on the device'
    return OutputError(f'{path}: cannot write the output ({reason})')


def make_parent(path: str) -> str:
    """Create the folder of ``path`` when missing; return it (as an absolute path)."""
    folder = osp.dirname(osp.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise output_error(folder, exc) from None
    return folder


_UMASK: Optional[int] = None


def _umask() -> int:
    global _UMASK
    if _UMASK is None:  # reading the umask means setting it: once, then cached
        _UMASK = os.umask(0o022)
        os.umask(_UMASK)
    return _UMASK


def file_mode() -> int:
    """The mode ``open()`` gives a new file under this process's umask (``0o644`` under
    umask 022). :func:`tempfile.mkstemp` creates files with ``0o600`` whatever the
    umask; published outputs get this mode instead, as if written directly."""
    return 0o666 & ~_umask()


def folder_mode() -> int:
    """The mode ``os.makedirs`` gives a new folder under the umask (``0o755``);
    :func:`tempfile.mkdtemp` gives ``0o700``."""
    return 0o777 & ~_umask()


def existing_output(path: str) -> str:
    """What is at ``path``, for an error about publishing there."""
    if osp.islink(path) and not osp.exists(path):
        return f'is a broken symbolic link (to {os.readlink(path)}); remove it first'
    if osp.isdir(path):
        return 'is a folder, expected a file name'
    return 'appeared while this run was writing it'


def _hidden_sibling(path: str, tag: str) -> str:
    folder, base = osp.split(osp.abspath(path))
    return osp.join(folder, f'.{base}.{tag}-{os.getpid()}')


def publish_file(tmp: str, path: str, force: bool) -> None:
    """Move the finished ``tmp`` to ``path``; without ``force`` never replace a file.

    Raises:
        OutputExistsError: ``path`` exists (it appeared while ``tmp`` was written) and
            ``force`` is False; ``tmp`` is left for the caller to remove.
    """
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


def temp_beside(path: str, suffix: str = '.tmp') -> Tuple[int, str]:
    """A new hidden temporary file in ``path``'s folder (created when missing):
    ``(open file descriptor, its path)``, with the mode of a plain new file
    (:func:`file_mode`), so the published output is as readable as any other."""
    folder = make_parent(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f'.{osp.basename(path)}.', suffix=suffix,
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
                **open_kwargs) -> Iterator:
    """Open a temporary file that becomes ``path`` when the block succeeds.

    Args:
        path: final file name; its folder is created when missing.
        mode: ``'w'`` (text) or ``'wb'``.
        force: replace an existing ``path``; otherwise an existing ``path`` (before or
            after the block) is an :class:`OutputExistsError`.
        open_kwargs: passed to :func:`open` (``newline``, ``encoding``...).
    """
    check_new_output(path, force)
    if osp.isdir(path):
        raise OutputError(f'{path}: is a folder, expected a file name')
    fd, tmp = temp_beside(path)
    try:
        with open(fd, mode, **open_kwargs) as f:
            yield f
        publish_file(tmp, path, force)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        if isinstance(exc, OutputError):
            raise
        raise output_error(path, exc) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def atomic_write_text(path: str, text: str, force: bool = False) -> None:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_open`."""
    with atomic_open(path, 'w', force=force, encoding='utf-8', newline='') as f:
        f.write(text)


def atomic_write_bytes(path: str, data: bytes, force: bool = False) -> None:
    """Write ``data`` to ``path`` through :func:`atomic_open`."""
    with atomic_open(path, 'wb', force=force) as f:
        f.write(data)


def atomic_write_files(texts: Dict[str, str], force: bool = False) -> List[str]:
    """Write several text files (UTF-8) that belong together, all or none.

    Every file is checked first (none is written when one exists and ``force`` is
    off), then written under a temporary name; only when all are written are they
    published, so an error or an interruption while writing leaves no file behind.

    Returns:
        The paths, in the order given.
    """
    for path in texts:
        check_new_output(path, force)
    staged: List[Tuple[str, str]] = []
    try:
        for path, text in texts.items():
            fd, tmp = temp_beside(path)
            staged.append((tmp, path))
            with open(fd, 'w', encoding='utf-8', newline='') as f:
                f.write(text)
        while staged:
            tmp, path = staged[0]
            publish_file(tmp, path, force)
            staged.pop(0)
    except OSError as exc:
        if isinstance(exc, OutputError):
            raise
        raise output_error(staged[0][1] if staged else '', exc) from None
    finally:
        for tmp, _ in staged:
            with contextlib.suppress(OSError):
                os.remove(tmp)
    return list(texts)


class StagedDir:
    """Build an output folder under a hidden temporary name; publish it whole.

    Args:
        path: the final folder.
        force: allow replacing an existing ``path``; it is replaced only when it is
            empty or holds ``marker`` (so a folder this project wrote), never a folder of
            unrelated files.
        marker: file name that identifies a folder this tool family wrote.

    Use as a context manager: an exception removes the temporary folder; call
    :meth:`commit` at the end of the block to publish.
    """

    def __init__(self, path: str, force: bool = False, marker: str = 'index.json'):
        self.path = osp.abspath(path)
        self.force = force
        self.marker = marker
        self._check_target()
        self.tmp = _hidden_sibling(path, 'partial')
        make_parent(self.path)
        try:
            if osp.exists(self.tmp):
                shutil.rmtree(self.tmp)
            os.makedirs(self.tmp)
        except OSError as exc:
            raise output_error(self.path, exc) from None
        self._made = {self.tmp}
        self.committed = False

    def _check_target(self) -> None:
        path = self.path
        if not osp.lexists(path):
            return
        if not osp.isdir(path) or osp.islink(path):
            raise OutputExistsError(path, 'exists and is not a folder')
        if not os.listdir(path):
            return
        if not self.force:
            raise OutputExistsError(path)
        if not osp.isfile(osp.join(path, self.marker)):
            raise OutputError(f'{path}: exists and holds files this tool did not write '
                              f'(no {self.marker}); refusing to replace it')

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
                raise output_error(self.path, exc) from None
            self._made.add(folder)
        return full

    def commit(self) -> str:
        """Rename the temporary folder to the final name; return the final path.

        Raises:
            OutputExistsError: without ``force``, a non-empty folder appeared at the
                final name while this one was built.
        """
        self._check_target()
        old: Optional[str] = None
        if self.force and osp.exists(self.path):
            old = _hidden_sibling(self.path, 'old')
            os.rename(self.path, old)
        try:
            os.rename(self.tmp, self.path)  # fails onto a non-empty folder
        except OSError as exc:
            if old is not None:
                os.rename(old, self.path)
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
                raise OutputExistsError(
                    self.path, 'appeared while this run was writing it') from None
            raise output_error(self.path, exc) from None
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        self.committed = True
        return self.path

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> StagedDir:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self.committed:
            self.abort()
