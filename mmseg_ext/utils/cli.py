"""The command-line layer: one place that turns expected failures into one line.

Every tool decorates its ``main`` with :func:`cli_main`. The library raises domain errors
(:mod:`mmseg_ext.utils.errors`) that never mention flags; here they become::

    error: <message>                 exit 1 (2 for a bad command line or environment)

with the argument of an :class:`InvalidArgumentError` shown as the tool's flag
(``min_votes`` -> ``--min-votes``) and :class:`OutputExistsError` completed with the
``--force`` hint. SIGINT, SIGTERM and SIGHUP (unless ``nohup`` ignores it) unwind the
tool as an
:class:`~mmseg_ext.utils.errors.Interrupted` (a ``BaseException``, so no
``except Exception`` on the way swallows it), and every staged output is removed by its
``finally``/``__exit__``; the tool then prints
``error: interrupted`` and exits 128 + the signal (130 SIGINT, 143 SIGTERM, 129 SIGHUP). An ``OSError`` about a
file (permission denied, read-only disk, disk full) is one line too. Anything else is a
bug and keeps its traceback; ``--debug`` (any tool) or ``MMSEG_EXT_DEBUG=1`` shows the
traceback of expected errors as well.

The error lines and exit codes are :mod:`mmseg_ext.utils.cli_errors`; the check of the
paths a command line names is :mod:`mmseg_ext.utils.cli_paths`.
"""
from __future__ import annotations

import argparse
import functools
import logging
import math
import os
import signal
import sys
from typing import Any, Callable, Dict, List, NoReturn, Optional, Set, Tuple, TypeVar

from .cli_errors import exit_code, format_error, is_expected
from .cli_paths import all_parsers, check_path_roles, chosen_parsers, option_label
from .errors import STOP_SIGNALS, Interrupted
from .path_roles import ROLES
from .readers import INT64_MAX

F = TypeVar('F', bound=Callable)


#: the signal that interrupted this process, once one has (see :func:`cli_main`)
_SIGNALLED: Optional[int] = None
#: whether the command line the last :meth:`ToolParser.parse_args` read offers
#: ``--force`` (None before one was read): the ``--force`` hint of an existing output
_FORCE_OFFERED: Optional[bool] = None


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
                value = kv.split('=', 1)[1].strip()
                if value.startswith(('dict(', '{')):  # mmengine's parser recurses forever
                    parser.error(f'argument {option_string}: {key}={value}: a dict cannot '
                                 'be given on the command line (numbers, text, lists and '
                                 f'tuples can): set its keys one by one ({key}.<name>=...) '
                                 'or write it in a config file')
            try:
                super().__call__(parser, namespace, values, option_string)
            except Exception as exc:  # noqa: BLE001  (mmengine's value parser)
                parser.error(f'argument {option_string}: {exc}')

    return CfgOptionsAction


def nonempty_text(value: str) -> str:
    """The ``type`` of every text and path option: an empty or blank value is a
    command-line error, never "not given" (``--work-dir ""`` would mean the current
    folder, ``--group-regex ""`` the default)."""
    if not value.strip():
        raise argparse.ArgumentTypeError(f'empty value {value!r} (give a value or leave '
                                         'the option out)')
    return value


nonempty_text.__name__ = 'str'

#: actions that take no value (flags): no empty check, no role
_FLAG_ACTIONS = (argparse._StoreConstAction, argparse._AppendConstAction,
                 argparse._CountAction, argparse._HelpAction, argparse._VersionAction)
_TRACKED: Dict[type, type] = {}


def _tracked(cls: type) -> type:
    """``cls`` that also records, on the parser that parses, that it was given."""
    if cls not in _TRACKED:
        def __call__(self, parser, namespace, values, option_string=None):
            given = getattr(parser, '_given', None)
            if given is not None:
                given.add(self)
            cls.__call__(self, parser, namespace, values, option_string)

        _TRACKED[cls] = type(cls.__name__, (cls,), {'__call__': __call__})
    return _TRACKED[cls]


class ToolParser(argparse.ArgumentParser):
    """``argparse`` with the rules every tool's command line follows, checked here once
    after parsing and before the tool reads or writes anything (docs/tool_guarantees.md):

    * errors are one line (``error: <prog>: <problem> (see --help)``, exit 2) instead of
      the usage block, like every other error of the tools; ``--debug`` on every tool;
    * an empty or blank value of a text or path option is refused (``empty_ok=True``
      on an option where empty means something);
    * every text option declares its ``role`` (:data:`~.path_roles.ROLES`): an output
      (``output``, ``work-dir``) equal to an input (``input``, ``config`` with the data
      it names, ``input-or-value`` naming a file, a ``file://`` ``url``), inside an input
      folder, or holding an input (``work-dir`` may) is refused naming both
      (``error: --out: t.json is also an input (--thresholds); ...``), ``--force`` or not;
    * partner rules declared with :meth:`requires`, :meth:`requires_one_of` and
      :meth:`conflicts`: an option given without the one it needs, or with one it
      excludes, is refused instead of being ignored.
    """

    def __init__(self, *args, debug: bool = True, **kwargs):
        self._given: Set[argparse.Action] = set()
        self._rules: List[Tuple[str, str, Tuple[str, ...], str]] = []
        super().__init__(*args, **kwargs)
        if debug:
            add_debug_flag(self)

    # ------------------------------------------------------------ declaring
    def add_argument(self, *args, role: Optional[str] = None, empty_ok: bool = False,
                     **kwargs) -> argparse.Action:
        """``argparse``'s ``add_argument`` plus ``role`` (what a text value is: one of
        :data:`~.path_roles.ROLES`) and ``empty_ok`` (an empty value means something)."""
        if role is not None and role not in ROLES:
            raise ValueError(f'role {role!r} is not one of {ROLES}')
        cls = self._registry_get('action', kwargs.get('action'), kwargs.get('action'))
        if isinstance(cls, type):
            takes_values = not issubclass(cls, _FLAG_ACTIONS) and kwargs.get('nargs') != 0
            if takes_values and kwargs.get('type') in (None, str) and not empty_ok:
                kwargs['type'] = nonempty_text
            kwargs['action'] = _tracked(cls)
        kwargs['help'] = with_range(kwargs.get('help'), kwargs.get('type'))
        action = super().add_argument(*args, **kwargs)
        action.role = role  # type: ignore[attr-defined]
        action.empty_ok = empty_ok  # type: ignore[attr-defined]
        return action

    def requires(self, option: str, *needed: str, why: str = '') -> None:
        """``option`` (a flag, a positional's name, or ``--flag=value``) needs every one
        of ``needed``; without them it would be ignored."""
        self._declare('requires', option, needed, why)

    def requires_one_of(self, option: str, *needed: str, why: str = '') -> None:
        """``option`` needs at least one of ``needed``."""
        self._declare('requires_one_of', option, needed, why)

    def conflicts(self, option: str, *others: str, why: str = '') -> None:
        """``option`` does not go with any of ``others`` (one of them would be ignored)."""
        self._declare('conflicts', option, others, why)

    def _declare(self, kind: str, option: str, others: Tuple[str, ...], why: str) -> None:
        for name in (option, *others):
            self._find(name)  # a misspelt rule fails when the parser is built
        self._rules.append((kind, option, tuple(others), why))

    def _find(self, name: str) -> argparse.Action:
        flag = name.split('=', 1)[0]
        for action in self._actions:
            if flag in action.option_strings or (not action.option_strings and flag in (
                    action.dest, action.metavar)):
                return action
        raise ValueError(f'{self.prog}: a rule names {name!r}, which is no option')

    @property
    def rules(self) -> List[Tuple[str, str, Tuple[str, ...], str]]:
        """The declared partner rules: ``(kind, option, others, why)``."""
        return list(self._rules)

    # ------------------------------------------------------------ checking
    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f'error: {self.prog}: {message} (see --help)\n')
        sys.exit(2)

    def fail(self, option: str, problem: str) -> NoReturn:
        """One line naming the option, exit 2 (a command line that cannot run)."""
        sys.stderr.write(f'error: {option}: {problem}\n')
        sys.exit(2)

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        for parser in all_parsers(self):
            parser._given = set()
        ns = super().parse_args(args, namespace)
        chain = chosen_parsers(self, ns)
        global _FORCE_OFFERED
        _FORCE_OFFERED = any('--force' in action.option_strings
                             for parser in chain for action in parser._actions)
        check_path_roles(self, chain, ns)  # first: the one that can lose files
        for parser in chain:
            parser._check_rules(ns)
        return ns

    def is_given(self, name: str, ns: argparse.Namespace) -> bool:
        """Whether the option ``name`` (``'--x'``, or ``'--x=value'``: given that value)
        was on the command line of the last :meth:`parse_args`, not just defaulted."""
        return self._is_given(name, ns)

    def _is_given(self, name: str, ns: argparse.Namespace) -> bool:
        action = self._find(name)
        value = getattr(ns, action.dest, None)
        if '=' in name:
            return str(value) == name.split('=', 1)[1]
        if action.option_strings:
            return action in self._given
        return value not in (None, [], ())

    def _label(self, name: str) -> str:
        flag, _, value = name.partition('=')
        label = option_label(self._find(flag))
        return f'{label} {value}' if value else label

    def _check_rules(self, ns: argparse.Namespace) -> None:
        """Conflicts first (the sharper message: one option excludes another), then
        what each option needs."""
        order = sorted(self._rules, key=lambda rule: rule[0] != 'conflicts')
        for kind, option, others, why in order:
            if not self._is_given(option, ns):
                continue
            given = [o for o in others if self._is_given(o, ns)]
            reason = f' ({why})' if why else ''
            if kind == 'requires' and len(given) < len(others):
                missing = [o for o in others if o not in given]
                self.fail(self._label(option), 'needs ' + ' and '.join(
                    self._label(o) for o in missing) + reason)
            if kind == 'requires_one_of' and not given:
                self.fail(self._label(option), 'needs ' + ' or '.join(
                    self._label(o) for o in others) + reason)
            if kind == 'conflicts' and given:
                self.fail(self._label(option), f'does not go with {self._label(given[0])}'
                          + reason)

    def add_pseudo_label_flags(self, pixel_conf_default: Optional[float] = 0.9,
                               pixel_conf_default_text: str = '0.9') -> None:
        """The confidence filters of pseudo-labels (``tools/pseudo_label.py`` and
        ``tools/self_train.py``, :func:`mmseg_ext.workflows.pseudo_label.pseudo_label_folder`);
        ``pixel_conf_default`` None: the tool picks it (``pixel_conf_default_text``
        says how)."""
        self.add_argument('--pixel-conf', type=number_in_range(float, 0, 1),
                          default=pixel_conf_default,
                          help=f'per-pixel confidence in [0, 1] (default '
                          f'{pixel_conf_default_text}); multi-class: pixels below it are '
                          'ignored (255); multi-label: in (0.5, 1], p in (1-c, c) is '
                          'uncertain')
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



def with_range(help_text: Optional[str], kind: Any) -> Optional[str]:
    """``help_text`` stating the range of a :func:`number_in_range` type: unchanged when
    it states it already (``>= 1`` or ``[1, inf]``) or is suppressed, else with
    ``(range: >= 1)`` added before a closing ``(default ...)``."""
    wanted = getattr(kind, 'help_text', None)
    if not wanted or help_text == argparse.SUPPRESS:
        return help_text
    text = help_text or ''
    flat = ' '.join(text.split())
    if wanted in flat or kind.range_text in flat:
        return help_text
    note = wanted
    head, sep, tail = text.rpartition('(default')
    if sep and head.strip():
        return f'{head.rstrip()} ({note}) {sep}{tail}'
    return f'{text} ({note})' if text else note


def file_suffix(value: str) -> str:
    """An argparse ``type`` for the end of a file name (``.jpg``, ``_leftImg8bit.png``):
    it must hold the extension's dot, so that ``jpg`` is not taken for ``.jpg`` and
    leave every stem ending in a dot."""
    if '.' not in value or value.endswith('.'):
        ext = value.strip('.') or 'png'
        raise argparse.ArgumentTypeError(
            f'{value!r} is not a file suffix: give the end of the file names with the '
            f'extension\'s dot (.{ext} or _mask.{ext}, ...)')
    return value


file_suffix.__name__ = 'suffix'


def _parse_number(kind: Callable, value: str):
    """``value`` as ``kind``: a finite float, or a whole number within int64 (written
    as ``12`` or ``1e3``, as the per-class options take it). Infinity, a fraction for
    an integer and an integer past int64 are refused with the reason, and so are
    digits other than 0-9 (Python's ``int('٦٤')`` is 64) and ``_`` separators, which
    no data file of the formats takes either."""
    if isinstance(value, str) and (not value.isascii() or '_' in value):
        raise argparse.ArgumentTypeError(f'{value!r} is not a number written with the '
                                         'digits 0-9')
    try:
        number = kind(value)
    except (TypeError, ValueError, OverflowError):
        number = None
        if kind is int:  # 1e3 is the whole number 1000
            try:
                as_float = float(value)
            except (TypeError, ValueError):
                as_float = None
            if as_float is not None and math.isfinite(as_float) and as_float.is_integer():
                number = int(as_float)
        if number is None:
            what = {'int': 'a whole number', 'float': 'a number'}.get(
                kind.__name__, f'a {kind.__name__}')
            raise argparse.ArgumentTypeError(f'{value!r} is not {what}') from None
    if isinstance(number, float) and math.isinf(number):
        raise argparse.ArgumentTypeError(f'{value} is not a finite number')
    if isinstance(number, int) and not -INT64_MAX - 1 <= number <= INT64_MAX:
        raise argparse.ArgumentTypeError(f'{value} is beyond int64 (at most {INT64_MAX})')
    return number


def bound_text(value: float) -> str:
    """A range bound as the user should read it: whole numbers exactly (``4294967295``,
    not ``4.29497e+09``), other numbers in their shortest form (``0.5``, ``1e-06``)."""
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()
                                  and abs(value) < 2 ** 53):
        return str(int(value))
    return repr(float(value)) if 'e' not in f'{value:g}' else f'{value:g}'


def number_in_range(kind: Callable = float, lo: Optional[float] = None,
                    hi: Optional[float] = None, lo_open: bool = False,
                    hi_open: bool = False) -> Callable[[str], float]:
    """An argparse ``type`` that parses ``kind`` and refuses values outside the range.

    Example: ``number_in_range(float, 0, 1)`` for ``[0, 1]``; ``number_in_range(int, 1)``
    for ``>= 1``; ``number_in_range(float, 0.5, 1, lo_open=True)`` for ``(0.5, 1]``.
    The range is also in the function's ``range_text`` (``[1, inf]``) and, as the help
    of a :class:`ToolParser` states it, ``help_text`` (``>= 1``, ``in [0, 1]``).
    """
    left = '(' if lo_open else '['
    right = ')' if hi_open else ']'
    text = (f'{left}{"-inf" if lo is None else bound_text(lo)}, '
            f'{"inf" if hi is None else bound_text(hi)}{right}')
    if lo is not None and hi is None:
        help_text = f'{">" if lo_open else ">="} {bound_text(lo)}'
    elif hi is not None and lo is None:
        help_text = f'{"<" if hi_open else "<="} {bound_text(hi)}'
    else:
        help_text = f'in {text}'

    def parse(value: str):
        number = _parse_number(kind, value)
        if number != number or \
                (lo is not None and (number < lo or (lo_open and number == lo))) or \
                (hi is not None and (number > hi or (hi_open and number == hi))):
            raise argparse.ArgumentTypeError(f'{value} is outside {text}')
        return number

    parse.__name__ = kind.__name__
    parse.range_text = text  # type: ignore[attr-defined]
    parse.help_text = help_text  # type: ignore[attr-defined]
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
    (:func:`mmseg_ext.training.runner.finish_distributed` returned True): objects
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


def _print_notes(exc: Optional[BaseException]) -> None:
    """The notes the library added to the error on its way out (what an interrupted or
    failed run could not undo), one ``note:`` line each; also those of the errors it
    replaced on the way (an interruption a library turned into another error)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        for note in getattr(exc, '__notes__', ()):
            print(f'note: {note}', file=sys.stderr)
        exc = exc.__cause__ or exc.__context__


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
        global _SIGNALLED, _FORCE_OFFERED
        _SIGNALLED = None
        _FORCE_OFFERED = None
        previous = {}
        for signum in STOP_SIGNALS:
            if signum not in (signal.SIGINT, signal.SIGTERM) \
                    and signal.getsignal(signum) == signal.SIG_IGN:
                continue  # SIGHUP ignored on purpose (`nohup`): it stays ignored
            try:
                previous[signum] = signal.signal(signum, _raise_interrupted)
            except ValueError:  # not the main thread: leave the handlers alone
                pass
        try:
            code = func(*args, **kwargs)
        except KeyboardInterrupt as exc:
            print('error: interrupted', file=sys.stderr)
            _print_notes(exc)
            sys.exit(130)
        except Interrupted as exc:
            print('error: interrupted', file=sys.stderr)
            _print_notes(exc)
            sys.exit(exit_code(exc))
        except Exception as exc:  # noqa: BLE001
            if _SIGNALLED is not None:
                # the Interrupted was caught on the way by a library's bare `except` and
                # turned into another error (mmengine's Config.pretty_text raises
                # SyntaxError): the signal still decides the outcome
                print('error: interrupted', file=sys.stderr)
                _print_notes(exc)
                sys.exit(128 + _SIGNALLED)
            if debug_requested() or not is_expected(exc):
                raise
            print(f'error: {format_error(exc, flags, _FORCE_OFFERED)}', file=sys.stderr)
            _print_notes(exc)
            sys.exit(exit_code(exc))
        finally:
            for signum, handler in previous.items():
                # the tool's own process: its outputs are complete (or its error
                # printed), and what remains is the interpreter's teardown (torch's takes
                # a while, and Python restores the default handlers early in it): a late
                # signal is ignored, so the exit code stays the tool's own, never a
                # silent 143
                signal.signal(signum, signal.SIG_IGN
                              if func.__module__ == '__main__' else handler)
        sys.exit(code or 0)

    return wrapper  # type: ignore[return-value]
