"""SIGINT/SIGTERM/SIGHUP held back over the few renames of a commit, delivered once it is
done.

The renames that replace an earlier output (:meth:`~mmseg_ext.io.staged_dir.StagedDir.commit`,
:func:`~mmseg_ext.io.atomic.publish_file`, the publish loop of
:func:`~mmseg_ext.io.file_sets.atomic_write_files`,
:func:`~mmseg_ext.io.staged_dir.replace_folders`) run inside :func:`signals_deferred`:
a signal that arrives meanwhile is delivered when the commit is complete and consistent
(the new output in place and the earlier one gone, or the earlier one restored), so an
interruption never hides the earlier output in a hidden ``.<name>.old-*`` folder.
"""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator, List

from ..utils.errors import STOP_SIGNALS

#: the signals a commit defers (the ones the tools turn into ``Interrupted``)
DEFERRED_SIGNALS = frozenset(STOP_SIGNALS)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Defer the stop signals (:data:`STOP_SIGNALS`) to the end of the block (main
    thread only): a signal
    sent meanwhile is delivered when the block ends, after its last statement.

    For the critical section of a commit (renames that replace an earlier output): the
    handler's ``Interrupted`` is raised only once the commit has completed or been
    rolled back. Two layers: the signals are blocked in this thread
    (``signal.pthread_sigmask``), and since the kernel may hand a process-directed
    signal to another thread (torch's, tqdm's), the Python handlers are swapped for
    one that only records the signal; on exit the mask and handlers are restored and
    a recorded signal is raised again (``signal.raise_signal``). Re-entrant: a nested
    block leaves the deferral to the outer one. Elsewhere than in the main thread
    (where Python runs the handlers) the block runs as is.
    """
    if threading.current_thread() is not threading.main_thread() or _DEFERRING:
        yield
        return
    pending: List[int] = []

    def record(signum: int, frame) -> None:  # noqa: ARG001
        if signum not in pending:
            pending.append(signum)

    previous = {}
    for signum in DEFERRED_SIGNALS:
        handler = signal.getsignal(signum)
        if handler is not None:  # None: installed outside Python, cannot be restored
            previous[signum] = signal.signal(signum, record)
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, DEFERRED_SIGNALS)
    _DEFERRING.append(1)
    try:
        yield
    finally:
        _DEFERRING.pop()
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a blocked one: recorded now
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in pending:
            signal.raise_signal(signum)


#: non-empty while a :func:`signals_deferred` block runs (nested blocks defer nothing)
_DEFERRING: List[int] = []
