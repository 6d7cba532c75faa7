"""Imported first by every tool: make the checkout importable, and a missing module one line.

Importing :mod:`mmseg_ext` is cheap (no torch, no mmseg), so tools that need no model start
at once. A tool that builds a model calls :func:`mmseg_ext.register_all_modules` at the
start of its ``main``: the environment check then fails with its one line (exit 2,
through :func:`mmseg_ext.utils.cli.cli_main`) before any work.

A module that cannot be imported at all (``python -S`` turns off ``site-packages``, where
the environment's numpy, torch and mmseg are; an interpreter of another environment) is
one line too, exit 2, instead of a traceback::

    error: numpy: cannot be imported: python -S turns off site-packages (run the tool without -S)

Under ``python -I`` (or ``-P``) the tool's own folder is not on ``sys.path``, so a tool
must put it there before ``import _bootstrap``; ``python -I`` keeps ``site-packages``.

A stop signal (SIGINT, SIGTERM, SIGHUP) while the tool still imports is ``error:
interrupted`` with its status, as later (:func:`_stopped_while_starting`).

``SIGXFSZ`` (a write past ``ulimit -f``) needs nothing here: Python ignores it at start-up,
so such a write fails with ``OSError(EFBIG)``, which the writers report as one line naming
the output (:mod:`mmseg_ext.io.output_errors`).
"""
import os
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def missing_module_line(exc: ModuleNotFoundError) -> str:
    """The one line for an import that found no module (without ``error: ``)."""
    name = exc.name or str(exc)
    if sys.flags.no_site:
        why = 'python -S turns off site-packages (run the tool without -S)'
    else:
        why = (f'not installed for {sys.executable} (activate the environment of '
               f'mmseg_ext, or install it there: tools/install.sh)')
    return f'{name}: cannot be imported: {why}'


def _debug() -> bool:
    return os.environ.get('MMSEG_EXT_DEBUG') == '1' or '--debug' in sys.argv[1:]


def _excepthook(kind, exc, tb) -> None:
    """Uncaught ``ModuleNotFoundError`` of a third-party module -> one line, exit 2."""
    name = getattr(exc, 'name', None) or ''
    if not issubclass(kind, ModuleNotFoundError) or _debug() or \
            name.split('.')[0] in ('mmseg_ext', '_bootstrap', ''):
        _previous_hook(kind, exc, tb)
        return
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        pass
    sys.stderr.write(f'error: {missing_module_line(exc)}\n')
    sys.stderr.flush()
    os._exit(2)  # an excepthook cannot choose the exit status otherwise


def _run_as_tool() -> bool:
    """Whether this process runs a script of this folder (not a test importing it)."""
    main = getattr(sys.modules.get('__main__'), '__file__', None) or ''
    return osp.dirname(osp.abspath(main)) == osp.dirname(osp.abspath(__file__))


def _stopped_while_starting(signum, frame) -> None:
    """A stop signal before the tool's ``cli_main`` is in place (while the tool still
    imports its modules, the first ~50 ms): nothing is written yet, so the tool ends at
    once with the line and status every tool gives for it (``error: interrupted``, 128 +
    the signal), not Python's ``KeyboardInterrupt`` traceback (whose status is 1 when it
    lands inside an import's exception handling)."""
    try:
        sys.stderr.write('error: interrupted\n')
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os._exit(128 + signum)


def _handle_early_stops() -> None:
    """:func:`_stopped_while_starting` for SIGINT, SIGTERM and SIGHUP (one ignored at
    start, as under ``nohup``, stays ignored); ``cli_main`` replaces them."""
    import signal
    for name in ('SIGINT', 'SIGTERM', 'SIGHUP'):
        signum = getattr(signal, name, None)
        if signum is None:
            continue
        if name != 'SIGINT' and signal.getsignal(signum) == signal.SIG_IGN:
            continue
        signal.signal(signum, _stopped_while_starting)


_previous_hook = sys.excepthook
if _run_as_tool():
    sys.excepthook = _excepthook
    _handle_early_stops()
