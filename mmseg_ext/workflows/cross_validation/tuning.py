"""Stage 4, scores and tuning: the OOF folder scored with the data set's metric and,
multi-label, per-class thresholds and component clean-up chosen on it.

Multi-label: the competition Dice per class (mean over images) at 0.5, then per-class
thresholds (:class:`~mmseg_ext.postprocessing.thresholds.DiceSweep`) and component
clean-up (:mod:`~mmseg_ext.postprocessing.component_tuning`): each fold model's own
thresholds (the fold vote calibrates each model by them) and pooled ones (for a single
model), with the OOF decisions
(:mod:`.decisions`: TTA per class, collapsed folds). Multi-class: IoU per class from one
confusion matrix. The settings go to ``tuned/*.json`` (what ``tools/make_submission.py``
reads); this stage is cheap and redone every run.
"""
from __future__ import annotations

import copy
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from tqdm import tqdm

from ...inference.probmaps import cropped_class_mask, label_map, searched_threshold, threshold_level
from ...io.atomic import atomic_write_text
from ...io.ownership import Manifest
from ...io.paths import image_key
from ...io.probs import ProbFolder
from ...postprocessing.component_tuning import CV_CONNECTIVITY, ComponentSearch
from ...postprocessing.thresholds import DiceSweep, class_levels
from ...training.stages import owned_output
from ...utils.errors import ConfigError, DataError
from ...utils.per_class import per_class_document
from ...utils.readers import dumps_json
from .decisions import CANDIDATE_DIR, choose_oof_tta, collapsed_names, oof_decisions
from .pool import build_dataset, config_task, plain_dict
from .run import CVRun
from .summary import CVSummary, nan_mean

#: the range of thresholds cv searches per class
SEARCH = (0.05, 0.95)


@dataclass
class TuningResult:
    """The OOF scores per class before and after tuning, each fold's score, the tuned
    settings per class, the files they are written to (name -> path) and, multi-label,
    each fold's own thresholds (``fold_thresholds[k]``: class -> threshold, with which
    the fold vote calibrates fold ``k``'s model).

    ``thresholds`` are tuned on every OOF image (for one model's probabilities: what
    ``tools/export.py --cv-dir`` and a user thresholding a single model take).
    """
    metric: str
    oof_before: Dict[str, float]
    oof_after: Dict[str, float]
    fold_scores: List[float]
    thresholds: Dict[str, float] = field(default_factory=dict)
    fold_thresholds: List[Dict[str, float]] = field(default_factory=list)
    min_area: Dict[str, int] = field(default_factory=dict)
    keep_largest: Dict[str, int] = field(default_factory=dict)
    files: Dict[str, str] = field(default_factory=dict)


def _threshold_sweeps(oof: ProbFolder, gt, fold_of: Dict[str, int], num_folds: int,
                      progress: bool) -> Tuple[List[DiceSweep], np.ndarray]:
    """One :class:`DiceSweep` per fold over its OOF images, and ``(K, C)`` counts of
    the fold's images whose ground truth contains each class."""
    sweeps = [DiceSweep(oof.classes) for _ in range(num_folds)]
    present = np.zeros((num_folds, len(oof.classes)), np.int64)
    for key in tqdm(oof.keys(), desc='OOF thresholds', unit='img', disable=not progress):
        probs, meta = oof.read(key, cropped=True)
        target = gt.load(key, meta.ori_shape, meta.img_sha256)
        for c in range(len(oof.classes)):
            sweeps[fold_of[key]].update(c, class_levels(probs, c, meta.ori_shape), target[c])
            present[fold_of[key], c] += bool(target[c].any())
    return sweeps, present


def _best_thresholds(sweep: DiceSweep, present: np.ndarray) -> Dict[str, float]:
    """Per class the threshold of the best mean Dice of ``sweep`` within
    :data:`SEARCH` (ties to the one nearest 0.5). A class that none of the images
    contains (``present[c] == 0``) keeps 0.5: images without it say how a model
    over-predicts, not where it finds the class, and a threshold raised on them would
    hide it where it is."""
    half, lo, hi = threshold_level(0.5), threshold_level(SEARCH[0]), threshold_level(SEARCH[1])
    best = sweep.best_levels(lo, hi, prefer=half)
    return {cls: searched_threshold(int(b), *SEARCH) if present[c] > 0 else 0.5
            for c, (cls, b) in enumerate(zip(sweep.classes, best))}


def tune_multilabel(oof: ProbFolder, gt, fold_of: Dict[str, int], num_folds: int,
                    connectivity: int = 8, progress: bool = True) -> TuningResult:
    """Competition Dice of the OOF folder at 0.5; per-class thresholds of every fold's
    model on its own OOF images (and pooled over the folds, for a single model); then
    per-class component clean-up chosen on the OOF masks at their fold's thresholds."""
    classes = oof.classes
    sweeps, present = _threshold_sweeps(oof, gt, fold_of, num_folds, progress)
    total = DiceSweep.merged(sweeps)
    half = threshold_level(0.5)
    per_fold = [_best_thresholds(s, p) for s, p in zip(sweeps, present)]
    before = {c: float(total.mean_dice()[i, half]) for i, c in enumerate(classes)}
    fold_scores = [float(np.mean(s.mean_dice()[:, half])) for s in sweeps]
    search = ComponentSearch(classes, connectivity)
    for key in tqdm(oof.keys(), desc='OOF components', unit='img', disable=not progress):
        probs, meta = oof.read(key, cropped=True)
        target = gt.load(key, meta.ori_shape, meta.img_sha256)
        fold = fold_of[key]
        for c, name in enumerate(classes):
            mask = cropped_class_mask(probs, c, meta.ori_shape, per_fold[fold][name])
            search.update(name, mask, target[c])
    choices = search.choose()
    return TuningResult(
        'Dice', before, {c: choices[c].dice_after for c in classes}, fold_scores,
        thresholds=_best_thresholds(total, present.sum(0)), fold_thresholds=per_fold,
        min_area={c: v.min_area for c, v in choices.items() if v.min_area},
        keep_largest={c: v.keep_largest for c, v in choices.items() if v.keep_largest})


def _iou(confusion: np.ndarray) -> np.ndarray:
    inter = np.diag(confusion).astype(np.float64)
    union = confusion.sum(0) + confusion.sum(1) - inter
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.where(union > 0, inter / np.maximum(union, 1), np.nan)


def score_multiclass(oof: ProbFolder, gt_maps: Callable[[str], np.ndarray],
                     fold_of: Dict[str, int], num_folds: int, ignore_index: int = 255,
                     progress: bool = True) -> TuningResult:
    """IoU per class of the OOF argmax maps (one confusion matrix over the pool, as
    mmseg's ``IoUMetric``); the fold scores are each fold's mean IoU."""
    n = len(oof.classes)
    confusion = np.zeros((num_folds, n, n), np.int64)
    for key in tqdm(oof.keys(), desc='OOF scores', unit='img', disable=not progress):
        probs, meta = oof.read(key)
        gt = gt_maps(key)
        if gt.shape != tuple(meta.ori_shape):
            raise DataError(f'{oof.path(key)}: ground truth is {gt.shape[0]}x{gt.shape[1]}, '
                            f'the image {meta.ori_shape[0]}x{meta.ori_shape[1]}')
        pred = label_map(probs, meta.ori_shape)
        valid = (gt != ignore_index) & (gt < n)
        confusion[fold_of[key]] += np.bincount(
            gt[valid].astype(np.int64) * n + pred[valid], minlength=n * n).reshape(n, n)
    iou = _iou(confusion.sum(0))
    per_class = {c: float(v) for c, v in zip(oof.classes, iou)}
    folds = [nan_mean(_iou(m)) for m in confusion]
    return TuningResult('IoU', per_class, dict(per_class), folds)


def dataset_gt_maps(dataset_cfg: dict, pipeline: Sequence[dict], img_dir: str
                    ) -> Callable[[str], np.ndarray]:
    """``key -> (H, W) uint8`` label map, as the data set's annotation loaders give it
    (the loaders of ``pipeline``: label PNGs with the data set's ``reduce_zero_label``
    and label map, or painted COCO annotations)."""
    loaders = [copy.deepcopy(t) for t in pipeline
               if 'annotation' in str(t.get('type', '')).lower()]
    if not loaders:
        raise ConfigError('the val pipeline loads no annotations (no *Annotations '
                          'transform); nothing to score the folds against')
    dataset = build_dataset(dict(dataset_cfg, pipeline=loaders))
    index = {image_key(osp.relpath(dataset.get_data_info(i)['img_path'], img_dir)
                       .replace(os.sep, '/')): i for i in range(len(dataset))}

    def load(key: str) -> np.ndarray:
        if key not in index:
            raise DataError(f'{img_dir}: no ground truth for image {key}')
        return np.asarray(dataset[index[key]]['gt_seg_map'])
    return load


def _write_json(path: str, value, manifest: Optional[Manifest] = None) -> str:
    with owned_output(manifest, path):
        atomic_write_text(path, dumps_json(value, indent=2) + '\n', force=True)
    return path


def oof_ground_truth(run: CVRun, first: str):
    """The pool's multi-label ground truth (:class:`~mmseg_ext.io.ground_truth.GroundTruth`)
    with the classes of ``first``, a fold folder; None for a multi-class config."""
    if config_task(run.cfg) != 'multi-label':
        return None
    probs = osp.join(first, 'val_probs') if run.plan is None else \
        osp.join(first, CANDIDATE_DIR, 'none')
    return pool_ground_truth(run.pool, ProbFolder(probs).classes)


def pool_ground_truth(pool, classes: Sequence[str]):
    """The pool's labels as :class:`~mmseg_ext.io.ground_truth.GroundTruth` (its checks
    run here: a root in or holding a pseudo-label folder is refused)."""
    from ...io.ground_truth import GroundTruth
    return GroundTruth(pool.dataset.get('data_root') or osp.dirname(pool.img_dir),
                       classes, json_dir=pool.seg_dir)


def choose_views(run: CVRun, gt, sources: Sequence[dict]):
    """With a per-class TTA plan, the OOF choice of TTA per class and each candidate's
    scores (each fold's ``val_probs`` written from the chosen candidates);
    ``(None, None)`` without one."""
    if run.plan is None:
        return None, None
    return choose_oof_tta([run.fold_dir(k) for k in run.chosen], run.plan, gt,
                          run.fold_of, run.num_folds, sources, run.progress, run.log,
                          run.manifest)


def _decide(run: CVRun, summary: CVSummary, gt, scores) -> None:
    """The OOF decisions into ``summary``; each collapsed fold logged."""
    summary.decisions = oof_decisions(summary.oof_probs, gt, run.fold_of, run.num_folds,
                                      run.plan, scores, run.progress)
    for f in summary.folds:
        f.collapsed = collapsed_names(summary.decisions, f.fold)
        if f.collapsed:
            run.log(f'fold {f.fold}: collapsed on {", ".join(f.collapsed)} (Dice < '
                    '0.05 where its validation images contain it, the other folds '
                    '> 0.5): left out of that class\'s test-time fold vote')


def _score(run: CVRun, summary: CVSummary, oof: ProbFolder, gt, scores) -> TuningResult:
    if oof.task != 'multi-label':
        gt_maps = dataset_gt_maps(run.pool.dataset,
                                  plain_dict(run.cfg.val_dataloader.dataset)['pipeline'],
                                  run.pool.img_dir)
        return score_multiclass(oof, gt_maps, run.fold_of, run.num_folds,
                                int(run.pool.dataset.get('ignore_index', 255)), run.progress)
    _decide(run, summary, gt, scores)
    result = tune_multilabel(oof, gt, run.fold_of, run.num_folds, CV_CONNECTIVITY,
                             progress=run.progress)
    tuned = osp.join(run.work_dir, 'tuned')
    # each file names its setting, so one is not taken for another (per_class_document)
    result.files = {
        name: _write_json(osp.join(tuned, f'{name}.json'),
                          per_class_document(getattr(result, name), name), run.manifest)
        for name in ('thresholds', 'min_area', 'keep_largest')}
    result.files['fold_thresholds'] = _write_json(
        osp.join(tuned, 'fold_thresholds.json'),
        per_class_document({f'fold{k}': t for k, t in enumerate(result.fold_thresholds)},
                           'fold_thresholds'), run.manifest)
    return result


def tune_stage(run: CVRun, summary: CVSummary, oof: ProbFolder, gt, scores) -> TuningResult:
    """Score (multi-label: decide and tune) the OOF folder; the result into ``summary``."""
    result = _score(run, summary, oof, gt, scores)
    summary.metric = result.metric
    summary.oof_before, summary.oof_after = result.oof_before, result.oof_after
    summary.thresholds, summary.min_area = result.thresholds, result.min_area
    summary.fold_thresholds = result.fold_thresholds
    summary.keep_largest = result.keep_largest
    for f, score in zip(summary.folds, result.fold_scores):
        f.score = score
    summary.files.update({f'tuned {k}': v for k, v in result.files.items()})
    return result
