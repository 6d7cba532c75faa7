"""The command-line layer: one place that turns expected failures into one line.

Every tool decorates its ``main`` with :func:`cli_main`. The library raises domain errors
(:mod:`mmseg_ext.utils.errors`) that never mention flags; here they become::

    error: <message>                 exit 1 (2 for a broken environment)

with the argument of an :class:`InvalidArgumentError` shown as the tool's flag
(``min_votes`` -> ``--min-votes``) and :class:`OutputExistsError` completed with the
``--force`` hint. SIGINT and SIGTERM unwind the tool like an exception, so every staged
output is removed by its ``finally``/``__exit__``; the tool then prints
``error: interrupted`` and exits 130 (SIGINT) or 143 (SIGTERM). An ``OSError`` about a
file (permission denied, read-only disk, disk full) is one line too. Anything else is a
bug and keeps its traceback; ``--debug`` (any tool) or ``MMSEG_EXT_DEBUG=1`` shows the
traceback of expected errors as well.
"""
from __future__ import annotations

import argparse
import errno
import functools
import os
import signal
import sys
from typing import Callable, Dict, Optional, TypeVar

from .errors import (
    EnvironmentCheckError,
    Interrupted,
    InvalidArgumentError,
    MissingWeightsError,
    MmsegExtError,
    OutputExistsError,
)

F = TypeVar('F', bound=Callable)

#: OSError numbers that mean "this output cannot be written/read here", not a bug.
_FILE_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT,
                errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENAMETOOLONG,
                errno.EXDEV, errno.EIO}


def flag_of(argument: str, flags: Optional[Dict[str, str]] = None) -> str:
    """``'min_votes'`` -> ``'--min-votes'``, unless ``flags`` names it otherwise (a
    positional argument: ``{'prob_dirs': 'PROBS'}``)."""
    if flags and argument in flags:
        return flags[argument]
    return '--' + argument.replace('_', '-')


def format_error(exc: BaseException, flags: Optional[Dict[str, str]] = None) -> str:
    """The one-line text a tool prints for an expected failure (without ``error: ``)."""
    if isinstance(exc, InvalidArgumentError):
        return f'{flag_of(exc.argument, flags)}: {exc.problem}'
    if isinstance(exc, OutputExistsError):
        return f'{exc} (use --force to replace it)'
    if isinstance(exc, MissingWeightsError) and exc.weights:
        return (f'{exc.path} not found: python tools/get_weights.py {exc.weights} '
                f'(or --cfg-options {exc.override} to train from scratch)')
    if isinstance(exc, MmsegExtError):
        return str(exc)
    if isinstance(exc, OSError):
        where = exc.filename if exc.filename is not None else ''
        reason = exc.strerror or str(exc)
        return f'{where}: {reason}' if where else reason
    if isinstance(exc, MemoryError):
        return 'out of memory (try smaller sizes or fewer images at once)'
    return str(exc)


def is_expected(exc: BaseException) -> bool:
    """Expected failures are reported in one line; everything else is a bug."""
    if isinstance(exc, (MmsegExtError, MemoryError)):
        return True
    return isinstance(exc, OSError) and exc.errno in _FILE_ERRNOS


def exit_code(exc: BaseException) -> int:
    if isinstance(exc, Interrupted):
        return 128 + exc.signum
    if isinstance(exc, EnvironmentCheckError):
        return 2
    return 1


def _raise_interrupted(signum: int, frame) -> None:  # noqa: ARG001
    raise Interrupted(signum, signal.Signals(signum).name)


def debug_requested(argv: Optional[list] = None) -> bool:
    argv = sys.argv[1:] if argv is None else argv
    return os.environ.get('MMSEG_EXT_DEBUG') == '1' or '--debug' in argv


def add_debug_flag(parser: argparse.ArgumentParser) -> None:
    """``--debug``: show the traceback of expected errors too."""
    parser.add_argument('--debug', action='store_true',
                        help='show the full traceback of an error (also MMSEG_EXT_DEBUG=1)')


def cli_main(func: Optional[F] = None, *, flags: Optional[Dict[str, str]] = None):
    """Decorate a tool's ``main`` so expected failures become one line on stderr.

    ``@cli_main`` or ``@cli_main(flags={'prob_dirs': 'PROBS'})``: ``flags`` names the
    command-line spelling of library arguments that the default rule
    (``min_votes`` -> ``--min-votes``) does not give, such as positionals.
    """
    if func is None:
        return functools.partial(cli_main, flags=flags)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        previous = {}
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                previous[signum] = signal.signal(signum, _raise_interrupted)
            except ValueError:  # not the main thread: leave the handlers alone
                pass
        try:
            code = func(*args, **kwargs)
        except KeyboardInterrupt:
            print('error: interrupted', file=sys.stderr)
            sys.exit(130)
        except Interrupted as exc:
            print('error: interrupted', file=sys.stderr)
            sys.exit(exit_code(exc))
        except Exception as exc:  # noqa: BLE001
            if debug_requested() or not is_expected(exc):
                raise
            print(f'error: {format_error(exc, flags)}', file=sys.stderr)
            sys.exit(exit_code(exc))
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        sys.exit(code or 0)

    return wrapper  # type: ignore[return-value]
