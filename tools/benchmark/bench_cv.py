"""One fold's model vs the K-fold ensemble tuned out of fold, on a held-back test split.

    python tools/benchmark/bench_cv.py --work-dir DIR [-k 5] [--iters 500]
        [--patients 12] [--heldback-patients 4] [--size 128] [--config CONFIG]

1. writes a synthetic hand-bone training set (``--patients``, seed 0) and a held-back
   labelled set of other patients (``--heldback-patients``, seed 1) that cross-
   validation never sees;
2. runs ``tools/cv.py``'s :func:`cross_validate` on the training set with K folds and
   the held-back images as test set (every fold model trains ``--iters`` iterations);
3. scores, on the held-back set with the competition Dice, side by side:

   * fold 0's model at threshold 0.5;
   * fold 0's model with per-class thresholds tuned on fold 0's validation images
     (what a single-model user does with ``tools/tune_thresholds.py``);
   * the K-fold ensemble, the plain mean of the fold models, at 0.5;
   * the ensemble of ``tools/cv.py``: each fold model calibrated by its own thresholds
     tuned on its out-of-fold images, averaged, at 0.5;
   * the same with the out-of-fold tuned component clean-up (the ``submission.csv`` of
     ``tools/cv.py``).

Every number is computed here from the CSVs and the held-back ground truth; nothing is
assumed to improve.
"""
import argparse
import os.path as osp
import time

import _common  # noqa: F401  (import path)
from _common import plain_fold_vote  # noqa: E402

from mmseg_ext.utils.cli import number_in_range  # noqa: E402

CONFIG = 'custom_configs/demo/unet-s5-tiny_multilabel_1xb4-1500i_handbone-synth-128x128.py'


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--work-dir', required=True)
    p.add_argument('-k', '--num-folds', type=number_in_range(int, 2), default=5)
    p.add_argument('--iters', type=number_in_range(int, 1), default=500, help='iterations per fold model')
    p.add_argument('--patients', type=number_in_range(int, 1), default=12)
    p.add_argument('--heldback-patients', type=number_in_range(int, 1), default=4)
    p.add_argument('--images-per-patient', type=number_in_range(int, 1), default=2)
    p.add_argument('--size', type=number_in_range(int, 1), default=128)
    p.add_argument('--config', default=CONFIG)
    p.add_argument('--no-progress', action='store_true')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from mmseg_ext import register_all_modules
    register_all_modules()
    from mmseg_ext.postprocessing.thresholds import tune_thresholds
    from mmseg_ext.preparation.synthetic import write_synthetic_handbone
    from mmseg_ext.submission.make import make_submission
    from mmseg_ext.submission.scoring import score_handbone_csv
    from mmseg_ext.workflows.cross_validation import cross_validate
    progress = not args.no_progress
    start = time.time()
    data = osp.join(args.work_dir, 'data')
    held = osp.join(args.work_dir, 'heldback')
    size = (args.size, args.size)
    if not osp.isdir(osp.join(data, 'train')):
        write_synthetic_handbone(data, args.patients, args.images_per_patient, size, 0, 0,
                                 progress=progress)
    if not osp.isdir(osp.join(held, 'train')):
        write_synthetic_handbone(held, args.heldback_patients, args.images_per_patient,
                                 size, 0, 1, progress=progress)
    root = osp.join(data, 'train')
    n = args.iters
    options = {f'{s}_dataloader.dataset.data_root': root for s in ('train', 'val', 'test')}
    options.update({'train_cfg.max_iters': n, 'train_cfg.val_interval': n,
                    'default_hooks.checkpoint.interval': n,
                    'param_scheduler.0.end': min(50, max(1, n // 10)),
                    'param_scheduler.1.begin': min(50, max(1, n // 10)),
                    'param_scheduler.1.end': n, 'log_level': 'WARNING'})
    work = osp.join(args.work_dir, 'cv')
    test_dir = osp.join(held, 'train', 'DCM')
    summary = cross_validate(args.config, args.num_folds, work, test_dir=test_dir,
                             cfg_options=options, progress=progress)
    print(summary.table())

    # fold 0 alone: thresholds tuned on its own validation images
    fold0 = summary.folds[0]
    thr0 = osp.join(args.work_dir, 'fold0_thresholds.json')
    tune_thresholds(fold0.val_probs, root, out=thr0, force=True, progress=progress)
    plain = plain_fold_vote(work, osp.join(args.work_dir, 'plain_ensemble'))
    k = args.num_folds
    csvs = {}
    for name, probs, kwargs, csv in (
            ('fold 0 model, threshold 0.5', osp.join(work, 'test', 'fold0'), {},
             'fold_0_model_05'),
            ('fold 0 model, thresholds tuned on fold 0 val', osp.join(work, 'test', 'fold0'),
             dict(thresholds=thr0), 'fold_0_model_tuned'),
            (f'{k}-fold ensemble (plain mean), threshold 0.5', plain, {},
             f'{k}-fold_ensemble_05'),
            (f'{k}-fold ensemble, each model calibrated by its own OOF thresholds',
             osp.join(work, 'test', 'ensemble'), {}, f'{k}-fold_ensemble_calibrated')):
        out = osp.join(args.work_dir, csv + '.csv')
        make_submission(probs, 'handbone', out, img_dir=test_dir, force=True,
                        progress=progress, **kwargs)
        csvs[name] = out
    csvs[f'{k}-fold ensemble, calibrated + OOF-tuned components (tools/cv.py '
         'submission)'] = summary.files['submission']
    rows = [(name, score_handbone_csv(path, osp.join(held, 'train'), test_dir,
                                      progress=False)) for name, path in csvs.items()]
    width = max(len(name) for name, _ in rows)
    print(f'\nheld-back test: {rows[0][1].images} images of {args.heldback_patients} '
          f'patients never seen by cross-validation; {n} iterations per fold model')
    print(f'{"submission":<{width}}  mean Dice')
    for name, score in rows:
        print(f'{name:<{width}}  {score.mean:.4f}')
    print(f'OOF mean Dice of the folds: {_mean(summary.oof_before):.4f} at 0.5, '
          f'{_mean(summary.oof_after):.4f} tuned')
    print(f'total {time.time() - start:.0f} s')


def _mean(d):
    return sum(d.values()) / len(d)


if __name__ == '__main__':
    main()
