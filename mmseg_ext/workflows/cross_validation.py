"""K-fold cross-validation to a checked submission (``tools/cv.py``).

Stages, each written under ``work_dir`` and skipped when a run of the same command
finished it before (the record is ``cv.json``; another command there is refused):

1. **splits** (``splits/``): the labelled pool is the config's
   ``train_dataloader.dataset`` without its fold selection. Its images are split with
   the fold algorithm of its data set type (hand-bone: grouped by patient; COCO:
   stratified by category presence; image/label folders: stratified by the label
   values present), or read from the split files of ``tools/kfold.py``.
2. **folds** (``fold<k>/``): each fold trains the config with the stock runner on the
   other folds and validates on fold ``k`` (the config's val pipeline and evaluator);
   ``done.json`` marks a finished fold. Folds run in this process one after the other,
   or as ``tools/train.py`` / ``tools/dist_train.sh`` processes, several at once on
   several GPUs (:func:`run_commands`).
3. **out-of-fold probabilities** (``fold<k>/val_probs`` merged into ``oof_probs``):
   every pool image predicted by the one model that never saw it; an image missing
   or predicted twice stops the run.
4. **scores and tuning** (``tuned/``): the OOF folder is scored with the data set's
   metric: multi-label, the competition Dice per class (mean over images) at 0.5,
   then with per-class thresholds (:class:`~.thresholds.DiceSweep`) and per-class
   component clean-up (:mod:`.component_tuning`) chosen on the OOF images only;
   multi-class, IoU per class from one confusion matrix. The settings are written as
   the JSON files ``tools/make_submission.py`` reads.
5. **test** (``test/``, with ``test_dir``): every fold model predicts the test
   images, the fold probabilities are averaged (:func:`~.ensemble.soft_vote`), the
   tuned settings are applied and the submission CSV is written and checked.

``summary.json`` holds the scores and the paths of everything written.

The work directory is the tool's alone (:mod:`mmseg_ext.io.ownership`): it is locked
while a run uses it, every output is listed in its manifest as it is written, ``force``
removes only listed outputs that are unchanged, and a folder the tool did not make, or
one that is, holds or lies inside an input, is refused. Reused results prove what they
are: a fold's ``done.json`` its fold, training list and checkpoint content
(:func:`~.stages.stage_result`), a reused probability folder the checkpoint's
fingerprint and the names, sizes and modification times of its images.
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import os.path as osp
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.config import Config
from tqdm import tqdm

from ..inference.probmaps import cropped_class_mask, label_map, level_threshold, threshold_level
from ..io.atomic import atomic_write_text
from ..io.images import IMG_SUFFIXES, list_images, skipped_note
from ..io.ownership import Manifest, files_stamp, fingerprint, owned_work_dir
from ..io.paths import check_output_apart
from ..io.probs import ProbFolder, ProbFolderWriter, image_key
from ..postprocessing.component_tuning import ComponentSearch
from ..postprocessing.oof_decisions import OOFDecisions, decision_lines
from ..postprocessing.thresholds import DiceSweep, class_levels
from ..training.stages import (
    check_run_record,
    last_checkpoint,
    mark_stage_done,
    owned_output,
    resumable,
    same_prob_source,
    stage_result,
    write_run_record,
)
from ..utils.errors import ConfigError, DataError, InvalidArgumentError, StageError
from ..utils.readers import read_lines
from .cv_decisions import CANDIDATE_DIR

RUN_RECORD = 'cv.json'
#: the tool named in the work directory's manifest
TOOL = 'tools/cv.py'
#: data set wrappers the pool cannot be (CV splits one plain labelled set)
WRAPPERS = ('ConcatDataset', 'RepeatDataset', 'ClassBalancedDataset')
#: the competition format of the submission, by the pool's data set type
FORMAT_OF = {'HandBoneDataset': 'handbone', 'CocoSemanticDataset': 'trash',
             'PortStructuresDataset': 'port'}

Log = Callable[[str], None]


# ------------------------------------------------------------------------- the pool
@dataclass
class Pool:
    """The labelled images cross-validation splits.

    Attributes:
        kind: ``'handbone'`` (grouped by patient), ``'coco'`` (stratified by category
            presence) or ``'folder'`` (stratified by label values).
        dataset: the pool's data set config (fold selection removed).
        img_dir: absolute image folder; ``images`` are relative to it.
        names: the split-file line of each image (image stem, or COCO ``file_name``).
        split_key: the data set argument a split file goes to.
    """
    kind: str
    dataset: dict
    dataset_type: str
    img_dir: str
    images: List[str]
    names: List[str]
    groups: Optional[List[str]]
    presence: Optional[np.ndarray]
    split_key: str
    seg_dir: Optional[str] = None

    @property
    def keys(self) -> List[str]:
        return [image_key(rel) for rel in self.images]


def _plain_dict(node) -> dict:
    return copy.deepcopy(node.to_dict() if hasattr(node, 'to_dict') else dict(node))


def pool_dataset(cfg: Config, config: str) -> dict:
    """The config's training data set without its fold selection (a plain dict)."""
    loader = cfg.get('train_dataloader') or {}
    dataset = loader.get('dataset')
    if not dataset:
        raise ConfigError(f'{config}: no train_dataloader.dataset to cross-validate')
    dataset = _plain_dict(dataset)
    if dataset.get('type') in WRAPPERS:
        raise ConfigError(f'{config}: train_dataloader.dataset is a {dataset["type"]}; '
                          'cross-validation splits one plain labelled data set')
    if dataset.get('type') == 'HandBoneDataset':
        dataset['fold'] = None
        dataset.pop('subset', None)
    dataset.pop('indices', None)
    return dataset


def check_val_split(cfg: Config, config: str) -> None:
    """Each fold validates with the config's val pipeline and evaluator."""
    loader = cfg.get('val_dataloader') or {}
    if not (loader.get('dataset') or {}).get('pipeline') or not cfg.get('val_evaluator') \
            or not cfg.get('val_cfg'):
        raise ConfigError(f'{config}: no val split (val_dataloader with a dataset pipeline, '
                          'val_evaluator and val_cfg); cross-validation validates each '
                          'fold with them')


def build_dataset(dataset: dict):
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS
    init_default_scope('mmseg')
    return DATASETS.build(copy.deepcopy(dataset))


def read_pool(cfg: Config, config: str, group_regex: Optional[str] = None,
              progress: bool = True) -> Pool:
    """List the pool's images with what their fold algorithm needs."""
    from ..preparation.kfold import groups_from_regex, label_presence
    dataset_cfg = pool_dataset(cfg, config)
    kind_name = dataset_cfg.get('type', '')
    dataset = build_dataset(dict(dataset_cfg, pipeline=[]))
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    if not infos:
        raise DataError(f'{config}: the training data set lists no images')
    img_dir = dataset.data_prefix.get('img_path', '') or dataset.data_root or ''
    images = [osp.relpath(info['img_path'], img_dir).replace(os.sep, '/') for info in infos]
    presence, groups, seg_dir = None, None, dataset.data_prefix.get('seg_map_path')
    if kind_name == 'HandBoneDataset':
        kind, split_key = 'handbone', 'ann_file'
        names = [rel[:-len(dataset.img_suffix)] if rel.endswith(dataset.img_suffix)
                 else image_key(rel) for rel in images]
        groups = [info.get('patient', '') for info in infos]
    elif kind_name == 'CocoSemanticDataset':
        kind, split_key = 'coco', 'split_file'
        names = [info['file_name'] for info in infos]
        num_classes = len(dataset.metainfo['classes'])
        presence = np.zeros((len(infos), num_classes), bool)
        for i, info in enumerate(infos):
            for ann in info.get('coco_anns') or []:
                if 0 <= int(ann['label']) < num_classes:
                    presence[i, int(ann['label'])] = True
    else:
        kind, split_key = 'folder', 'ann_file'
        suffix = getattr(dataset, 'img_suffix', '')
        names = [rel[:-len(suffix)] if suffix and rel.endswith(suffix) else image_key(rel)
                 for rel in images]
        seg_paths = [info.get('seg_map_path') for info in infos]
        if all(seg_paths):
            presence, _ = label_presence(seg_paths, getattr(dataset, 'ignore_index', 255),
                                         progress)
    if group_regex:
        groups = groups_from_regex(names, group_regex)
    return Pool(kind, dataset_cfg, kind_name, osp.abspath(img_dir), images, names, groups,
                presence, split_key, seg_dir)


# ------------------------------------------------------------------------- the folds
def make_pool_folds(pool: Pool, num_folds: int, seed: int, source: str) -> np.ndarray:
    """Fold per pool image with the fold algorithm of its kind."""
    from ..datasets.splits import make_folds
    groups = pool.groups
    if groups is not None and len(set(groups)) < num_folds:
        raise DataError(f'{source}: {num_folds} folds need at least {num_folds} groups; '
                        f'the pool has {len(set(groups))} '
                        f'({"patients" if pool.kind == "handbone" else "groups"})')
    if groups is None and len(pool.images) < num_folds:
        raise DataError(f'{source}: {num_folds} folds need at least {num_folds} images; '
                        f'the pool has {len(pool.images)}')
    try:
        return make_folds(len(pool.images), num_folds, seed, pool.presence, groups)
    except ValueError as exc:
        raise DataError(f'{source}: {exc}') from None


def _split_lines(path: str) -> List[str]:
    if path.endswith('.json'):
        from ..datasets.coco_index import load_coco_json
        return [img['file_name'] for img in load_coco_json(path)['images']]
    return [line for _, line in read_lines(path, 'split file', comments=True)]


def read_pool_folds(pool: Pool, splits_dir: str, num_folds: int) -> np.ndarray:
    """Folds from ``val_fold{j}.txt`` (or ``.json``) files: every pool image in exactly
    one validation fold; a ``train_fold{j}`` file, when present, must hold the rest."""
    index = {name: i for i, name in enumerate(pool.names)}
    folds = np.full(len(pool.names), -1, np.int64)
    for j in range(num_folds):
        val = next((osp.join(splits_dir, f'val_fold{j}{ext}') for ext in ('.txt', '.json')
                    if osp.isfile(osp.join(splits_dir, f'val_fold{j}{ext}'))), None)
        if val is None:
            raise DataError(f'{splits_dir}: no val_fold{j}.txt (or .json) for fold {j} of '
                            f'{num_folds}')
        for name in _split_lines(val):
            if name not in index:
                raise DataError(f'{val}: {name} is not an image of the training data set')
            if folds[index[name]] >= 0:
                raise DataError(f'{val}: {name} is already in val_fold{folds[index[name]]}')
            folds[index[name]] = j
        if not (folds == j).any():
            raise DataError(f'{val}: no images; every fold needs validation images')
    missing = [pool.names[i] for i in np.flatnonzero(folds < 0)]
    if missing:
        raise DataError(f'{splits_dir}: {missing[0]} is in no val_fold file '
                        f'({len(missing)} of {len(pool.names)} images)')
    for j in range(num_folds):
        train = next((osp.join(splits_dir, f'train_fold{j}{ext}') for ext in ('.txt', '.json')
                      if osp.isfile(osp.join(splits_dir, f'train_fold{j}{ext}'))), None)
        if train is None:
            continue
        listed = set(_split_lines(train))
        expected = {pool.names[i] for i in np.flatnonzero(folds != j)}
        for name in sorted(listed - expected):
            raise DataError(f'{train}: {name} is ' + ('in val_fold' + str(j) if name in index
                                                      else 'not an image of the training '
                                                      'data set'))
        for name in sorted(expected - listed):
            raise DataError(f'{train}: {name} is missing (a train file holds every image '
                            f'outside val_fold{j})')
    return folds


def write_pool_splits(pool: Pool, folds: np.ndarray, out_dir: str, num_folds: int
                      ) -> List[str]:
    from ..preparation.kfold import write_list_splits
    return write_list_splits(out_dir, pool.names, folds, pool.groups, force=True,
                             num_folds=num_folds)


def fold_datasets(cfg: Config, pool: Pool, split_dir: str, k: int) -> Tuple[dict, dict]:
    """The train and val data set configs of fold ``k``."""
    train = dict(copy.deepcopy(pool.dataset),
                 pipeline=_plain_dict(cfg.train_dataloader.dataset)['pipeline'])
    val = dict(copy.deepcopy(pool.dataset),
               pipeline=_plain_dict(cfg.val_dataloader.dataset)['pipeline'])
    train[pool.split_key] = osp.abspath(osp.join(split_dir, f'train_fold{k}.txt'))
    val[pool.split_key] = osp.abspath(osp.join(split_dir, f'val_fold{k}.txt'))
    return train, val


def use_fold(cfg: Config, pool: Pool, split_dir: str, k: int) -> None:
    """Point ``cfg`` at fold ``k`` (in place): train on the other folds, validate and
    test on fold ``k`` with the val pipeline and evaluator."""
    train, val = fold_datasets(cfg, pool, split_dir, k)
    cfg.train_dataloader.dataset = train
    cfg.val_dataloader.dataset = val
    cfg.test_dataloader = copy.deepcopy(cfg.val_dataloader)
    cfg.test_evaluator = copy.deepcopy(cfg.val_evaluator)


# ------------------------------------------------------------------ running commands
@dataclass
class FoldCommand:
    """A fold's training as a command: ``argv`` run with ``env`` added, output to
    ``log``; ``devices`` is how many GPUs it takes."""
    fold: int
    argv: List[str]
    log: str
    devices: int = 1


def run_commands(commands: Sequence[FoldCommand], gpus: int, log: Log,
                 port_base: int = 29500) -> None:
    """Run the commands, as many at once as ``gpus`` GPUs hold (``gpus <= 1``: one
    after the other); each gets its own ``CUDA_VISIBLE_DEVICES`` and rendezvous port.

    Raises:
        StageError: a command failed (after the running ones finished); the message
            names the fold and its log.
    """
    free = list(range(max(gpus, 1)))
    too_big = [c for c in commands if c.devices > len(free)]
    if too_big:  # a caller's bug: cross_validate checks the request first
        raise ValueError(f'fold {too_big[0].fold} needs {too_big[0].devices} devices, '
                         f'{len(free)} exist')
    pending = list(commands)
    running: List[Tuple[FoldCommand, subprocess.Popen, List[int], object]] = []
    failed: List[Tuple[FoldCommand, int]] = []
    try:
        while pending or running:
            while pending and len(free) >= pending[0].devices and not failed:
                cmd = pending.pop(0)
                ids, free = free[:cmd.devices], free[cmd.devices:]
                # PYTHON: the launch scripts start this interpreter, not python from PATH
                env = dict(os.environ, PORT=str(port_base + ids[0]),
                           PYTHON=sys.executable or os.environ.get('PYTHON', 'python'))
                if gpus >= 1:
                    env['CUDA_VISIBLE_DEVICES'] = ','.join(map(str, ids))
                out = open(cmd.log, 'a', encoding='utf-8')
                log(f'fold {cmd.fold}: {" ".join(cmd.argv)} (log: {cmd.log})')
                proc = subprocess.Popen(cmd.argv, env=env, stdout=out,
                                        stderr=subprocess.STDOUT)
                running.append((cmd, proc, ids, out))
            if failed and not running:
                break
            finished = None
            while finished is None:
                for item in running:
                    if item[1].poll() is not None:
                        finished = item
                        break
                else:
                    time.sleep(0.2)
            running.remove(finished)
            cmd, proc, ids, out = finished
            out.close()
            free = sorted(free + ids)
            if proc.returncode != 0:
                failed.append((cmd, proc.returncode))
    finally:
        for _cmd, proc, _, out in running:  # interrupted: stop what still runs
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            out.close()
    if failed:
        cmd, code = failed[0]
        raise StageError(f'fold {cmd.fold}: training failed (exit status {code}); its log '
                         f'is {cmd.log}')


# --------------------------------------------------------------------- scoring
@dataclass
class ClassScores:
    """Per-class scores of one stage; ``mean`` over classes."""
    per_class: Dict[str, float]

    @property
    def mean(self) -> float:
        values = [v for v in self.per_class.values() if not np.isnan(v)]
        return float(np.mean(values)) if values else float('nan')


@dataclass
class TuningResult:
    metric: str
    oof_before: Dict[str, float]
    oof_after: Dict[str, float]
    fold_scores: List[float]
    thresholds: Dict[str, float] = field(default_factory=dict)
    min_area: Dict[str, int] = field(default_factory=dict)
    keep_largest: Dict[str, int] = field(default_factory=dict)
    files: Dict[str, str] = field(default_factory=dict)


def _mean(values) -> float:
    values = [v for v in values if not np.isnan(v)]
    return float(np.mean(values)) if values else float('nan')


def tune_multilabel(oof: ProbFolder, gt, fold_of: Dict[str, int], num_folds: int,
                    connectivity: int = 8, progress: bool = True) -> TuningResult:
    """Competition Dice of the OOF folder at 0.5, per-class thresholds, then per-class
    component clean-up at those thresholds, all chosen on the OOF images."""
    classes = oof.classes
    sweeps = [DiceSweep(classes) for _ in range(num_folds)]
    total = DiceSweep(classes)
    keys = oof.keys()
    for key in tqdm(keys, desc='OOF thresholds', unit='img', disable=not progress):
        probs, meta = oof.read(key, cropped=True)
        target = gt.load(key, meta.ori_shape)
        for c in range(len(classes)):
            sweeps[fold_of[key]].update(c, class_levels(probs, c, meta.ori_shape), target[c])
    for s in sweeps:
        total.dice_sum += s.dice_sum
        total.images += s.images
    half = threshold_level(0.5)
    best = total.best_levels(threshold_level(0.05), threshold_level(0.95), prefer=half)
    thresholds = {c: round(level_threshold(int(b)), 6) for c, b in zip(classes, best)}
    before = {c: float(total.mean_dice()[i, half]) for i, c in enumerate(classes)}
    fold_scores = [float(np.mean(s.mean_dice()[:, half])) for s in sweeps]
    search = ComponentSearch(classes, connectivity)
    for key in tqdm(keys, desc='OOF components', unit='img', disable=not progress):
        probs, meta = oof.read(key, cropped=True)
        target = gt.load(key, meta.ori_shape)
        for c, name in enumerate(classes):
            mask = cropped_class_mask(probs, c, meta.ori_shape, thresholds[name])
            search.update(name, mask, target[c])
    choices = search.choose()
    return TuningResult(
        'Dice', before, {c: choices[c].dice_after for c in classes}, fold_scores,
        thresholds=thresholds,
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
    folds = [_mean(_iou(m)) for m in confusion]
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


# ------------------------------------------------------------------------- the run
@dataclass
class FoldSummary:
    fold: int
    train_images: int
    val_images: int
    work_dir: str
    checkpoint: str
    val_probs: str
    score: float = float('nan')
    collapsed: List[str] = field(default_factory=list)


@dataclass
class CVSummary:
    work_dir: str
    config: str
    num_folds: int
    metric: str
    folds: List[FoldSummary]
    oof_probs: str = ''
    oof_before: Dict[str, float] = field(default_factory=dict)
    oof_after: Dict[str, float] = field(default_factory=dict)
    thresholds: Dict[str, float] = field(default_factory=dict)
    min_area: Dict[str, int] = field(default_factory=dict)
    keep_largest: Dict[str, int] = field(default_factory=dict)
    files: Dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    decisions: Optional[OOFDecisions] = None

    def table(self) -> str:
        """The per-fold and per-class scores as text."""
        lines = [f'{"fold":<6} {"train":>6} {"val":>5}  {self.metric}@default']
        for f in self.folds:
            score = '-' if np.isnan(f.score) else f'{f.score:.4f}'
            lines.append(f'{f.fold:<6} {f.train_images:>6} {f.val_images:>5}  {score}' +
                         (f'  collapsed: {", ".join(f.collapsed)}' if f.collapsed else ''))
        if self.oof_before:
            after = 'tuned' if self.metric == 'Dice' else ''
            width = max(12, max(len(c) for c in self.oof_before))
            lines.append('')
            lines.append(f'{"class":<{width}}  OOF {self.metric}' +
                         (f'  OOF {self.metric} {after}  threshold  keep  min_area'
                          if after else ''))
            for c, v in self.oof_before.items():
                row = f'{c:<{width}}  {v:>{4 + len(self.metric)}.4f}'
                if after:
                    row += (f'  {self.oof_after[c]:>{5 + len(self.metric) + len(after)}.4f}'
                            f'  {self.thresholds.get(c, 0.5):9.4f}  '
                            f'{self.keep_largest.get(c, 0):4d}  {self.min_area.get(c, 0):8d}')
                lines.append(row)
            row = f'{"mean":<{width}}  {_mean(self.oof_before.values()):>{4 + len(self.metric)}.4f}'
            if after:
                row += f'  {_mean(self.oof_after.values()):>{5 + len(self.metric) + len(after)}.4f}'
            lines.append(row)
        if self.decisions is not None and decision_lines(self.decisions):
            lines += [''] + decision_lines(self.decisions)
        if self.files:
            lines.append('')
            width = max(len(k) for k in self.files)
            lines += [f'{k:<{width}}  {v}' for k, v in self.files.items()]
        return '\n'.join(lines)


def prediction_source(config: str, checkpoint: str, img_dir: str,
                      images: Sequence[str], tta: bool, **extra) -> dict:
    """What a probability folder is the prediction of: the config, the checkpoint and
    its fingerprint, the images' names, sizes and modification times. A folder is
    reused only for the same source, so an image replaced in place under the same name
    (or a checkpoint rewritten under the same name) is predicted again.

    Raises:
        DataError: an image is gone.
    """
    try:
        stamp = files_stamp(img_dir, list(images))
    except OSError as exc:
        raise DataError(f'{exc.filename or img_dir}: cannot read the image '
                        f'({exc.strerror or exc})') from None
    return dict(config=osp.abspath(config), checkpoint=osp.abspath(checkpoint),
                checkpoint_stamp=checkpoint_stamp(checkpoint),
                images=hashlib.sha256('\n'.join(images).encode()).hexdigest()[:16],
                inputs=stamp, tta=tta, **extra)


def _predict(config: str, checkpoint: str, img_dir: str, images: Sequence[str],
             out_dir: str, source: dict, device: Optional[str], tta: bool,
             cfg_options: Optional[dict], progress: bool, log: Log,
             manifest: Optional[Manifest] = None) -> None:
    """Probabilities of ``images`` under ``img_dir`` into ``out_dir`` (kept when a
    finished folder of the same ``source`` is there; replaced only when it is the
    tool's, see :meth:`~mmseg_ext.io.ownership.Manifest.check_replaceable`)."""
    from ..inference.predictor import build_predictor, infer_folder, resolve_device
    with owned_output(manifest, out_dir):
        if same_prob_source(out_dir, source):
            log(f'{out_dir}: finished earlier')
            return
        if osp.isdir(out_dir):
            log(f'{out_dir}: made from other images or another model; predicting again')
        predictor = build_predictor(config, checkpoint, resolve_device(device),
                                    cfg_options=cfg_options, tta=tta)
        infer_folder(predictor, img_dir, out_dir, images=images, source=source,
                     force=True, progress=progress)


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
                          force=True) as writer:
        for folder in folders:
            for key in tqdm(folder.keys(), desc=f'OOF {osp.basename(osp.dirname(folder.root))}',
                            unit='img', disable=not progress):
                probs, meta = folder.read(key, cropped=True)
                writer.write(probs, meta.img_path, meta.ori_shape, source=meta.source)
        writer.commit()
    return ProbFolder(out_dir)


def clear_earlier_run(manifest: Manifest, log: Optional[Log] = None) -> None:
    """Remove what an earlier run listed as its own in the work dir (``force``): every
    listed output that is unchanged (folds' checkpoints, markers, logs and
    probabilities, the merged, tuned and test outputs). Nothing is removed by name:
    files the tool did not list stay.

    Raises:
        OutputError: a listed file changed since the tool wrote it (nothing removed).
    """
    removed = manifest.remove_all()
    if log is not None and removed:
        log(f'{manifest.work_dir}: removed {len(removed)} outputs of the earlier run')


def config_task(cfg: Config) -> str:
    """``'multi-label'`` when the config's segmentor is a multi-label one."""
    from mmseg.registry import MODELS
    try:
        cls = MODELS.get(cfg.model.get('type'))
    except (KeyError, TypeError):
        cls = None
    return 'multi-label' if getattr(cls, 'multi_label', False) else 'multi-class'


#: the test settings a work dir's ``submission.csv`` was written for
TEST_RECORD = osp.join('test', 'settings.json')


def check_test_inputs(cfg: Config, config: str, test_dir: str, fmt: str,
                      test_json: Optional[str], sample: Optional[str],
                      log: Log) -> Tuple[List[str], dict]:
    """Everything the test stage will need, checked before any fold trains; returns the
    test images (paths under ``test_dir``) and the settings the test stage records.

    Raises:
        InvalidArgumentError: a format for the other task, or row sources it does not use.
        DataError: no test folder or images; a ``test_json`` image that is not there.
    The run record of the test stage (:data:`TEST_RECORD`) is checked by
    :func:`cross_validate` once it holds the work dir.
    """
    from ..io.submission import check_row_sources, get_format, read_test_json
    spec = get_format(fmt)
    check_row_sources(spec, test_json, sample)
    task = config_task(cfg)
    if spec.task != task:
        raise InvalidArgumentError('fmt', f'the {fmt} format needs {spec.task} '
                                   f'probabilities; {config} predicts {task} ones')
    if not osp.isdir(test_dir):
        raise DataError(f'{test_dir}: test image folder not found')
    if test_json is not None:  # exactly the images the submission lists, in its order
        images = read_test_json(test_json)
        absent = [n for n in images if not osp.isfile(osp.join(test_dir, n))]
        if absent:
            raise DataError(f'{osp.join(test_dir, absent[0])}: image of {test_json} not '
                            f'found ({len(absent)} of {len(images)} absent)')
    else:
        skipped: List[str] = []
        images = list_images(test_dir, IMG_SUFFIXES, skipped)
        note = skipped_note(test_dir, skipped, IMG_SUFFIXES)
        if not images:
            raise DataError(f'{test_dir}: no images ({", ".join(IMG_SUFFIXES)})'
                            + (f'; {note}' if note else ''))
        if note:
            log(note)
    settings = dict(test_dir=osp.abspath(test_dir), fmt=fmt,
                    test_json=osp.abspath(test_json) if test_json else None,
                    sample=osp.abspath(sample) if sample else None,
                    images=hashlib.sha256('\n'.join(images).encode()).hexdigest()[:16])
    return images, settings


def run_inputs(config: str, cfg: Config, pool: Pool, splits: Optional[str],
               test_dir: Optional[str], test_json: Optional[str],
               sample: Optional[str]) -> List[str]:
    """Every input a run reads: the config, the pool's data root, image, label and
    split files, the train/val data roots, ``splits``, the test images and row sources.
    The work dir may be none of them, hold none and lie inside none."""
    inputs = [config, pool.img_dir, splits, test_dir, test_json, sample]
    roots = [pool.dataset.get('data_root')]
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset = (cfg.get(loader) or {}).get('dataset') or {}
        roots.append(dataset.get('data_root'))
    inputs += [r for r in roots if isinstance(r, str) and r]
    root = pool.dataset.get('data_root') or ''
    for key in ('ann_file', 'split_file'):
        value = pool.dataset.get(key)
        if isinstance(value, str) and value:
            inputs.append(osp.join(root, value))
    if pool.seg_dir:
        inputs.append(osp.join(root, pool.seg_dir) if not osp.isabs(pool.seg_dir)
                      else pool.seg_dir)
    return [i for i in inputs if i]


def checkpoint_stamp(path: str) -> str:
    """The checkpoint's fingerprint (:func:`~mmseg_ext.io.ownership.fingerprint`): a
    retrained or replaced model under the same file name is another model."""
    return fingerprint(path)


def fold_claims(pool: Pool, fold_of_image: np.ndarray, k: int, num_folds: int) -> dict:
    """What fold ``k``'s model must have been trained for: the fold, K, and the hash of
    its training list (the pool names outside fold ``k``)."""
    train = [pool.names[i] for i in np.flatnonzero(fold_of_image != k)]
    return dict(fold=k, num_folds=num_folds,
                train_list=hashlib.sha256('\n'.join(train).encode()).hexdigest()[:16])


def _write_json(path: str, value, manifest: Optional[Manifest] = None) -> str:
    with owned_output(manifest, path):
        atomic_write_text(path, json.dumps(value, indent=2) + '\n', force=True)
    return path


def cross_validate(config: str, num_folds: int, work_dir: str,
                   folds: Optional[Sequence[int]] = None, splits: Optional[str] = None,
                   seed: int = 0, group_regex: Optional[str] = None, tta: bool = False,
                   test_dir: Optional[str] = None, fmt: Optional[str] = None,
                   test_json: Optional[str] = None, sample: Optional[str] = None,
                   gpus: int = 0, ranks_per_fold: int = 0,
                   fold_command: Optional[Callable[[str, str, int, bool], List[str]]] = None,
                   device: Optional[str] = None, cfg_options: Optional[dict] = None,
                   force: bool = False, progress: bool = True,
                   log: Optional[Log] = None) -> CVSummary:
    """Run the stages of the module doc; return their scores and outputs.

    Args:
        config: the config file (its train set is the pool, its val pipeline and
            evaluator validate the folds).
        num_folds: K >= 2.
        work_dir: where everything is written.
        folds: train (and predict with) only these folds; the OOF stages need all.
        splits: a folder of ``tools/kfold.py`` split files to use instead of new folds.
        seed, group_regex: fold assignment (``group_regex`` groups images by the
            first capture group of a regex on the split name instead of by patient).
        tta: predict with the config's ``tta_pipeline``.
        test_dir: the test images; writes the fold ensemble's submission.
        fmt, test_json, sample: the submission format (default: by the data set type)
            and its row sources (:func:`~.submission.make_submission`).
        gpus: GPUs to spread the folds over (one fold per GPU at once). ``<= 1``, or
            no CUDA: folds train in this process one after the other.
        ranks_per_fold: train each fold with this many ranks (``fold_command`` gets it).
        fold_command: ``(fold config file, fold work dir, ranks, resume) -> argv`` of a
            fold's training in another process (the tool passes ``tools/train.py`` or
            ``tools/dist_train.sh``); needed when ``gpus > 1`` or ``ranks_per_fold``.
        device: inference device (default: the first GPU, else the CPU).
        cfg_options: overrides of the config.
        force: start again in a work dir of another run: the outputs the earlier run
            listed as its own (and left unchanged) are removed first.
        log: receives one line per stage (default: mmengine's ``print_log``).

    Raises:
        OutputError: the work dir is in use by another run, was not made by this tool
            (content without its manifest), or ``force`` met an output that changed
            since this tool wrote it.
        InvalidArgumentError: of ``work_dir``: it is, holds or lies inside an input.
        DataError: a fold's ``done.json`` that does not prove its fold, training list
            and checkpoint content.
    """
    from ..config.loading import check_runner_path, config_hash, load_config
    check_runner_path(work_dir, 'work_dir')
    if log is None:
        from mmengine.logging import print_log

        def log(message: str) -> None:
            print_log(message, logger='current')
    start = time.perf_counter()
    if num_folds < 2:
        raise InvalidArgumentError('num_folds', f'must be >= 2, got {num_folds}')
    # every fold is listed only once the pool has shown that K folds fit (a huge K must
    # be one line, not a list of K fold numbers)
    chosen = None if folds is None else sorted(set(folds))
    bad = [k for k in chosen or () if not 0 <= k < num_folds]
    if bad:
        raise InvalidArgumentError('folds', f'{bad[0]} is not a fold of 0..{num_folds - 1}')
    if ranks_per_fold < 0 or gpus < 0:
        raise InvalidArgumentError('gpus' if gpus < 0 else 'ranks_per_fold', 'must be >= 0')
    cuda = _cuda_count()
    check_ranks_per_fold(ranks_per_fold, gpus, cuda)
    requested_gpus = gpus
    cfg = load_config(config, cfg_options)
    check_val_split(cfg, config)
    plan = None
    if tta:
        from ..config.tta import check_tta_config
        check_tta_config(copy.deepcopy(cfg), config)
        if config_task(cfg) == 'multi-label':  # TTA chosen per class on OOF evidence
            from ..postprocessing.tta_choice import cv_view_plan
            plan = cv_view_plan(cfg, config)
    pool = read_pool(cfg, config, group_regex, progress)
    source_name = splits or config
    fold_of_image = (read_pool_folds(pool, splits, num_folds) if splits else
                     make_pool_folds(pool, num_folds, seed, source_name))
    test_images: List[str] = []
    test_settings: dict = {}
    if test_dir is not None:
        fmt = fmt or FORMAT_OF.get(pool.dataset_type)
        if fmt is None:
            raise InvalidArgumentError('fmt', f'the data set type {pool.dataset_type} has no '
                                       'competition format of its own; name one '
                                       f'({", ".join(sorted(set(FORMAT_OF.values())))})')
        test_images, test_settings = check_test_inputs(
            cfg, config, test_dir, fmt, test_json, sample, log)
    # a work dir never holds inputs: --force would remove them, and fixed output names
    # (test/, submission.csv) would land among them
    check_output_apart(work_dir, run_inputs(config, cfg, pool, splits, test_dir, test_json,
                                            sample), 'work_dir')
    gpus = min(gpus, cuda)
    subprocesses = ranks_per_fold > 0 or gpus > 1
    if gpus <= 1 and not subprocesses and cuda < 2 and requested_gpus > 1:
        log(f'{requested_gpus} GPUs asked for, torch sees {cuda}: the folds train one '
            'after the other')
    if subprocesses and fold_command is None:
        raise InvalidArgumentError('fold_command', 'training folds in other processes '
                                   'needs the command that trains one')

    record = dict(config=osp.abspath(config), config_hash=config_hash(cfg),
                  num_folds=num_folds, seed=seed, group_regex=group_regex,
                  splits=hashlib.sha256(json.dumps(fold_of_image.tolist()).encode())
                  .hexdigest()[:16])
    with owned_work_dir(work_dir, TOOL) as manifest:
        outputs = [osp.join(work_dir, d) for d in
                   ['splits', 'oof_probs', 'tuned'] + [f'fold{k}' for k in range(num_folds)]]
        resume = check_run_record(work_dir, RUN_RECORD, record, force, 'cross-validation',
                                  outputs)
        if test_dir is not None:
            # the same test settings resume, others are refused (the submission of
            # another test set is not overwritten unasked)
            check_run_record(work_dir, TEST_RECORD, test_settings, force, 'test-stage')
        if chosen is None:
            chosen = list(range(num_folds))
        run = _Run(config, cfg_options, pool, fold_of_image, num_folds, chosen, work_dir,
                   manifest, resume, force, device, tta, progress, log, plan)
        done = {k: run.finished(k) for k in chosen}  # proofs checked before any write
        for k in chosen:  # folds to train hold only the tool's files (before clearing)
            if not done[k]:
                manifest.check_in_place(run.fold_dir(k), unlisted_only=force)
                if not force:
                    run.can_resume(k)  # a resume checkpoint this run wrote, or refused
        if resume:
            log(f'resuming the cross-validation run in {work_dir}: finished folds are kept')
        elif force:
            clear_earlier_run(manifest, log)
        write_run_record(work_dir, RUN_RECORD, record, manifest)
        return run.stages(start, done, subprocesses, gpus, ranks_per_fold, fold_command,
                          test_dir, test_images, test_settings, fmt, test_json, sample, cfg)


@dataclass
class _Run:
    """One cross-validation run in its locked work dir (the stages after the checks)."""
    config: str
    cfg_options: Optional[dict]
    pool: Pool
    fold_of_image: np.ndarray
    num_folds: int
    chosen: List[int]
    work_dir: str
    manifest: Manifest
    resume: bool
    force: bool
    device: Optional[str]
    tta: bool
    progress: bool
    log: Log
    plan: Optional[object] = None  # a tta_choice.ViewPlan: TTA chosen per class

    def fold_dir(self, k: int) -> str:
        return osp.join(self.work_dir, f'fold{k}')

    def finished(self, k: int):
        """``(checkpoint, metrics)`` of fold ``k`` when its marker proves it is this
        fold's model, None when it is to be trained (see :func:`~.stages.stage_result`)."""
        claims = fold_claims(self.pool, self.fold_of_image, k, self.num_folds)
        return stage_result(self.fold_dir(k), claims) if self.resume else None

    def mark_done(self, k: int) -> None:
        mark_stage_done(self.fold_dir(k), last_checkpoint(self.fold_dir(k)), {},
                        fold_claims(self.pool, self.fold_of_image, k, self.num_folds),
                        self.manifest)

    def can_resume(self, k: int) -> bool:
        return not self.force and osp.isdir(self.fold_dir(k)) and \
            resumable(self.fold_dir(k), self.manifest)

    def train(self, todo: List[int], split_dir: str, subprocesses: bool, gpus: int,
              ranks_per_fold: int, fold_command) -> None:
        from ..config.loading import load_config
        from ..training.runner import train_config
        from ..training.stages import train_only
        pool, log = self.pool, self.log
        if subprocesses:
            commands = []
            for k in todo:
                os.makedirs(self.fold_dir(k), exist_ok=True)
                fold_cfg = load_config(self.config, self.cfg_options,
                                       work_dir=self.fold_dir(k))
                use_fold(fold_cfg, pool, split_dir, k)
                path = osp.join(self.work_dir, 'configs', f'fold{k}.py')
                os.makedirs(osp.dirname(path), exist_ok=True)
                with owned_output(self.manifest, path):
                    fold_cfg.dump(path)
                commands.append(FoldCommand(k, fold_command(path, self.fold_dir(k),
                                                            ranks_per_fold,
                                                            self.can_resume(k)),
                                            osp.join(self.fold_dir(k), 'train.log'),
                                            max(ranks_per_fold, 1) if gpus >= 1 else 1))
            with contextlib.ExitStack() as stack:
                for k in todo:
                    stack.enter_context(owned_output(self.manifest, self.fold_dir(k),
                                                     replace=False))
                run_commands(commands, gpus, log)
            for k in todo:
                self.mark_done(k)
            return
        for k in tqdm(todo, desc='folds', unit='fold',
                      disable=not self.progress or len(todo) < 2):
            log(f'fold {k}: training on {int((self.fold_of_image != k).sum())} images, '
                f'validating on {int((self.fold_of_image == k).sum())} in '
                f'{self.fold_dir(k)}')
            with owned_output(self.manifest, self.fold_dir(k), replace=False):
                fold_cfg = train_config(self.config, work_dir=self.fold_dir(k),
                                        resume=self.can_resume(k),
                                        cfg_options=self.cfg_options,
                                        edit=lambda c, k=k: use_fold(c, pool, split_dir, k))
                train_only(fold_cfg)
            self.mark_done(k)

    def stages(self, start: float, done: Dict[int, Optional[Tuple[str, Dict[str, float]]]],
               subprocesses: bool, gpus: int, ranks_per_fold: int,
               fold_command, test_dir: Optional[str], test_images: List[str],
               test_settings: dict, fmt: Optional[str], test_json: Optional[str],
               sample: Optional[str], cfg: Config) -> CVSummary:
        pool, log, manifest, work_dir = self.pool, self.log, self.manifest, self.work_dir
        config, chosen, num_folds = self.config, self.chosen, self.num_folds
        fold_of_image = self.fold_of_image
        split_dir = osp.join(work_dir, 'splits')
        with owned_output(manifest, split_dir):
            write_pool_splits(pool, fold_of_image, split_dir, num_folds)

        # ---- train
        todo = [k for k in chosen if not done[k]]
        for k in chosen:
            if done[k]:
                log(f'fold {k}: finished earlier ({done[k][0]})')
        self.train(todo, split_dir, subprocesses, gpus, ranks_per_fold, fold_command)

        # ---- out-of-fold probabilities
        summaries, sources = [], []
        for k in chosen:
            fold_dir = self.fold_dir(k)
            ckpt = stage_result(fold_dir, fold_claims(pool, fold_of_image, k, num_folds))[0]
            val_rel = [pool.images[i] for i in np.flatnonzero(fold_of_image == k)]
            out = osp.join(fold_dir, 'val_probs')
            source = prediction_source(config, ckpt, pool.img_dir, val_rel, self.tta, fold=k)
            log(f'fold {k}: predicting its {len(val_rel)} validation images')
            if self.plan is not None:
                from .cv_decisions import predict_oof_candidates
                predict_oof_candidates(config, ckpt, fold_dir, pool.img_dir, val_rel,
                                       self.plan, source, self.device, self.cfg_options,
                                       self.progress, log, manifest)
                sources.append(source)
            else:
                _predict(config, ckpt, pool.img_dir, val_rel, out, source, self.device,
                         self.tta, self.cfg_options, self.progress, log, manifest)
            summaries.append(FoldSummary(k, int((fold_of_image != k).sum()), len(val_rel),
                                         fold_dir, ckpt, out))
        summary = CVSummary(work_dir, config, num_folds, 'Dice', summaries)
        summary.files['splits'] = split_dir
        if len(chosen) < num_folds:
            log(f'folds {",".join(map(str, chosen))} of {num_folds} done; out-of-fold '
                'tuning and the test predictions need every fold')
            summary.seconds = time.perf_counter() - start
            return _finish(summary, manifest)

        # ---- OOF folder, scores, tuning
        oof_dir = osp.join(work_dir, 'oof_probs')
        fold_of = {key: int(fold_of_image[i]) for i, key in enumerate(pool.keys)}
        gt, choice, scores = None, None, None
        if config_task(cfg) == 'multi-label':
            from ..io.ground_truth import GroundTruth
            gt = GroundTruth(pool.dataset.get('data_root') or osp.dirname(pool.img_dir),
                             ProbFolder(summaries[0].val_probs if self.plan is None else
                                        osp.join(summaries[0].work_dir, CANDIDATE_DIR, 'none')
                                        ).classes, json_dir=pool.seg_dir)
        if self.plan is not None:
            from .cv_decisions import choose_oof_tta
            choice, scores = choose_oof_tta([self.fold_dir(k) for k in chosen], self.plan,
                                            gt, fold_of, num_folds, sources, self.progress,
                                            log, manifest)
        with owned_output(manifest, oof_dir):
            oof = merge_oof([self.fold_dir(k) + '/val_probs' for k in chosen], oof_dir,
                            pool.keys, self.progress)
        summary.oof_probs = oof_dir
        if oof.task == 'multi-label':
            from .cv_decisions import collapsed_names, oof_decisions
            summary.decisions = oof_decisions(oof_dir, gt, fold_of, num_folds, self.plan,
                                              scores, self.progress)
            for f in summary.folds:
                f.collapsed = collapsed_names(summary.decisions, f.fold)
                if f.collapsed:
                    log(f'fold {f.fold}: collapsed on {", ".join(f.collapsed)} (Dice < '
                        '0.05 where its validation images contain it, the other folds '
                        '> 0.5): left out of that class\'s test-time fold vote')
            result = tune_multilabel(oof, gt, fold_of, num_folds, progress=self.progress)
            tuned = osp.join(work_dir, 'tuned')
            result.files = {
                name: _write_json(osp.join(tuned, f'{name}.json'), getattr(result, name),
                                  manifest)
                for name in ('thresholds', 'min_area', 'keep_largest')}
        else:
            gt_maps = dataset_gt_maps(pool.dataset,
                                      _plain_dict(cfg.val_dataloader.dataset)['pipeline'],
                                      pool.img_dir)
            result = score_multiclass(oof, gt_maps, fold_of, num_folds,
                                      int(pool.dataset.get('ignore_index', 255)),
                                      self.progress)
        summary.metric = result.metric
        summary.oof_before, summary.oof_after = result.oof_before, result.oof_after
        summary.thresholds, summary.min_area = result.thresholds, result.min_area
        summary.keep_largest = result.keep_largest
        for f, score in zip(summary.folds, result.fold_scores):
            f.score = score
        summary.files['oof_probs'] = oof_dir
        summary.files.update({f'tuned {k}': v for k, v in result.files.items()})

        # ---- test
        if test_dir is not None:
            write_run_record(work_dir, TEST_RECORD, test_settings, manifest)
            summary.files.update(_test_stage(
                config, summary, test_dir, test_images, fmt, test_json, sample, result,
                self.device, self.tta, self.cfg_options, self.progress, log, manifest,
                self.plan, choice))
        summary.seconds = time.perf_counter() - start
        return _finish(summary, manifest)


def _test_stage(config: str, summary: CVSummary, test_dir: str, images: Sequence[str],
                fmt: str, test_json: Optional[str], sample: Optional[str],
                result: TuningResult, device: Optional[str], tta: bool,
                cfg_options: Optional[dict], progress: bool, log: Log,
                manifest: Optional[Manifest] = None, plan=None,
                choice: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    from ..submission.check import check_submission
    from ..submission.make import make_submission
    from .cv_decisions import fold_vote, predict_test_fold
    test_root = osp.join(summary.work_dir, 'test')
    prob_dirs = []
    for f in summary.folds:
        out = osp.join(test_root, f'fold{f.fold}')
        source = prediction_source(config, f.checkpoint, test_dir, images, tta,
                                   test_dir=osp.abspath(test_dir))
        log(f'fold {f.fold}: predicting {len(images)} test images')
        if plan is not None and choice:
            predict_test_fold(config, f.checkpoint, test_dir, images, out, source, plan,
                              choice, device, cfg_options, progress, log, manifest)
        else:
            _predict(config, f.checkpoint, test_dir, images, out, source, device, tta,
                     cfg_options, progress, log, manifest)
        prob_dirs.append(out)
    ensemble = osp.join(test_root, 'ensemble')
    log(f'averaging the {len(prob_dirs)} fold models\' probabilities into {ensemble}')
    fold_vote(prob_dirs, ensemble, summary.decisions, progress, log, manifest)
    csv = osp.join(summary.work_dir, 'submission.csv')
    files = result.files
    with owned_output(manifest, csv):
        make_submission(ensemble, fmt, csv, thresholds=files.get('thresholds'),
                        img_dir=test_dir, test_json=test_json, sample=sample,
                        min_area=files.get('min_area'),
                        keep_largest=files.get('keep_largest'), force=True,
                        progress=progress)
    report = check_submission(csv, fmt, img_dir=test_dir, test_json=test_json,
                              sample=sample)
    if not report.ok:
        raise DataError(f'{csv}: the written submission fails its check: '
                        f'{report.errors[0]}')
    log(f'{csv}: checked, {fmt} format')
    return dict(test_ensemble=ensemble, submission=csv)


def check_ranks_per_fold(ranks_per_fold: int, gpus: int, cuda: int) -> None:
    """Refuse more ranks per fold than the machine has, before anything runs: with CUDA,
    at most the GPUs given (``gpus``, at least 1) and visible (``cuda``); without, at
    most the CPUs (``os.cpu_count()``), one process each.

    Raises:
        InvalidArgumentError: of ``ranks_per_fold``, naming the range.
    """
    if cuda:
        most = max(min(gpus, cuda), 1)
        if ranks_per_fold > most:
            raise InvalidArgumentError('ranks_per_fold', f'{ranks_per_fold} is outside '
                                       f'[0, {most}]: ranks per fold need as many GPUs; '
                                       f'{min(gpus, cuda) or 1} are given ({cuda} visible)')
        return
    cpus = os.cpu_count() or 1
    if ranks_per_fold > cpus:
        raise InvalidArgumentError('ranks_per_fold', f'{ranks_per_fold} is outside '
                                   f'[0, {cpus}]: without CUDA each rank is a CPU process '
                                   f'and this machine has {cpus} CPUs')


def _cuda_count() -> int:
    import torch
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _finish(summary: CVSummary, manifest: Optional[Manifest] = None) -> CVSummary:
    path = osp.join(summary.work_dir, 'summary.json')
    summary.files['summary'] = path
    with owned_output(manifest, path):
        atomic_write_text(path, json.dumps(asdict(summary), indent=1, default=float) + '\n',
                          force=True)
    return summary
