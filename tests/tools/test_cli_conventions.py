"""One exit-code convention for every tool and option (docs/tool_guarantees.md):
2 for a command line that cannot run (argparse or the library finds the value out of
range), 1 for bad data or files, 130/143 for interrupts.

Every tool's parser is captured in-process (its ``main`` runs until it parses) and walked:
each option with a range, a type or choices gets a value outside them and must exit 2
with one line naming the option. Options whose range only the library can check (sizes,
weights, search ranges, per-class values) are run through the tool's ``main``.
"""
import argparse
import contextlib
import glob
import io
import os.path as osp

import numpy as np
import pytest
from conftest import REPO, load_tool
from probs_helpers import write_prob_folder

from mmseg_ext.utils.cli import ToolParser

TOOLS = sorted(p for p in glob.glob(osp.join(REPO, 'tools', '*.py'))
               if not osp.basename(p).startswith('_'))
#: options without a range on purpose (torch.distributed.launch's own)
UNRANGED = {'--local_rank', '--local-rank'}


class _Captured(BaseException):
    def __init__(self, parser):
        super().__init__()
        self.parser = parser


def capture_parser(path, monkeypatch):
    module = load_tool(path)

    def grab(self, *args, **kwargs):
        raise _Captured(self)

    with monkeypatch.context() as m:
        m.setattr(ToolParser, 'parse_args', grab)
        try:
            module.main([])
        except _Captured as got:
            return got.parser
    raise AssertionError(f'{path}: main() did not parse its arguments')


def walk(parser, prefix=()):
    """``(argv prefix, parser)`` for the parser and each sub-command's parser."""
    yield prefix, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from walk(sub, prefix + (name,))


def required_argv(parser):
    """Placeholder values for the positionals and required options."""
    argv = []
    for action in parser._actions:
        if isinstance(action, (argparse._SubParsersAction, argparse._HelpAction)):
            continue
        bounds = getattr(action.type, 'bounds', None)
        if action.choices:
            value = str(action.choices[0])
        elif bounds is not None and bounds[0] is not None:  # a valid number (cv.py -k)
            value = str(int(bounds[0]) + 1)
        else:
            value = 'x'
        if not action.option_strings:
            if action.nargs in (None, '+') or isinstance(action.nargs, int):
                argv += [value] * (action.nargs if isinstance(action.nargs, int) else 1)
        elif action.required:
            argv += [action.option_strings[0], value]
    return argv


def bad_value(action):
    """A value outside what ``action`` accepts, or None when it accepts any string."""
    bounds = getattr(action.type, 'bounds', None)
    if bounds is not None:
        lo, hi, lo_open, hi_open = bounds
        if lo is not None:
            return str(lo if lo_open else lo - 1)
        return str(hi if hi_open else hi + 1)
    if action.choices:
        return '__not_a_choice__'
    if action.type in (int, float):
        return 'abc'
    return None


def parse_exit(parser, argv):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exc:
        parser.parse_args(argv)
    return exc.value.code, err.getvalue()


@pytest.mark.parametrize('path', TOOLS, ids=[osp.basename(p) for p in TOOLS])
def test_every_option_out_of_range_exits_2_naming_it(path, monkeypatch):
    parser = capture_parser(path, monkeypatch)
    for prefix, sub in walk(parser):
        base = list(prefix) + required_argv(sub)
        for action in sub._actions:
            if not action.option_strings or action.nargs == 0 or \
                    set(action.option_strings) & UNRANGED:
                continue
            if action.type in (int, float) and not action.choices:
                pytest.fail(f'{path}: {action.option_strings[0]} is numeric without a '
                            'range (use number_in_range)')
            bads = [bad_value(action)]
            if getattr(action.type, 'bounds', None) is not None:
                # past any range: infinity for a float, past int64 for an integer
                bads.append('inf' if action.type.__name__ == 'float'
                            else '9223372036854775808')
            for bad in filter(None, bads):
                count = action.nargs if isinstance(action.nargs, int) else 1
                code, err = parse_exit(sub, base + [action.option_strings[0]] + [bad] * count)
                lines = err.strip().splitlines()
                assert code == 2, (path, action.option_strings, bad, err)
                assert len(lines) == 1 and lines[0].startswith('error: '), err
                assert any(o in lines[0] for o in action.option_strings), lines[0]


def _bound(value):
    """A bound as the help must print it: whole numbers in full (2^32-1 as 4294967295,
    never 4.29497e+09), others as %g."""
    return str(int(value)) if float(value).is_integer() and abs(value) < 2 ** 53 \
        else f'{value:g}'


@pytest.mark.parametrize('path', TOOLS, ids=[osp.basename(p) for p in TOOLS])
def test_every_ranged_option_states_its_range_in_the_help(path, monkeypatch):
    """Before, nine numeric options (demo --max-iters, ensemble --weights, ...) refused
    values outside a range their --help did not state."""
    parser = capture_parser(path, monkeypatch)
    for _, sub in walk(parser):
        text = ' '.join(sub.format_help().split())
        for action in sub._actions:
            bounds = getattr(action.type, 'bounds', None)
            if bounds is None or not action.option_strings:
                continue
            lo, hi, lo_open, hi_open = bounds
            if hi is None:
                stated = f'{">" if lo_open else ">="} {_bound(lo)}'
            else:
                stated = f'[{_bound(lo)}, {_bound(hi)}]' if not (lo_open or hi_open) \
                    else action.type.range_text
            flat = ' '.join((action.help or '').split())
            assert stated in flat, (path, action.option_strings, flat)
            assert flat.split('(default')[0].strip() in text  # shown by --help


def run_main(path, argv):
    module = load_tool(path)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
            pytest.raises(SystemExit) as exc:
        module.main(argv)
    return exc.value.code, err.getvalue().strip().splitlines()


@pytest.fixture
def two_folders(tmp_path):
    images = {'a.png': (np.full((2, 4, 4), 0.5, np.float32), (4, 4))}
    return [write_prob_folder(tmp_path / f'p{i}', images, ['x', 'y'], dtype=dtype)
            for i, dtype in enumerate(('uint8', 'float16'))]  # two runs, not one copied


def test_ranges_the_library_checks_exit_2_naming_the_flag(tmp_path, two_folders):
    """The cases once reported exiting 1: --out-size 0,0, --min-area -5, --weights 0 0,
    --search 0.9 0.1; and an --out-size that would allocate a terabyte."""
    tools = osp.join(REPO, 'tools')
    out = str(tmp_path / 'out')
    imgs = str(tmp_path / 'imgs')  # not the output: that is refused first, by role
    cases = [
        ('inference.py', ['cfg.py', 'ck.pth', '--img-dir', imgs, '--out-dir', out,
                          '--out-size', '0,0'], '--out-size'),
        ('inference.py', ['cfg.py', 'ck.pth', '--img-dir', imgs, '--out-dir', out,
                          '--out-size', '100000,100000'], '--out-size'),
        ('make_submission.py', [two_folders[0], '--format', 'handbone', '--out',
                                out + '.csv', '--min-area', '-5'], '--min-area'),
        ('make_submission.py', [two_folders[0], '--format', 'handbone', '--out',
                                out + '.csv', '--thresholds', '1.5'], '--thresholds'),
        ('ensemble.py', [*two_folders, '--out-dir', out, '--weights', '0', '0'],
         '--weights'),
        ('ensemble.py', [two_folders[0], '--out-dir', out], 'probs'),
        ('tune_thresholds.py', [two_folders[0], '--gt', out, '--out', out + '.json',
                                '--search', '0.9', '0.1'], '--search'),
    ]
    for tool, argv, flag in cases:
        code, lines = run_main(osp.join(tools, tool), argv)
        assert code == 2, (tool, argv, lines)
        assert len(lines) == 1 and lines[0].startswith(f'error: {flag}: '), (tool, lines)
    assert not osp.exists(out) and not osp.exists(out + '.csv')


def test_bad_data_exits_1(tmp_path):
    code, lines = run_main(osp.join(REPO, 'tools', 'make_submission.py'),
                           [str(tmp_path / 'none'), '--format', 'handbone', '--out',
                            str(tmp_path / 's.csv')])
    assert code == 1 and len(lines) == 1 and lines[0].startswith('error: '), lines


def test_numbers_are_finite_whole_where_needed_and_within_int64():
    """``1e3`` is the whole number 1000 (as the per-class options take it); infinity,
    fractions for an integer and integers past int64 are refused with the reason."""
    import argparse

    from mmseg_ext.utils.cli import number_in_range
    whole, real = number_in_range(int, 0), number_in_range(float, 0)
    assert whole('1e3') == 1000 and whole('12') == 12 and real('1e300') == 1e300
    for parse, value, words in ((whole, '1.5', 'not a whole number'),
                                (whole, '9223372036854775808', 'beyond int64'),
                                (whole, '1e30', 'beyond int64'),
                                (real, 'inf', 'not a finite number'),
                                (real, '-inf', 'not a finite number'),
                                (real, 'nan', 'outside'),
                                # round U: Python's int() reads other digits and 1_0
                                (whole, '\u0666\u0664', 'not a number written with the '
                                 'digits 0-9'),
                                (whole, '1_000', 'digits 0-9'),
                                (real, '\uff11.5', 'digits 0-9')):
        with pytest.raises(argparse.ArgumentTypeError, match=words):
            parse(value)


def test_sizes_are_written_with_ascii_digits():
    """Round U: ``make_synthetic_handbone --size ٦٤x٦٤`` was taken as 64x64."""
    from mmseg_ext.io.images import parse_size
    assert parse_size('64x32') == (64, 32) and parse_size('16') == (16, 16)
    for text in ('\u0666\u0664x\u0666\u0664', '6_4x64', '\uff16\uff14'):
        assert parse_size(text) is None, text
