"""The lock that keeps a work directory to one run at a time (:class:`WorkDirLock`).

A work directory in use is **locked** (``fcntl.flock`` on :data:`LOCK` inside it,
non-blocking): a second run is refused with ``<work_dir>: in use by another run (pid N)``.
The kernel drops the lock when its process ends, however it ends, so the lock file a
killed run leaves blocks nothing. While it holds the lock, this process alone replaces
the output folders the work directory's manifest lists (:data:`HELD_WORK_DIRS`, checked
by :class:`~mmseg_ext.io.staged_dir.StagedDir`).
"""
from __future__ import annotations

import contextlib
import errno
import os
import os.path as osp
import stat
from typing import Optional

from ..utils.errors import OutputError
from .deferred_signals import signals_deferred
from .output_errors import output_error

#: the file a running tool holds an exclusive ``flock`` on
LOCK = '.mmseg_ext.lock'

#: work directories whose lock this process holds (:class:`WorkDirLock`): only their
#: tool writes the output folders their manifest lists
HELD_WORK_DIRS: set = set()


class WorkDirLock:
    """An exclusive, non-blocking lock of a work directory for one run.

    Use as a context manager (or :meth:`acquire` / :meth:`release`); the work directory
    is created when missing. SIGINT/SIGTERM unwind through ``__exit__``; a process
    killed outright loses its ``flock`` with its file descriptors.

    Raises:
        OutputError: another process holds the lock
            (``<work_dir>: in use by another run (pid N)``), or the lock file cannot
            be made.
    """

    def __init__(self, work_dir: str):
        self.work_dir = work_dir
        self.path = osp.join(work_dir, LOCK)
        self._fd: Optional[int] = None

    def acquire(self) -> WorkDirLock:
        # one step for the stop signals: a signal between the flock and ``self._fd``
        # would leave the lock held by a descriptor no one releases, and the clean-up
        # it starts would find the work dir "in use by another run"
        try:
            with signals_deferred():
                return self._acquire()
        except BaseException:  # a signal deferred past the flock: the lock goes with it
            self.release()
            raise

    def _acquire(self) -> WorkDirLock:
        import fcntl
        try:
            os.makedirs(self.work_dir, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, 'O_NOFOLLOW', 0)
                         | getattr(os, 'O_NONBLOCK', 0), 0o644)
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # a symbolic link in its place: never followed
                raise OutputError(f'{self.path}: a symbolic link, not the lock file this '
                                  'tool makes; remove it and run again') from None
            raise output_error(self.work_dir, exc) from None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
            os.close(fd)  # a FIFO, or a hard link to some other file: never written to
            raise OutputError(f'{self.path}: not the lock file this tool makes (a '
                              f'{"hard link" if stat.S_ISREG(st.st_mode) else "special file"}'
                              '); remove it and run again')
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_pid(fd)
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise OutputError(f'{self.work_dir}: in use by another run'
                                  f'{f" (pid {holder})" if holder else ""}') from None
            raise output_error(self.work_dir, exc) from None
        os.ftruncate(fd, 0)
        os.write(fd, f'{os.getpid()}\n'.encode())
        self._fd = fd
        HELD_WORK_DIRS.add(osp.abspath(self.work_dir))
        return self

    def release(self) -> None:
        with signals_deferred():  # closed once, and forgotten with it
            if self._fd is not None:
                os.close(self._fd)  # closing drops the flock
                self._fd = None
                HELD_WORK_DIRS.discard(osp.abspath(self.work_dir))

    def __enter__(self) -> WorkDirLock:
        return self.acquire()

    def __exit__(self, exc_type, exc, tb) -> None:
        self.release()


def _read_pid(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        text = os.pread(fd, 32, 0).decode('ascii').strip()
        if text.isdigit():
            return text
    return ''

