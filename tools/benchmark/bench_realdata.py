"""The real-data benchmark: tools/cv.py --tta on the JSRT chest X-rays, OOF Dice per class.

    python tools/benchmark/bench_realdata.py --work-dir DIR [-k 5] [--iters 500]
        [--config CONFIG] [--data ../shared/data/jsrt_chest] [--device DEV]
        [--cfg-options key=value ...] [--heldback-patients N] [--tiny]

Runs ``tools/cv.py CONFIG -k K --tta`` on ``--data`` (124 real chest X-rays, 5
overlapping classes; see its README) at the stated budget (``--iters`` per fold model;
the CPU budget of docs/cross_validation.md is about 75 CPU-minutes for 5 folds) and
prints, per class, the out-of-fold (OOF) Dice:

* plain: every fold model's plain prediction of its validation images, at 0.5;
* TTA chosen: the TTA candidate cv chose for the class on OOF evidence, and its Dice;
* tuned: after the per-class threshold and component clean-up (cv's ``oof_after``);
* final: what the submission settings give on the OOF images (= tuned);

and the collapsed folds. Single fold vs K-fold ensemble needs labelled images outside
the pool, and the other half of the set is withheld (scored blind). So
``--heldback-patients N`` sets N patients (ID folders, a seeded draw) of ``--data``
aside: cross-validation runs on the others only (``DIR/cv``; ``DIR/data`` holds the
two parts as hard links to the data's files), their images are its test set, and the script
then scores on them, per class with the competition Dice: each fold model alone at 0.5
(with the TTA views cv chose), the K-fold ensemble as the plain mean at 0.5, cv's
ensemble (each fold model calibrated by its own out-of-fold thresholds, then averaged,
at 0.5) and cv's submission (that ensemble with the out-of-fold tuned clean-up).
Without it, that row says n/a.
``--tiny`` is the smoke test's size (2 iterations, a tiny model, 128 px). Without the
data set it prints why and exits 0.
"""
import argparse
import json
import os
import os.path as osp
import resource
import subprocess
import sys
import time
from typing import Dict, Optional

import _common  # noqa: F401  (import path)
import numpy as np  # noqa: E402
from _common import plain_fold_vote, split_patients  # noqa: E402

from mmseg_ext.utils.cli import number_in_range  # noqa: E402

ROOT = _common.ROOT
CONFIG = 'custom_configs/jsrt/unet-s5-d16_multilabel_1xb4-2k_jsrt-chest-512x512.py'
DATA = osp.normpath(osp.join(ROOT, '..', 'shared', 'data', 'jsrt_chest'))
#: the smoke test's model and sizes: a UNet with 8 base channels at 128 px
TINY = ['model.backbone.base_channels=8', 'model.decode_head.in_channels=8',
        'model.decode_head.channels=8',
        'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
        'train_dataloader.batch_size=2', 'val_dataloader.num_workers=0',
        'val_dataloader.persistent_workers=False', 'param_scheduler=[]',
        'model.data_preprocessor.size=(128,128)',
        'train_dataloader.dataset.pipeline.2.scale=(128,128)',     # RandomResize
        'train_dataloader.dataset.pipeline.4.crop_size=(128,128)',  # RandomCrop
        'train_dataloader.dataset.pipeline.7.size=(128,128)',       # MultiLabelPad
        'val_dataloader.dataset.pipeline.1.scale=(128,128)',
        'test_dataloader.dataset.pipeline.1.scale=(128,128)']


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--work-dir', required=True)
    p.add_argument('-k', '--num-folds', type=number_in_range(int, 2), default=5)
    p.add_argument('--iters', type=number_in_range(int, 1), default=500,
                   help='training iterations per fold model (default 500)')
    p.add_argument('--config', default=CONFIG)
    p.add_argument('--data', default=DATA, help='the JSRT chest set (hand-bone layout)')
    p.add_argument('--device', help='inference device (default: cuda:0 if present)')
    p.add_argument('--cfg-options', nargs='+', default=[],
                   help='more config overrides (a bigger model on a GPU, ...)')
    p.add_argument('--tiny', action='store_true', help='smoke-test size: 2 iterations, '
                   '8-channel UNet')
    p.add_argument('--heldback-patients', type=number_in_range(int, 1), default=None,
                   help='set N patients aside as a labelled test set: single fold vs '
                        'K-fold ensemble on images no fold trained on')
    p.add_argument('--force', action='store_true', help='start the cv run again')
    return p.parse_args(argv)


def cv_dir(args) -> str:
    """Where cv writes: the work dir, or ``work_dir/cv`` beside the held-back data."""
    return osp.join(args.work_dir, 'cv') if args.heldback_patients else args.work_dir


def cv_command(args, roots: Optional[Dict[str, str]] = None) -> list:
    iters = 2 if args.tiny else args.iters
    train = roots['pool'] if roots else f'{args.data}/train'
    options = [f'{s}_dataloader.dataset.data_root={train}'
               for s in ('train', 'val', 'test')]
    # --tiny: no validation inside training (cv predicts every fold's images anyway)
    options += [f'train_cfg.max_iters={iters}',
                f'train_cfg.val_interval={1000 if args.tiny else iters}',
                f'default_hooks.checkpoint.interval={iters}', 'log_level=WARNING']
    if args.tiny:
        options += TINY
    options += args.cfg_options
    cmd = [sys.executable, osp.join(ROOT, 'tools', 'cv.py'), args.config,
           '-k', str(args.num_folds), '--work-dir', cv_dir(args), '--tta', '--no-progress',
           '--cfg-options', *options]
    if roots:
        cmd += ['--test-dir', osp.join(roots['heldback'], 'DCM')]
    if args.device:
        cmd += ['--device', args.device]
    if args.force:
        cmd.append('--force')
    return cmd


def report(summary: dict) -> str:
    """The per-class table of a cv ``summary.json``."""
    d = summary.get('decisions') or {}
    tta = d.get('tta') or {}
    lines = [f'{"class":<16} {"plain":>7} {"TTA chosen":>16} {"tuned":>7} {"final":>7}']
    rows = {k: [] for k in ('plain', 'tta', 'tuned')}
    for cls, after_tta in summary['oof_before'].items():
        t = tta.get(cls, {})
        plain = t.get('plain', after_tta)
        chosen = f'{t.get("chosen", "-")} {after_tta:.4f}'
        tuned = summary['oof_after'][cls]
        rows['plain'].append(plain)
        rows['tta'].append(after_tta)
        rows['tuned'].append(tuned)
        lines.append(f'{cls:<16} {plain:7.4f} {chosen:>16} {tuned:7.4f} {tuned:7.4f}')
    mean = {k: sum(v) / len(v) for k, v in rows.items()}
    lines.append(f'{"mean":<16} {mean["plain"]:7.4f} {mean["tta"]:16.4f} '
                 f'{mean["tuned"]:7.4f} {mean["tuned"]:7.4f}')
    for cls, folds in (d.get('collapsed') or {}).items():
        lines.append(f'collapsed: {cls} in fold(s) {", ".join(map(str, folds))} '
                     '(left out of its test-time fold vote)')
    if not d.get('collapsed'):
        lines.append('collapsed folds: none')
    return '\n'.join(lines)


def heldback_report(summary: dict, cv_work: str, heldback: str, patients: int) -> str:
    """Per-class competition Dice on the held-back images (``heldback``: a hand-bone
    root): each fold model at 0.5, the fold ensemble at 0.5, and cv's submission."""
    from mmseg_ext.submission.make import make_submission
    from mmseg_ext.submission.scoring import score_handbone_csv
    classes = list(summary['oof_before'])
    img_dir = osp.join(heldback, 'DCM')
    out_dir = osp.join(osp.dirname(cv_work), 'heldback_csv')
    os.makedirs(out_dir, exist_ok=True)
    k = summary['num_folds']
    sources = [(f'fold {f} model, 0.5', osp.join(cv_work, 'test', f'fold{f}'),
                f'fold_{f}_model') for f in range(k)]
    plain = plain_fold_vote(cv_work, osp.join(osp.dirname(cv_work), 'plain_ensemble'))
    sources += [(f'{k}-fold ensemble (plain mean), 0.5', plain, f'{k}-fold_ensemble'),
                (f'{k}-fold ensemble, calibrated by fold thresholds',
                 osp.join(cv_work, 'test', 'ensemble'), f'{k}-fold_ensemble_calibrated')]
    scores = {}
    for name, probs, base in sources:
        csv = osp.join(out_dir, base + '.csv')
        make_submission(probs, 'handbone', csv, img_dir=img_dir, force=True,
                        progress=False)
        scores[name] = score_handbone_csv(csv, heldback, img_dir, classes, progress=False)
    scores[f'{k}-fold ensemble, calibrated + clean-up (cv submission)'] = score_handbone_csv(
        osp.join(cv_work, 'submission.csv'), heldback, img_dir, classes, progress=False)
    singles = [scores[f'fold {f} model, 0.5'] for f in range(k)]
    n = singles[0].images
    width = max(len(name) for name in scores)
    lines = [f'held-back test: {n} images of {patients} patients no fold trained on',
             f'{"prediction":<{width}} ' + ' '.join(f'{c[:12]:>12}' for c in classes) +
             f' {"mean":>7}']

    def row(name, per_class, mean):
        return (f'{name:<{width}} ' + ' '.join(f'{per_class[c]:12.4f}' for c in classes)
                + f' {mean:7.4f}')

    for name, score in scores.items():
        lines.append(row(name, score.per_class, score.mean))
        if name == f'fold {k - 1} model, 0.5':  # the single folds' mean under them
            mean_single = {c: float(np.mean([s.per_class[c] for s in singles]))
                           for c in classes}
            lines.append(row('single fold, mean of the folds', mean_single,
                             float(np.mean([s.mean for s in singles]))))
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    if _common.real_data_absent(args.data):
        return 0
    roots = split_patients(args.data, args.heldback_patients, args.work_dir) \
        if args.heldback_patients else None
    cmd = cv_command(args, roots)
    print('$ ' + ' '.join(cmd), flush=True)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT)
    if proc.returncode != 0:
        print(f'tools/cv.py failed (exit status {proc.returncode})', file=sys.stderr)
        return proc.returncode
    minutes = (time.perf_counter() - start) / 60
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_minutes = (usage.ru_utime + usage.ru_stime) / 60
    summary = json.load(open(osp.join(cv_dir(args), 'summary.json')))
    print(f'=== real-data benchmark: {summary["num_folds"]} folds, '
          f'{2 if args.tiny else args.iters} iterations each, {minutes:.1f} min wall, '
          f'{cpu_minutes:.1f} CPU-min (this call; a resumed run counts only its rest) ===')
    print(report(summary))
    if roots:
        print(heldback_report(summary, cv_dir(args), roots['heldback'],
                              args.heldback_patients))
    else:
        print('single fold vs K-fold ensemble: n/a (no labelled images outside the pool; '
              'the withheld half is scored blind; --heldback-patients sets some aside)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
