"""tools/benchmark/bench_realdata.py at its smoke-test size (--tiny: 2 folds, 2
iterations, an 8-channel UNet) on the real chest X-rays; skipped without them."""
import json

import pytest
from conftest import run_tool, shared_data

pytestmark = pytest.mark.slow


def test_real_data_benchmark_prints_the_oof_dice_of_each_decision(tmp_path):
    shared_data('jsrt_chest')
    work = tmp_path / 'w'
    config = 'custom_configs/jsrt/unet-s5-d16_multilabel_1xb4-2k_jsrt-chest-512x512.py'
    proc = run_tool('tools/benchmark/bench_realdata.py', '--work-dir', str(work), '-k', '2',
                    '--config', config, '--iters', '2', '--tiny', subprocess_run=True,
                    timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.load(open(work / 'summary.json'))
    classes = list(summary['oof_before'])
    assert len(classes) == 5
    out = proc.stdout.splitlines()
    header = next(i for i, line in enumerate(out)
                  if line.startswith('class ') and line.rstrip().endswith('final'))
    rows = out[header + 1:header + 1 + len(classes)]
    assert [r.split()[0] for r in rows] == classes
    for row, cls in zip(rows, classes):
        plain, chosen, after_tta, tuned, final = row.split()[1:]
        assert chosen == summary['decisions']['tta'][cls]['chosen']
        assert float(after_tta) == pytest.approx(summary['oof_before'][cls], abs=6e-5)
        assert float(tuned) == pytest.approx(summary['oof_after'][cls], abs=6e-5)
        assert float(plain) == pytest.approx(summary['decisions']['tta'][cls]['plain'],
                                             abs=6e-5)
    assert out[header + 1 + len(classes)].startswith('mean ')
    assert any('2 iterations each' in line and 'CPU-min' in line for line in out)
