"""Aliasing: every tool, every output option given as (or inside, or around) every input
option, each spelled three ways, with ``--force`` (docs/tool_guarantees.md, path roles).

The cells are derived from the roles the tools' parsers declare
(``ToolParser.add_argument(..., role=...)``), so a new option is covered as soon as it
is declared, and :func:`test_every_text_option_declares_its_role` fails on one that is
not. Each cell runs the tool's ``main`` in this process and asserts exit 2, exactly one
``error:`` line naming the output option and the input, and a file-by-file snapshot
showing that nothing was written, changed or removed.

Spellings of one path: as is; ``dir/../dir/name``; through a symbolic link to the
parent folder.
"""
import argparse
import glob
import os
import os.path as osp
from unittest import mock

import pytest

from mmseg_ext.utils.cli import ToolParser, nonempty_text
from mmseg_ext.utils.cli_paths import option_label
from mmseg_ext.utils.path_roles import INPUT_ROLES, OUTPUT_ROLES, ROLES

from .test_bad_inputs import REPO, run_main, snapshot

TOOLS = sorted(osp.basename(p) for p in glob.glob(osp.join(REPO, 'tools', '*.py'))
               if not osp.basename(p).startswith('_'))


# ------------------------------------------------------------------ parsers
class _Captured(BaseException):
    def __init__(self, parser):
        super().__init__()
        self.parser = parser


def capture_parser(tool: str) -> ToolParser:
    """The parser ``tools/<tool>``'s main builds (its main stops when it parses)."""
    from conftest import load_tool
    module = load_tool(osp.join(REPO, 'tools', tool))

    def grab(self, *args, **kwargs):
        raise _Captured(self)

    with mock.patch.object(ToolParser, 'parse_args', grab):
        try:
            module.main([])
        except _Captured as got:
            return got.parser
    raise AssertionError(f'{tool}: main() did not parse its arguments')


def walk(parser, prefix=()):
    """``(sub-command argv prefix, [parsers on the way])`` for every sub-command."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield prefix, [parser]
        return
    for action in subs:
        for name, sub in action.choices.items():
            for more, chain in walk(sub, prefix + (name,)):
                yield more, [parser] + chain


def actions(chain):
    return [a for p in chain for a in p._actions
            if not isinstance(a, (argparse._SubParsersAction, argparse._HelpAction))]


def valid_value(action):
    """A value the option's type accepts (a number inside its range, a choice, text)."""
    bounds = getattr(action.type, 'bounds', None)
    if action.choices:
        return str(list(action.choices)[0])
    if bounds is not None:
        lo, hi = bounds[0], bounds[1]
        return str(lo + 1 if lo is not None and (hi is None or lo + 1 <= hi) else
                   (lo if lo is not None else hi))
    if getattr(action.type, '__name__', '') == 'suffix':  # cli.file_suffix
        return '.x'
    return 'x'


def value_count(action):
    return action.nargs if isinstance(action.nargs, int) else 1


def build_argv(chain, prefix, given, scratch):
    """A command line: ``given`` (action -> its values), and placeholders for the other
    required options and positionals (paths in ``scratch`` that do not exist: no file
    is read before the refusal). Positionals first, in their order (an option of
    ``nargs='+'`` would take a positional after it), then options."""
    options, positionals = [], []
    for n, action in enumerate(actions(chain)):
        if action in given:
            values = given[action]
        elif action.nargs == 0 or (action.option_strings and not action.required) or \
                (not action.option_strings and action.nargs in ('*', '?')):
            continue
        else:
            role = getattr(action, 'role', None)
            value = osp.join(scratch, f'none{n}') if role in ROLES and role != 'text' \
                else valid_value(action)
            values = [value] * value_count(action)
        if action.option_strings:
            options += [action.option_strings[0], *values]
        else:
            positionals += values
    return list(prefix) + positionals + options


CELLS = []
for _tool in TOOLS:
    for _prefix, _chain in walk(capture_parser(_tool)):
        _acts = actions(_chain)
        for _out in [a for a in _acts if getattr(a, 'role', None) in OUTPUT_ROLES]:
            for _in in [a for a in _acts if getattr(a, 'role', None) in INPUT_ROLES]:
                CELLS.append((_tool, _prefix, option_label(_out), option_label(_in)))


def _find(chain, label):
    return next(a for a in actions(chain) if option_label(a) == label)


@pytest.fixture
def world(tmp_path):
    """``in/`` (a folder with a file), ``link`` -> ``in``, and a scratch folder."""
    folder = tmp_path / 'in'
    folder.mkdir()
    (folder / 'data.json').write_text('{"a": 1}\n')
    os.symlink(folder, tmp_path / 'link')
    (tmp_path / 'scratch').mkdir()
    return tmp_path


def spellings(world, rel):
    """``in/<rel>`` three ways: as is, with ``in/../in``, through ``link``."""
    return [str(world / 'in' / rel), str(world / 'in' / '..' / 'in' / rel),
            str(world / 'link' / rel)]


def as_input(action, path):
    return 'file://' + path if getattr(action, 'role', None) == 'url' else path


def cell_argv(tool, prefix, out_label, in_label, out_path, in_path, world):
    chain = next(c for p, c in walk(capture_parser(tool)) if p == prefix)
    out, src = _find(chain, out_label), _find(chain, in_label)
    argv = build_argv(chain, prefix, {src: [as_input(src, in_path)] * value_count(src),
                                      out: [out_path] * value_count(out)},
                      str(world / 'scratch'))
    if any('--force' in a.option_strings for a in actions(chain)):
        argv.append('--force')
    return argv, out, src


def run_cell(world, argv):
    before = snapshot(str(world))
    code, lines = run_main(argv[0], argv[1:])
    after = snapshot(str(world))
    return code, lines, before == after


KINDS = ['same', 'inside', 'holds']


@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('cell', CELLS, ids=['-'.join([c[0][:-3], *c[1], c[2], c[3]])
                                             for c in CELLS])
def test_output_aliasing_an_input_is_refused(cell, kind, world):
    """same: the output is the input file; inside: the output lies in the input folder;
    holds: the output is the folder holding the input (an ``output``, not a
    ``work-dir``, which may hold inputs). Each three ways, with --force."""
    tool, prefix, out_label, in_label = cell
    for spelt in spellings(world, 'data.json' if kind == 'same' else
                           'new_out' if kind == 'inside' else ''):
        spelt = spelt.rstrip('/')
        in_path = {'same': str(world / 'in' / 'data.json'), 'inside': str(world / 'in'),
                   'holds': str(world / 'in' / 'data.json')}[kind]
        argv, out, src = cell_argv(tool, prefix, out_label, in_label, spelt, in_path,
                                   world)
        if kind == 'holds' and out.role == 'work-dir':
            pytest.skip('a work dir may hold inputs (it is only added to)')
        code, lines, unchanged = run_cell(world, [tool] + argv)
        errors = [line for line in lines if line.startswith('error:')]
        assert code == 2, (argv, lines)
        assert len(errors) == 1 and not any('Traceback' in x for x in lines), lines
        line = errors[0]
        assert line.startswith(f'error: {out_label}: {spelt} '), (argv, line)
        reason = {'same': 'is also an input', 'inside': 'is inside the input folder',
                  'holds': 'holds the input'}[kind]
        assert reason in line, line
        assert (f'({in_label})' in line) if kind == 'same' else (in_path in line), line
        assert unchanged, (argv, 'files changed')


def test_every_tool_has_aliasing_cells():
    """Each tool that writes and reads paths meets the aliasing cells."""
    tools = {c[0] for c in CELLS}
    writers = set(TOOLS) - {'demo.py', 'make_synthetic_handbone.py'}  # no path inputs
    assert writers <= tools, writers - tools
    assert len(CELLS) >= 40, len(CELLS)


def text_options():
    """``(tool, prefix, action)`` of every option that takes text (a path or not)."""
    for tool in TOOLS:
        for prefix, chain in walk(capture_parser(tool)):
            for action in actions(chain):
                if action.nargs == 0 or action.choices:
                    continue
                if action.type in (None, str, nonempty_text) or \
                        getattr(action, 'empty_ok', False):
                    yield tool, prefix, action


def test_every_text_option_declares_its_role():
    """A text option without a role (input, output, ..., or text) would escape the
    aliasing check: declare one."""
    missing = [(tool, *prefix, option_label(a)) for tool, prefix, a in text_options()
               if getattr(a, 'role', None) not in ROLES]
    assert not missing, f'options without a role: {missing}'
    assert len(list(text_options())) > 50


def test_the_reported_cases(world):
    """make_submission --thresholds T --out T --force (three spellings), --min-area
    and --keep-largest files; kfold --out inside its data root; cv --work-dir holding
    the config's data root."""
    probs = str(world / 'scratch' / 'probs')
    thr = str(world / 'in' / 'data.json')
    for option in ('--thresholds', '--min-area', '--keep-largest'):
        for spelt in spellings(world, 'data.json'):
            code, lines, unchanged = run_cell(world, [
                'make_submission.py', probs, '--format', 'handbone', option, thr, '--out',
                spelt, '--force'])
            assert code == 2 and lines == [f'error: --out: {spelt} is also an input '
                                           f'({option}); write outputs elsewhere'], lines
            assert unchanged
    root = str(world / 'in')
    for spelt in spellings(world, 'splits'):
        code, lines, unchanged = run_cell(world, ['kfold.py', 'handbone', root, '--out',
                                                  spelt, '--force'])
        assert code == 2 and lines == [f'error: --out: {spelt} is inside the input folder '
                                       f'{root}; write outputs elsewhere'], lines
        assert unchanged
    data_root = world / 'ds' / 'train'
    data_root.mkdir(parents=True)
    (data_root / 'a.png').write_bytes(b'x')
    config = world / 'scratch' / 'cfg.py'
    config.write_text(f"train_dataloader = dict(dataset=dict(data_root='{data_root}'))\n")
    work = str(world / 'ds')
    code, lines, unchanged = run_cell(world, ['cv.py', str(config), '-k', '2',
                                              '--work-dir', work, '--force'])
    assert code == 2 and lines == [f'error: --work-dir: {work} holds the input {data_root} '
                                   f'(data of {config}); write outputs elsewhere'], lines
    assert unchanged


OUTPUT_PAIRS = []
for _tool in TOOLS:
    for _prefix, _chain in walk(capture_parser(_tool)):
        _outs = [a for a in actions(_chain) if getattr(a, 'role', None) in OUTPUT_ROLES]
        for _i, _first in enumerate(_outs):
            for _second in _outs[_i + 1:]:
                OUTPUT_PAIRS.append((_tool, _prefix, option_label(_first),
                                     option_label(_second)))


@pytest.mark.parametrize('kind', ['same', 'inside', 'holds'])
@pytest.mark.parametrize('pair', OUTPUT_PAIRS, ids=['-'.join([c[0][:-3], *c[1], c[2], c[3]])
                                                    for c in OUTPUT_PAIRS])
def test_two_outputs_writing_over_each_other_are_refused(pair, kind, world):
    """Before, ``test.py --out X --show-dir X/vis`` ran until the second output was
    written and was refused there, with a ``--force`` hint. same: both outputs one
    path; inside: the second inside the first; holds: the first inside the second. A
    work dir may hold another output (it is only added to), never be it."""
    tool, prefix, first_label, second_label = pair
    chain = next(c for p, c in walk(capture_parser(tool)) if p == prefix)
    first, second = _find(chain, first_label), _find(chain, second_label)
    outer = str(world / 'scratch' / 'out')
    nested = osp.join(outer, 'sub')
    paths = {'same': (outer, outer), 'inside': (outer, nested), 'holds': (nested, outer)}
    first_path, second_path = paths[kind]
    holder = first if kind == 'inside' else second
    if kind != 'same' and holder.role == 'work-dir':
        pytest.skip('a work dir may hold another output')
    argv = build_argv(chain, prefix, {first: [first_path] * value_count(first),
                                      second: [second_path] * value_count(second)},
                      str(world / 'scratch'))
    code, lines, unchanged = run_cell(world, [tool] + argv)
    errors = [line for line in lines if line.startswith('error:')]
    assert code == 2, (argv, lines)
    assert len(errors) == 1 and not any('Traceback' in x for x in lines), lines
    reason = {'same': 'the same path as', 'inside': 'a folder holding',
              'holds': 'inside'}[kind]
    assert errors[0] == (f'error: {first_label}: {first_path} is {reason} {second_path} '
                         f'({second_label}); give each output its own place'), errors[0]
    assert unchanged


def test_there_are_output_pairs_to_check():
    assert {'test.py', 'ensemble.py'} <= {p[0] for p in OUTPUT_PAIRS}, OUTPUT_PAIRS
