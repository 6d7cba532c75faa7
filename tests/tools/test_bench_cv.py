"""The benchmarks behind the README's cross-validation and recipe figures, on tiny data:
they run end to end and print rows whose scores the scorer reproduces from their CSVs."""
import pytest
from conftest import call_tool

from mmseg_ext.submission.scoring import score_handbone_csv

pytestmark = pytest.mark.slow
DEMO = 'custom_configs/demo/unet-s5-tiny_multilabel_1xb4-1500i_handbone-synth-128x128.py'


def _rows(stdout, header):
    """The lines after the table header that starts with ``header``."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines)
                 if line.startswith(header) and 'Dice' in line)
    return [line for line in lines[start + 1:] if line.strip()]


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
