"""Round N of hostile inputs (issue 28), each case by its class:

* thresholds on probabilities made from a calibrated fold vote (an ensemble of two
  votes, or of a vote and a fold model): the source is searched at any depth;
* a refused run removes only what it wrote: its log folder's own files, the empty
  parent folders it made, and (cv, self-training) the outputs of a work dir it made
  before any stage finished;
* a demo rerun records only its own outputs, and recovers by itself from a rerun that
  was killed outright;
* a copied cv work dir whose fold checkpoint was deleted trains the fold again;
* a dangling symbolic link as an output folder is named as one;
* a signal during interpreter teardown never ends a finished tool silently.
"""
import os
import os.path as osp
import sys

import numpy as np
import pytest

TESTS = osp.dirname(osp.dirname(osp.abspath(__file__)))
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)

from robustness.test_bad_inputs import assert_refused, run_main, snapshot  # noqa: E402
from robustness.test_round_m_cases import CLASSES, _folder, world  # noqa: E402,F401


@pytest.mark.parametrize('partner', ['other vote', 'fold model'])
def test_thresholds_are_refused_on_what_a_calibrated_vote_went_into(world, tmp_path,
                                                                    partner):
    """N-4: an ensemble of two fold votes (or of a vote and one of its own fold models)
    holds calibrated probabilities; thresholds on it apply the fold thresholds twice."""
    source = dict(ensemble=[], fold_thresholds=[{c: 0.6 for c in CLASSES}]) \
        if partner == 'other vote' else None
    other = _folder(tmp_path / 'other', 0.7, source=source)
    mixed = str(tmp_path / 'mixed')
    code, lines = run_main('ensemble.py', [world['calibrated'], other, '--out-dir', mixed,
                                           '--no-progress'])
    assert code == 0, lines
    before = snapshot(str(tmp_path))
    for extra in (['--thresholds', world['thr']], ['--threshold', '0.7']):
        code, lines = run_main('make_submission.py', [mixed, '--format', 'handbone',
                                                      '--out', f'{tmp_path}/s.csv',
                                                      '--no-progress', *extra])
        assert_refused(code, lines, 1, mixed, 'holds a calibrated fold vote')
    code, lines = run_main('pseudo_label.py', [mixed, '--out-dir', f'{tmp_path}/pl',
                                               '--thresholds', world['thr'],
                                               '--no-progress'])
    assert_refused(code, lines, 1, mixed, 'holds a calibrated fold vote')
    assert snapshot(str(tmp_path)) == before
    code, lines = run_main('make_submission.py', [mixed, '--format', 'handbone', '--out',
                                                  f'{tmp_path}/s.csv', '--no-progress'])
    assert code == 0, lines                            # decided at 0.5: accepted


def test_a_plain_ensemble_still_takes_thresholds(tmp_path):
    a = _folder(tmp_path / 'a', 0.8, source=dict(note=[{'x': 1}]))
    b = _folder(tmp_path / 'b', 0.6)
    out = str(tmp_path / 'e')
    code, lines = run_main('ensemble.py', [a, b, '--out-dir', out, '--no-progress'])
    assert code == 0, lines
    code, lines = run_main('make_submission.py', [out, '--format', 'handbone', '--out',
                                                  f'{tmp_path}/s.csv', '--threshold',
                                                  '0.7', '--no-progress'])
    assert code == 0, lines


def test_a_dangling_link_as_a_work_dir_is_named_as_one(tmp_path, shapes_root):
    """N-9: it was called "a file, not a folder"."""
    from conftest import CONFIG, data_options, run_tool
    link = tmp_path / 'work'
    os.symlink(tmp_path / 'gone', link)
    proc = run_tool('tools/train.py', CONFIG, '--work-dir', str(link),
                    *data_options(shapes_root, 1))
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 1 and last.startswith(f'error: {link}'), proc.stderr[-1500:]
    assert f'a symbolic link to {tmp_path / "gone"}, which does not exist' in last, last
    assert not (tmp_path / 'gone').exists() and osp.islink(link)
