"""The README's speed and memory figures come from scripts in tools/benchmark/; each of
them runs here at a tiny size, and the equality checks it prints (fast path against its
straightforward reference) must hold. Which figures they print is not asserted: those
are measurements, not test results."""
import re

import pytest
from conftest import run_tool, shared_data

pytestmark = pytest.mark.slow


def bench(*args):
    proc = run_tool(*args, subprocess_run=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the stacks' import noise is filtered where the plugin registers (docs/design.md)
    assert 'Could not import OneDL' not in proc.stdout + proc.stderr
    return proc.stdout


def test_rle_benchmark_encodes_byte_identically():
    out = bench('tools/benchmark/bench_rle.py', '--images', '1', '--repeat', '1')
    rows = [line.split() for line in out.splitlines()
            if line.startswith(('row-major', 'column-major'))]
    assert [r[0] for r in rows] == ['row-major', 'column-major']
    assert all(r[-1] == 'True' for r in rows)


def test_handbone_loading_benchmark_rasterises_like_the_naive_mask():
    out = bench('tools/benchmark/bench_handbone_loading.py', '--size', '256', '--scale',
                '64', '--repeats', '1', '--skip-stock-pack')
    for name in ('deferred, nearest', 'eager (full mask + Resize)'):
        (line,) = [x for x in out.splitlines() if name in x and 'differing labels' in x]
        assert re.search(r'differing labels\s+0 \(0\.0000%\)', line), line


def test_ensemble_benchmark_runs_both_sizes():
    out = bench('tools/benchmark/bench_ensemble.py', '--size', '32', '--repeat', '1')
    tasks = [tuple(line.split()[:2]) for line in out.splitlines()
             if re.match(r'\s+\d+ (read|read-box|ensemble) ', line)]
    assert tasks == [(n, t) for n in ('10', '100') for t in ('read', 'read-box',
                                                              'ensemble')]


def test_submission_benchmark_matches_its_reference():
    out = bench('tools/benchmark/bench_submission.py', '--images', '3',
                '--reference-images', '1')
    assert 'submission benchmark: 87 rows' in out  # 3 images x 29 classes
    assert 'first 29 rows byte-identical: True' in out


def test_coco_mask_benchmark_gives_identical_masks():
    shared_data('fracatlas_coco')
    out = bench('tools/benchmark/bench_coco_masks.py', '--repeat', '1')
    assert 'identical masks: yes (72 images compared)' in out
