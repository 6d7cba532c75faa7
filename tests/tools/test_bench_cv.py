"""The benchmarks behind the README's cross-validation and recipe figures, on tiny data:
they run end to end and print rows whose scores the scorer reproduces from their CSVs."""
import os

import pytest
from conftest import call_tool

from mmseg_ext.submission.scoring import score_handbone_csv

pytestmark = pytest.mark.slow
DEMO = 'custom_configs/demo/unet-s5-tiny_multilabel_1xb4-1500i_handbone-synth-128x128.py'


def _rows(stdout, header):
    """The lines after the table header that starts with ``header``, to the first
    blank line."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines)
                 if line.startswith(header) and 'Dice' in line)
    rows = []
    for line in lines[start + 1:]:
        if not line.strip():
            break
        rows.append(line)
    return rows


def test_bench_cv_prints_the_five_submissions(tmp_path):
    work = tmp_path / 'w'
    proc = call_tool('tools/benchmark/bench_cv.py', '--work-dir', str(work), '-k', '2',
                     '--iters', '2', '--patients', '4', '--heldback-patients', '2',
                     '--size', '64', '--no-progress')
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = _rows(proc.stdout, 'submission ')[:5]
    assert [r.split('  ')[0] for r in rows] == [
        'fold 0 model, threshold 0.5', 'fold 0 model, thresholds tuned on fold 0 val',
        '2-fold ensemble (plain mean), threshold 0.5',
        '2-fold ensemble, each model calibrated by its own OOF thresholds',
        '2-fold ensemble, calibrated + OOF-tuned components (tools/cv.py submission)']
    # every row scored again here from the CSV it names; the last is cv's own
    held = str(work / 'heldback' / 'train')
    for row, csv in zip(rows, ['fold_0_model_05', 'fold_0_model_tuned', '2-fold_ensemble_05',
                               '2-fold_ensemble_calibrated', 'cv/submission']):
        score = score_handbone_csv(str(work / f'{csv}.csv'), held, held + '/DCM',
                                   progress=False)
        assert row.split()[-1] == f'{score.mean:.4f}', row


def test_bench_heldback_scores_each_config(tmp_path):
    data = tmp_path / 'd'
    assert call_tool('tools/make_synthetic_handbone.py', '--out', str(data / 'a'),
                     '--patients', '4', '--size', '64').returncode == 0
    assert call_tool('tools/make_synthetic_handbone.py', '--out', str(data / 'b'),
                     '--patients', '1', '--size', '64', '--seed', '1').returncode == 0
    work = tmp_path / 'w'
    proc = call_tool('tools/benchmark/bench_heldback.py', DEMO, '--train',
                     str(data / 'a' / 'train'), '--heldback', str(data / 'b' / 'train'),
                     '--work-dir', str(work), '--iters', '2', '--no-progress',
                     # typed as tools/train.py types them (a number stays a number)
                     '--cfg-options', 'train_dataloader.num_workers=0')
    assert proc.returncode == 0, proc.stderr[-3000:]
    (row,) = _rows(proc.stdout, 'config ')
    run = work / '0_unet-s5-tiny_multilabel_1xb4-1500i_handbone-synth-128x128'
    score = score_handbone_csv(str(run / 'heldback.csv'),
                               str(data / 'b' / 'train'), str(data / 'b' / 'train' / 'DCM'),
                               progress=False)
    assert row.split()[1] == f'{score.mean:.4f}'


def test_bench_heldback_splits_one_set_by_patient(tmp_path):
    """``--data --heldback-patients``: the held-back patients are scored and never
    trained on; the two parts together are the data set's patients, each once."""
    data = tmp_path / 'd'
    assert call_tool('tools/make_synthetic_handbone.py', '--out', str(data),
                     '--patients', '5', '--size', '64').returncode == 0
    work = tmp_path / 'w'
    proc = call_tool('tools/benchmark/bench_heldback.py', DEMO, '--data', str(data),
                     '--heldback-patients', '1', '--work-dir', str(work), '--iters', '2',
                     '--no-progress', '--cfg-options', 'train_dataloader.num_workers=0')
    assert proc.returncode == 0, proc.stderr[-3000:]
    parts = {p: sorted(os.listdir(work / 'data' / p / 'train' / 'DCM'))
             for p in ('pool', 'heldback')}
    assert len(parts['heldback']) == 1 and len(parts['pool']) == 4
    assert sorted(parts['pool'] + parts['heldback']) == sorted(os.listdir(data / 'train' / 'DCM'))
    (row,) = _rows(proc.stdout, 'config ')
    held = str(work / 'data' / 'heldback' / 'train')
    run = work / '0_unet-s5-tiny_multilabel_1xb4-1500i_handbone-synth-128x128'
    score = score_handbone_csv(str(run / 'heldback.csv'), held, held + '/DCM',
                               progress=False)
    assert row.split()[1] == f'{score.mean:.4f}'
    table = proc.stdout.split('per class:')[1].splitlines()
    assert table[1].split('|')[-2].strip() == f'{score.mean:.4f}'
    bad = call_tool('tools/benchmark/bench_heldback.py', DEMO, '--data', str(data),
                    '--work-dir', str(tmp_path / 'x'))
    assert bad.returncode == 2 and 'go together' in bad.stderr
