"""Stage 3, out-of-fold probabilities: each fold model predicts its validation images
into ``fold<k>/val_probs/``; the folds merge into ``oof_probs/``.

A fold's ``val_probs`` records its prediction source (:func:`~.predict.prediction_source`:
checkpoint fingerprint, images, TTA) and is reused for the same source; with TTA chosen
per class the candidates' folders are (:mod:`.decisions`). The merge is cheap and redone
every run: every pool image exactly once, or the run stops.
"""
from __future__ import annotations

import os.path as osp
from typing import Dict, List, Sequence, Tuple

import numpy as np
from tqdm import tqdm

from ...io.probs import ProbFolder, ProbFolderWriter
from ...training.stages import owned_output
from ...utils.errors import DataError
from .decisions import predict_oof_candidates
from .folds import fold_checkpoint
from .pool import config_task
from .predict import predict_folder, prediction_source
from .run import TOOL, CVRun
from .summary import CVSummary, FoldSummary


def _predict_fold(run: CVRun, k: int) -> Tuple[FoldSummary, dict]:
    """Fold ``k``'s validation probabilities (all TTA candidates with a per-class TTA
    plan); returns the fold's summary and its prediction source."""
    pool, fold_dir = run.pool, run.fold_dir(k)
    ckpt = fold_checkpoint(run, k)
    val_rel = [pool.images[i] for i in np.flatnonzero(run.fold_of_image == k)]
    out = osp.join(fold_dir, 'val_probs')
    source = prediction_source(run.config, ckpt, pool.img_dir, val_rel, run.tta, fold=k)
    run.log(f'fold {k}: predicting its {len(val_rel)} validation images')
    if run.plan is not None:
        predict_oof_candidates(run.config, ckpt, fold_dir, pool.img_dir, val_rel, run.plan,
                               source, run.device, run.cfg_options, run.progress, run.log,
                               run.manifest)
    else:
        predict_folder(run.config, ckpt, pool.img_dir, val_rel, out, source, run.device,
                       run.tta, run.cfg_options, run.progress, run.log, run.manifest)
    return FoldSummary(k, int((run.fold_of_image != k).sum()), len(val_rel), fold_dir,
                       ckpt, out), source


def predict_validation(run: CVRun, split_dir: str) -> Tuple[CVSummary, List[dict]]:
    """Every chosen fold's validation probabilities; returns the run's summary so far
    and the folds' prediction sources (a run of some folds stops after this stage)."""
    predicted = [_predict_fold(run, k) for k in run.chosen]
    metric = 'IoU' if config_task(run.cfg) == 'multi-class' else 'Dice'
    summary = CVSummary(run.work_dir, run.config, run.num_folds, metric,
                        [f for f, _ in predicted])
    summary.files['splits'] = split_dir
    if not run.complete:
        run.log(f'folds {",".join(map(str, run.chosen))} of {run.num_folds} done; '
                'out-of-fold tuning and the test predictions need every fold')
    return summary, [source for _, source in predicted]


def merge_oof(fold_dirs: Sequence[str], out_dir: str, expected: Sequence[str],
              progress: bool = True) -> ProbFolder:
    """One probability folder of the folds' validation predictions: every key of
    ``expected`` exactly once.

    Raises:
        DataError: an image predicted by two folds, one no fold predicted, or one that
            is not in ``expected``.
    """
    folders = [ProbFolder(d) for d in fold_dirs]
    seen: Dict[str, str] = {}
    for folder in folders:
        for key in folder.keys():
            if key in seen:
                raise DataError(f'{folder.root}: image {key} is also predicted in {seen[key]}'
                                '; out-of-fold probabilities need each image once')
            seen[key] = folder.root
    wanted = set(expected)
    extra = sorted(set(seen) - wanted)
    if extra:
        raise DataError(f'{seen[extra[0]]}: image {extra[0]} is not in the training pool')
    missing = sorted(wanted - set(seen))
    if missing:
        raise DataError(f'{out_dir}: no fold predicted image {missing[0]} ({len(missing)} '
                        f'of {len(wanted)} missing); out-of-fold tuning needs every image')
    first = folders[0]
    with ProbFolderWriter(out_dir, first.classes, first.task, dtype=first.dtype or 'uint8',
                          source=dict(out_of_fold=[osp.abspath(f.root) for f in folders]),
                          force=True, tool=TOOL) as writer:
        for folder in folders:
            for key in tqdm(folder.keys(), desc=f'OOF {osp.basename(osp.dirname(folder.root))}',
                            unit='img', disable=not progress):
                probs, meta = folder.read(key, cropped=True)
                writer.write(probs, meta.img_path, meta.ori_shape, source=meta.source,
                             img_sha256=meta.img_sha256)
        writer.commit()
    return ProbFolder(out_dir)


def merge_stage(run: CVRun, summary: CVSummary) -> ProbFolder:
    """Merge the folds' ``val_probs`` into ``oof_probs/`` (recorded in ``summary``)."""
    oof_dir = osp.join(run.work_dir, 'oof_probs')
    with owned_output(run.manifest, oof_dir):
        oof = merge_oof([run.fold_dir(k) + '/val_probs' for k in run.chosen], oof_dir,
                        run.pool.keys, run.progress)
    summary.oof_probs = oof_dir
    summary.files['oof_probs'] = oof_dir
    return oof
