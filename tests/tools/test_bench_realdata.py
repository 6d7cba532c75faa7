"""tools/benchmark/bench_realdata.py at its smoke-test size (--tiny: 2 folds, 2
iterations, an 8-channel UNet) on the real chest X-rays; skipped without them."""
import json
import os
import os.path as osp

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


def test_heldback_patients_score_single_folds_against_the_ensemble(tmp_path):
    """``--heldback-patients``: cv runs on the other patients only, and the held-back
    images are scored per class for each fold model, the ensemble and cv's submission;
    every printed figure is the scorer's on the CSVs the script wrote."""
    from mmseg_ext.submission.scoring import score_handbone_csv
    real = shared_data('jsrt_chest')
    data = tmp_path / "jsrt8"  # 8 patients of the real set, linked (nothing copied)
    ids = sorted(os.listdir(osp.join(real, 'train', 'DCM')))[:8]
    for sub in ('DCM', 'outputs_json'):
        (data / 'train' / sub).mkdir(parents=True)
        for i in ids:
            os.symlink(osp.join(real, 'train', sub, i), data / 'train' / sub / i)
    work = tmp_path / 'w'
    config = 'custom_configs/jsrt/unet-s5-d16_multilabel_1xb4-2k_jsrt-chest-512x512.py'
    proc = run_tool('tools/benchmark/bench_realdata.py', '--work-dir', str(work), '-k', '2',
                    '--config', config, '--iters', '2', '--tiny', '--data', str(data),
                    '--heldback-patients', '2', subprocess_run=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    held = (work / 'data' / 'heldback_ids.txt').read_text().split()
    assert len(held) == 2 and set(held) <= set(ids)
    pool = sorted(os.listdir(work / 'data' / 'pool' / 'train' / 'DCM'))
    assert pool == sorted(set(ids) - set(held))  # no held-back patient in the pool
    summary = json.load(open(work / 'cv' / 'summary.json'))
    classes = list(summary['oof_before'])
    out = proc.stdout.splitlines()
    files = sum(len(fs) for part in ('pool', 'heldback')
                for _, _, fs in os.walk(work / 'data' / part))
    assert (f'bench_realdata.py: 2 patients held back ({", ".join(held)}) and '
            f'{len(ids) - 2} in the pool under {work / "data"}: {files} files '
            'hard-linked') in out
    start = next(i for i, line in enumerate(out) if line.startswith('held-back test: '))
    assert out[start].startswith('held-back test: 4 images of 2 patients')
    rows = {line[:line.index('  ')]: line.split()[-len(classes) - 1:]
            for line in out[start + 2:start + 8]}
    gt = str(work / 'data' / 'heldback' / 'train')
    csvs = {'fold 0 model, 0.5': work / 'heldback_csv' / 'fold_0_model.csv',
            'fold 1 model, 0.5': work / 'heldback_csv' / 'fold_1_model.csv',
            '2-fold ensemble (plain mean), 0.5': work / 'heldback_csv' / '2-fold_ensemble.csv',
            '2-fold ensemble, calibrated by fold thresholds':
                work / 'heldback_csv' / '2-fold_ensemble_calibrated.csv',
            '2-fold ensemble, calibrated + clean-up (cv submission)':
                work / 'cv' / 'submission.csv'}
    means = []
    for name, csv in csvs.items():
        score = score_handbone_csv(str(csv), gt, gt + '/DCM', classes, progress=False)
        assert rows[name] == [f'{score.per_class[c]:.4f}' for c in classes] + \
            [f'{score.mean:.4f}'], name
        means.append(score.mean)
    single = rows['single fold, mean of the folds']
    assert float(single[-1]) == pytest.approx((means[0] + means[1]) / 2, abs=1e-4)
    # the same command again resumes; other patients in this work dir are refused
    again = run_tool('tools/benchmark/bench_realdata.py', '--work-dir', str(work), '-k', '2',
                     '--config', config, '--iters', '2', '--tiny', '--data', str(data),
                     '--heldback-patients', '3', subprocess_run=True)
    assert again.returncode != 0 and 'heldback_ids.txt' in again.stderr
