"""One writer per output: two runs writing the same output file or folder at once.

Each run stages its output under a hidden name and publishes it whole, so two runs
never mix their files; but with ``force`` both would publish, the later one replacing
the earlier one's output although the earlier run reported success. While a run builds
an output it holds an exclusive ``flock`` keyed by the output's resolved path; a second
run asking for the same output is refused at once, naming the output and the process
holding it.

The lock files live in a private folder ``/tmp/mmseg_ext-locks-<uid>/`` (the same for
every job of the machine, whatever its ``$TMPDIR``), never beside the output, so nothing is left in the
user's folders or in a work dir's manifest. A lock is released when its process ends,
however it ends. It covers runs on one machine (``flock`` on a network file system
is not relied upon). Where no lock can be made (no writable temporary directory),
writing goes on without one: the output's own checks still hold.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import os.path as osp
import stat
import tempfile
from typing import Dict, Iterator, Optional

from ..utils.errors import OutputError
from .deferred_signals import signals_deferred

#: resolved output path -> lock file descriptor held by this process (re-entrant)
_HELD: Dict[str, int] = {}


def _key(path: str) -> str:
    """The output's identity: its folder resolved (links, ``..``) plus its name."""
    full = osp.abspath(path)
    return osp.join(osp.realpath(osp.dirname(full)), osp.basename(full))


#: where the locks live: a fixed folder, not ``$TMPDIR`` (batch schedulers give each
#: job its own ``$TMPDIR``, and two jobs writing one output must see the same lock)
LOCK_ROOTS = ('/tmp', '/var/tmp')


def _lock_folder() -> Optional[str]:
    """``<root>/mmseg_ext-locks-<uid>``, made private on first use, in the first root
    where it is our own folder (a link or someone else's folder is not trusted with our
    locks); None where no root is usable."""
    roots = list(LOCK_ROOTS)
    with contextlib.suppress(OSError):  # gettempdir() probes with a write (`ulimit -f`)
        roots.append(tempfile.gettempdir())
    for root in roots:
        folder = osp.join(root, f'mmseg_ext-locks-{os.getuid()}')
        try:
            os.makedirs(folder, mode=0o700, exist_ok=True)
            st = os.lstat(folder)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid():
            return folder  # else a link or someone else's folder: try the next root
    return None


def _lock_file(key: str) -> Optional[str]:
    folder = _lock_folder()
    if folder is None:
        return None
    name = hashlib.sha256(os.fsencode(key)).hexdigest()[:32]
    return osp.join(folder, f'{name}.lock')


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 64, 0).decode('ascii', 'replace').strip()
    except OSError:
        return ''
    return f' (process {text})' if text.isdigit() else ''


@contextlib.contextmanager
def output_lock(path: str, shown: Optional[str] = None) -> Iterator[None]:
    """Hold the writer's lock of the output ``path`` for the block.

    Re-entrant within a process (a tool writing its output in steps holds it once).

    Raises:
        OutputError: another process holds the lock: ``<shown>: another run is writing
            this output now (process N); wait for it to finish or choose another``.
    """
    key = _key(path)
    if key in _HELD:
        yield
        return
    fd = None
    try:
        # taking and dropping the lock is one step for the stop signals: a signal
        # between the flock and its entry in _HELD (or between the two on release)
        # would leave this process holding a lock it does not know of, and the clean-up
        # that the signal starts would then refuse itself as "another run"
        with signals_deferred():
            fd = _acquire(key, path, shown)
        yield
    finally:
        if fd is not None:
            with signals_deferred():
                _HELD.pop(key, None)
                os.close(fd)  # releases the lock


def _acquire(key: str, path: str, shown: Optional[str]) -> Optional[int]:
    """Take the lock of ``key`` and enter it in :data:`_HELD`; its descriptor, or None
    where no lock can be made."""
    lock = _lock_file(key)
    fd = None
    if lock is not None:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError:
            fd = None
    if fd is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # held by another process
            holder = _holder(fd)
            os.close(fd)
            raise OutputError(f'{shown or path}: another run is writing this output now'
                              f'{holder}; wait for it to finish or choose another') from None
        except OSError:  # no locks on that file system (ENOLCK): as with no lock folder
            os.close(fd)
            fd = None
    if fd is not None:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
        _HELD[key] = fd
    return fd
