"""Write errors as one line naming the user's output, never the hidden path written.

A folder that cannot be written (permissions, read-only disk, disk full) is an
:class:`~mmseg_ext.utils.errors.OutputError` naming the path: :func:`output_error` maps
staging paths back (:func:`~mmseg_ext.io.staging.user_path`), and an ``OSError`` of
writing inside a staged folder or a :func:`writing` block (``ENOSPC``, ``EDQUOT``,
``EFBIG`` under ``ulimit -f``, or any error that names a file in the folder being
written, :func:`is_write_error`) becomes an :class:`~mmseg_ext.utils.errors.OutputError`
naming the output. Python ignores ``SIGXFSZ``, so a write past ``ulimit -f`` is such an
error, not the end of the process.
"""
from __future__ import annotations

import contextlib
import errno
import os
import os.path as osp
from typing import Iterator, Optional

from ..utils.errors import OutputError
from .staging import user_path

#: write errors that come from the disk or the process's limits, whatever the file
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def write_reason(exc: OSError) -> str:
    """Why a write failed, in words (``'read-only file system'``...)."""
    if exc.errno == errno.EROFS:
        return 'read-only file system'
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return 'no space left on the device'
    if exc.errno == errno.EFBIG:
        return ('file too large: over the file size limit of this process (ulimit -f) '
                'or of the file system')
    if exc.errno is None and not exc.strerror:  # numpy's short write, a failed encoder
        return f'write failed ({exc})' if str(exc) else 'write failed'
    return exc.strerror or str(exc)


def output_error(path: str, exc: OSError) -> OutputError:
    """One-line :class:`OutputError` for an ``OSError`` met while writing ``path``
    (a staging path is named as the output it becomes, :func:`~mmseg_ext.io.staging.user_path`).
    A file where a folder of the path must be (``EEXIST``/``ENOTDIR`` from creating
    folders) is named as such, not as "File exists"."""
    reason = write_reason(exc)
    if exc.errno in (errno.EEXIST, errno.ENOTDIR):
        blocker = file_in_the_way(exc.filename if isinstance(exc.filename, str) else path)
        if blocker:
            kind = _kind_of(blocker)
            reason = (f'{user_path(blocker)} is a file, not a folder'
                      if kind == 'a regular file' else
                      f'{user_path(blocker)} is {kind} (not a folder)')
    return OutputError(f'{user_path(path)}: cannot write the output ({reason})')


def file_in_the_way(path: str) -> Optional[str]:
    """The first existing component of ``path`` (from the root down, ``path`` itself
    included) that is not a folder; None when there is none."""
    full = osp.abspath(path)
    parts = full.split(os.sep)
    for i in range(2, len(parts) + 1):
        prefix = os.sep.join(parts[:i]) or os.sep
        if not osp.lexists(prefix):
            return None
        if not osp.isdir(prefix):
            return prefix
    return None


def inside(path: Optional[str], folder: str) -> bool:
    """Whether ``path`` (an error's file name, possibly None) is ``folder`` (absolute)
    or lies under it."""
    if not path or not isinstance(path, str):
        return False
    full = osp.abspath(path)
    return full == folder or full.startswith(folder + os.sep)


def is_write_error(exc: BaseException, folder: Optional[str] = None) -> bool:
    """Whether ``exc`` is an ``OSError`` of writing (not yet an :class:`OutputError`):
    it names a file inside ``folder`` (the folder being written), or its errno is one
    only writes give (:data:`WRITE_ERRNOS`)."""
    if not isinstance(exc, OSError) or isinstance(exc, OutputError):
        return False
    if folder is not None and (inside(exc.filename, folder) or
                               inside(exc.filename2, folder)):
        return True
    return exc.errno in WRITE_ERRNOS


@contextlib.contextmanager
def writing(path: str, folder: Optional[str] = None) -> Iterator[None]:
    """Turn a write error in the block into an :class:`OutputError` naming ``path``.

    For code that writes an output with a library call that raises a bare ``OSError``
    (``np.save``, ``json.dump`` into a file, an image encoder): the error names the
    user's output, not the hidden file written. ``folder`` is where the block writes
    (errors naming files there are write errors whatever their errno; default: the
    folder of ``path``).
    """
    try:
        yield
    except OSError as exc:
        where = osp.abspath(folder or osp.dirname(osp.abspath(path)))
        if not is_write_error(exc, where):
            raise
        named = exc.filename if inside(exc.filename, where) else path
        raise output_error(named, exc) from None


def make_parent(path: str) -> str:
    """Create the folder of ``path`` when missing; return it (as an absolute path)."""
    from .folder_manifest import published_above
    folder = osp.dirname(osp.abspath(path))
    problem = published_above(folder)
    if problem:  # never an output inside another tool's published folder
        raise OutputError(f'{user_path(path)}: {problem}')
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        blocker = _not_a_folder(folder)
        if blocker:
            raise OutputError(f'{blocker}; it is on the way to the output {path}') from None
        raise output_error(folder, exc) from None
    return folder


def _not_a_folder(folder: str) -> str:
    """What on the way to ``folder`` is not a folder (a file, a dangling or looping
    link, a FIFO), in words: ``'<path>: a regular file, not a folder'``; ``''`` when
    nothing is."""
    parts = osp.abspath(folder).split(os.sep)
    for i in range(2, len(parts) + 1):
        step = os.sep.join(parts[:i])
        if osp.isdir(step):
            continue
        if not osp.lexists(step):
            return ''  # the rest would be created: the error was something else
        return f'{step}: {_kind_of(step)}, not a folder'
    return ''


def _kind_of(path: str) -> str:
    """What ``path`` (existing, or a link) is, in words: ``'a regular file'``,
    ``'a FIFO (named pipe)'``, ``'a symbolic link to /x, which does not exist'``..."""
    from ..utils.readers import stat_problem
    if osp.islink(path):
        try:
            os.stat(path)
        except FileNotFoundError:  # dangling (a loop is stat_problem's)
            return f'a symbolic link to {os.readlink(path)}, which does not exist'
        except OSError:
            pass
    problem = stat_problem(path) or 'a regular file'
    if problem.startswith('not a regular file ('):
        problem = problem[len('not a regular file ('):-1]
    return problem

