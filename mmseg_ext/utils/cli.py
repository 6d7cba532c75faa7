"""The command-line layer: one place that turns expected failures into one line.

Every tool decorates its ``main`` with :func:`cli_main`. The library raises domain errors
(:mod:`mmseg_ext.utils.errors`) that never mention flags; here they become::

    error: <message>                 exit 1 (2 for a bad command line or environment)

with the argument of an :class:`InvalidArgumentError` shown as the tool's flag
(``min_votes`` -> ``--min-votes``) and :class:`OutputExistsError` completed with the
``--force`` hint. SIGINT and SIGTERM unwind the tool as an
:class:`~mmseg_ext.utils.errors.Interrupted` (a ``BaseException``, so no
``except Exception`` on the way swallows it), and every staged output is removed by its
``finally``/``__exit__``; the tool then prints
``error: interrupted`` and exits 130 (SIGINT) or 143 (SIGTERM). An ``OSError`` about a
file (permission denied, read-only disk, disk full) is one line too. Anything else is a
bug and keeps its traceback; ``--debug`` (any tool) or ``MMSEG_EXT_DEBUG=1`` shows the
traceback of expected errors as well.
"""
from __future__ import annotations

import argparse
import errno
import functools
import logging
import os
import signal
import sys
from typing import Callable, Dict, NoReturn, Optional, TypeVar

from .errors import (
    EnvironmentCheckError,
    Interrupted,
    InvalidArgumentError,
    MissingWeightsError,
    MmsegExtError,
    OutputExistsError,
    UsageError,
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
    """The one convention of every tool: 2 for a command line that cannot run (an
    option out of its range or not fitting the others, found by argparse or by the
    library) and for a broken environment; 1 for bad data, files and refused requests;
    128 + the signal for an interruption (130 SIGINT, 143 SIGTERM)."""
    if isinstance(exc, Interrupted):
        return 128 + exc.signum
    if isinstance(exc, (EnvironmentCheckError, InvalidArgumentError, UsageError)):
        return 2
    return 1


#: the signal that interrupted this process, once one has (see :func:`cli_main`)
_SIGNALLED: Optional[int] = None


def _raise_interrupted(signum: int, frame) -> None:  # noqa: ARG001
    global _SIGNALLED
    _SIGNALLED = signum
    raise Interrupted(signum, signal.Signals(signum).name)


def cfg_options_action():
    """``--cfg-options key=value ...`` as mmengine's ``DictAction`` parses it, with a
    value that is not ``key=value`` (or an empty key) refused as a command-line error
    (one line, exit 2) instead of a traceback."""
    from mmengine.config import DictAction

    class CfgOptionsAction(DictAction):
        def __call__(self, parser, namespace, values, option_string=None):
            for kv in values or []:
                key = kv.split('=', 1)[0].strip()
                if '=' not in kv or not key:
                    parser.error(f'argument {option_string}: {kv!r} is not key=value')
            try:
                super().__call__(parser, namespace, values, option_string)
            except Exception as exc:  # noqa: BLE001  (mmengine's value parser)
                parser.error(f'argument {option_string}: {exc}')

    return CfgOptionsAction


class ToolParser(argparse.ArgumentParser):
    """``argparse`` with one-line errors (``error: <prog>: <problem> (see --help)``, exit
    2) instead of the usage block, like every other error of the tools; and ``--debug``
    on every tool."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        add_debug_flag(self)

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f'error: {self.prog}: {message} (see --help)\n')
        sys.exit(2)

    def add_pseudo_label_flags(self) -> None:
        """The confidence filters of pseudo-labels (``tools/pseudo_label.py`` and
        ``tools/self_train.py``, :func:`mmseg_ext.apis.pseudo_label.pseudo_label_folder`)."""
        self.add_argument('--pixel-conf', type=number_in_range(float, 0, 1), default=0.9,
                          help='per-pixel confidence in [0, 1] (default 0.9); multi-class: '
                          'pixels below it are ignored (255); multi-label: in (0.5, 1], '
                          'p in (1-c, c) is uncertain')
        self.add_argument('--max-uncertain', type=number_in_range(float, 0, 1), default=1.0,
                          help='multi-label: leave out an image whose uncertain fraction is '
                          'above this, in [0, 1] (default 1: keep all)')
        self.add_argument('--min-mean-conf', type=number_in_range(float, 0, 1), default=0.0,
                          help='leave out an image whose mean confidence is below this, in '
                          '[0, 1] (default 0)')

    def add_output_flags(self, force_help: str) -> None:
        """``--force`` (replace an existing output, described by ``force_help``) and
        ``--no-progress``, which every tool that writes files has."""
        self.add_argument('--force', action='store_true', help=force_help)
        self.add_argument('--no-progress', action='store_true', help='no progress bar')


def number_in_range(kind: Callable = float, lo: Optional[float] = None,
                    hi: Optional[float] = None, lo_open: bool = False,
                    hi_open: bool = False) -> Callable[[str], float]:
    """An argparse ``type`` that parses ``kind`` and refuses values outside the range.

    Example: ``number_in_range(float, 0, 1)`` for ``[0, 1]``; ``number_in_range(int, 1)``
    for ``>= 1``; ``number_in_range(float, 0.5, 1, lo_open=True)`` for ``(0.5, 1]``.
    The range is also in the function's ``range_text`` for the help text.
    """
    left = '(' if lo_open else '['
    right = ')' if hi_open else ']'
    text = f'{left}{"-inf" if lo is None else f"{lo:g}"}, {"inf" if hi is None else f"{hi:g}"}{right}'

    def parse(value: str):
        try:
            number = kind(value)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f'{value!r} is not a {kind.__name__}') from None
        if number != number or \
                (lo is not None and (number < lo or (lo_open and number == lo))) or \
                (hi is not None and (number > hi or (hi_open and number == hi))):
            raise argparse.ArgumentTypeError(f'{value} is outside {text}')
        return number

    parse.__name__ = kind.__name__
    parse.range_text = text  # type: ignore[attr-defined]
    parse.bounds = (lo, hi, lo_open, hi_open)  # type: ignore[attr-defined]
    return parse


def debug_requested(argv: Optional[list] = None) -> bool:
    argv = sys.argv[1:] if argv is None else argv
    return os.environ.get('MMSEG_EXT_DEBUG') == '1' or '--debug' in argv


def add_debug_flag(parser: argparse.ArgumentParser) -> None:
    """``--debug``: show the traceback of expected errors too."""
    parser.add_argument('--debug', action='store_true',
                        help='show the full traceback of an error (also MMSEG_EXT_DEBUG=1)')


def exit_now(code: int = 0) -> NoReturn:
    """Leave the process with ``code`` at once, without interpreter finalization.

    For a CPU rank whose ``gloo`` process group has been destroyed
    (:func:`mmseg_ext.apis.runner_config.finish_distributed` returned True): objects
    torch leaves to interpreter shutdown can still abort a rank that has finished its
    work (SIGABRT, exit -6, so torchrun reports the whole run as failed). Logging
    handlers and the standard streams are flushed first, so nothing written is lost.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed or broken pipe: nothing left to save
            pass
    os._exit(code)


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
        global _SIGNALLED
        _SIGNALLED = None
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
            if _SIGNALLED is not None:
                # the Interrupted was caught on the way by a library's bare `except` and
                # turned into another error (mmengine's Config.pretty_text raises
                # SyntaxError): the signal still decides the outcome
                print('error: interrupted', file=sys.stderr)
                sys.exit(128 + _SIGNALLED)
            if debug_requested() or not is_expected(exc):
                raise
            print(f'error: {format_error(exc, flags)}', file=sys.stderr)
            sys.exit(exit_code(exc))
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        sys.exit(code or 0)

    return wrapper  # type: ignore[return-value]
