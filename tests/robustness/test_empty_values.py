"""Empty values and options without their partner (docs/tool_guarantees.md).

* Every text or path option of every tool given ``""`` (or blanks) is a command-line
  error (exit 2, one line naming the option), never "not given": ``--work-dir ""`` once
  ran a whole cross-validation in the current folder.
* Every partner rule a parser declares (``requires``, ``requires_one_of``,
  ``conflicts``) is walked: the option without the one it needs, or with one it
  excludes, exits 2 with one line naming the option, and nothing is written.

The cells come from the parsers themselves (tests/robustness/test_aliasing.py walks
them), so a new option or rule is covered when it is declared.
"""
import os.path as osp

import pytest

from .test_aliasing import (
    TOOLS,
    actions,
    build_argv,
    capture_parser,
    text_options,
    valid_value,
    value_count,
    walk,
)
from .test_bad_inputs import REPO, run_main, snapshot

TEXT = [(tool, prefix, a) for tool, prefix, a in text_options()
        if not getattr(a, 'empty_ok', False)]


def chain_of(tool, prefix):
    return next(c for p, c in walk(capture_parser(tool)) if p == prefix)


def by_label(chain, label):
    from mmseg_ext.utils.cli_paths import option_label
    return next(a for a in actions(chain) if option_label(a) == label)


@pytest.mark.parametrize('blank', ['', '  '])
@pytest.mark.parametrize('cell', TEXT, ids=['-'.join([t[:-3], *p, a.dest])
                                            for t, p, a in TEXT])
def test_an_empty_value_is_refused_naming_the_option(cell, blank, tmp_path):
    from mmseg_ext.utils.cli_paths import option_label
    tool, prefix, _ = cell
    chain = chain_of(tool, prefix)
    action = by_label(chain, option_label(cell[2]))
    argv = build_argv(chain, prefix, {action: [blank] * value_count(action)},
                      str(tmp_path / 'scratch'))
    before = snapshot(str(tmp_path))
    code, lines = run_main(tool, argv)
    assert code == 2, (argv, lines)
    assert len(lines) == 1 and lines[0].startswith('error: '), lines
    names = action.option_strings or [action.dest, str(action.metavar)]
    assert any(f'argument {n}' in lines[0] or f'argument {n}/' in lines[0]
               for n in names) and 'empty value' in lines[0], lines
    assert snapshot(str(tmp_path)) == before


def _value(action, spec, scratch):
    """Values that give ``action`` (as the rule names it: ``--flag`` or ``--flag=v``)."""
    if '=' in spec:
        return [spec.split('=', 1)[1]]
    if action.nargs == 0:
        return []
    role = getattr(action, 'role', None)
    value = osp.join(scratch, action.dest) if role not in (None, 'text') else valid_value(action)
    return [value] * value_count(action)


RULES = []
for _tool in TOOLS:
    for _prefix, _chain in walk(capture_parser(_tool)):
        for _parser in _chain:
            for _kind, _option, _others, _why in _parser.rules:
                RULES.append((_tool, _prefix, _kind, _option, _others))
RULES = sorted(set(RULES))


@pytest.mark.parametrize('rule', RULES, ids=['-'.join([r[0][:-3], *r[1], r[2], r[3],
                                                       *r[4]]) for r in RULES])
def test_every_partner_rule_is_enforced(rule, tmp_path):
    """requires: the option alone; requires_one_of: the option alone; conflicts: the
    option with each of the others. Exit 2, one line naming the option and the
    partner, nothing written."""
    tool, prefix, kind, option, others = rule
    chain = chain_of(tool, prefix)
    scratch = str(tmp_path / 'scratch')
    parser = next(p for p in chain if (kind, option, others) in
                  [(k, o, t) for k, o, t, _ in p.rules])
    label = parser._label
    cases = [[option]] if kind != 'conflicts' else [[option, o] for o in others]
    for given in cases:
        acts = {parser._find(spec): _value(parser._find(spec), spec, scratch)
                for spec in given}
        argv = build_argv(chain, prefix, acts, scratch)
        # the partners a 'requires' needs are left out; nothing else is added
        before = snapshot(str(tmp_path))
        code, lines = run_main(tool, argv)
        assert code == 2, (argv, lines)
        assert len(lines) == 1, (argv, lines)
        if kind == 'conflicts':
            expected = f'error: {label(option)}: does not go with {label(given[1])}'
        else:
            joiner = ' or ' if kind == 'requires_one_of' else ' and '
            expected = f'error: {label(option)}: needs ' + joiner.join(
                label(o) for o in others)
        assert lines[0].startswith(expected), (argv, lines[0], expected)
        assert snapshot(str(tmp_path)) == before


def test_the_reported_partners(tmp_path):
    """cv.py --test-json without --test-dir; --work-dir ""."""
    code, lines = run_main('cv.py', ['cfg.py', '-k', '2', '--work-dir', str(tmp_path / 'w'),
                                     '--test-json', 't.json'])
    assert code == 2 and lines == ['error: --test-json: needs --test-dir (the submission '
                                   'is made for the test images)'], lines
    code, lines = run_main('cv.py', ['cfg.py', '-k', '2', '--work-dir', ''])
    assert code == 2 and len(lines) == 1 and 'argument --work-dir: empty value' in lines[0]
    assert not osp.exists(tmp_path / 'w')


def test_test_out_with_a_metric_that_writes_no_files(tmp_path, fast_cpu):
    """tools/test.py --out goes to the test metric's output_dir; the multi-label Dice
    writes none, so --out with it is refused (it was ignored with exit 0)."""
    config = osp.join(REPO, 'custom_configs', 'demo',
                      'unet-s5-tiny_multilabel_1xb4-1500i_handbone-synth-128x128.py')
    out = tmp_path / 'preds'
    ckpt = tmp_path / 'model.pth'
    ckpt.write_bytes(b'')  # never read: the refusal comes first
    code, lines = run_main('test.py', [config, str(ckpt), '--work-dir',
                                       str(tmp_path / 'w'), '--out', str(out)])
    assert code == 2, lines
    errors = [x for x in lines if x.startswith('error:')]
    assert errors == ['error: --out: the test metric MultiLabelDiceMetric writes no '
                      'prediction files; save probabilities with tools/inference.py '
                      '--out-dir instead'], lines
    assert not out.exists()
