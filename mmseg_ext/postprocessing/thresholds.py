"""Per-class threshold search maximising the competition Dice (``tools/tune_thresholds.py``).

The competition's Dice for one class is the mean over images of
``(2 |P & G| + 1e-4) / (|P| + |G| + 1e-4)``, computed at the original resolution. The
search streams: for each image and class it histograms the probability levels (the
``uint8`` levels ``q``, ``p = q / 255``) of foreground and background ground-truth
pixels; suffix sums of the two histograms give ``|P & G|`` and ``|P|`` for every
threshold at once, so the per-image Dice at all 256 thresholds is added to a
``(C, 257)`` table. Memory is one image; every threshold a ``uint8`` file can express is
tried exactly (``float16`` files are rounded to the same 256 levels for the search).

Each class is independent (the mean over classes does not couple them), so the best
threshold per class maximises the competition score on the validation set. Ties go to
the threshold closest to 0.5.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
from tqdm import tqdm

from ..inference.probmaps import searched_threshold, threshold_level, upsample_class
from ..io.atomic import atomic_open, check_new_output
from ..io.ground_truth import GroundTruth
from ..io.paths import check_output_apart, check_output_format
from ..io.probs import ProbFolder
from ..io.rle import mask_bbox
from ..utils.errors import DataError, InvalidArgumentError
from ..utils.per_class import per_class_document

DICE_EPS = 1e-4
LEVELS = 256


class DiceSweep:
    """Per-class sums of the per-image Dice at every threshold level 0..256.

    Level ``T`` predicts ``q >= T`` (``T = 256`` predicts nothing).
    """

    def __init__(self, classes: Sequence[str]):
        self.classes = tuple(classes)
        self.dice_sum = np.zeros((len(classes), LEVELS + 1), np.float64)
        self.images = np.zeros(len(classes), np.int64)

    def update(self, c: int, levels: np.ndarray, gt: np.ndarray) -> None:
        """Add one image's class ``c``: ``levels`` ``(H, W)`` uint8, ``gt`` ``(H, W)`` bool."""
        if levels.shape != gt.shape:
            raise ValueError(f'levels {levels.shape} and gt {gt.shape} differ')  # a bug
        box_p, box_g = mask_bbox(levels), mask_bbox(gt)
        boxes = [b for b in (box_p, box_g) if b is not None]
        hist = np.zeros((LEVELS, 2), np.int64)
        if boxes:
            r0 = min(b[0] for b in boxes)
            r1 = max(b[1] for b in boxes)
            c0 = min(b[2] for b in boxes)
            c1 = max(b[3] for b in boxes)
            q = levels[r0:r1 + 1, c0:c1 + 1].astype(np.int32)
            q <<= 1
            q += gt[r0:r1 + 1, c0:c1 + 1]
            hist = np.bincount(q.ravel(), minlength=2 * LEVELS).reshape(LEVELS, 2)
            hist = hist.astype(np.int64)
            hist[0, 0] += levels.size - q.size
        else:
            hist[0, 0] = levels.size
        tp = np.zeros(LEVELS + 1, np.int64)
        pred = np.zeros(LEVELS + 1, np.int64)
        tp[:LEVELS] = np.cumsum(hist[::-1, 1])[::-1]
        pred[:LEVELS] = np.cumsum(hist.sum(axis=1)[::-1])[::-1]
        g = tp[0]
        self.dice_sum[c] += (2.0 * tp + DICE_EPS) / (pred + g + DICE_EPS)
        self.images[c] += 1

    def mean_dice(self) -> np.ndarray:
        """``(C, 257)`` mean per-image Dice at each level."""
        return self.dice_sum / np.maximum(self.images, 1)[:, None]

    @classmethod
    def merged(cls, sweeps: Sequence[DiceSweep]) -> DiceSweep:
        """One sweep holding the images of every sweep in ``sweeps`` (same classes)."""
        out = cls(sweeps[0].classes)
        for s in sweeps:
            out.dice_sum += s.dice_sum
            out.images += s.images
        return out

    def best_levels(self, lo: int = 1, hi: int = 255, prefer: int = 128) -> np.ndarray:
        """Best level per class within ``[lo, hi]``; ties go to the level nearest ``prefer``."""
        mean = self.mean_dice()[:, lo:hi + 1]
        levels = np.arange(lo, hi + 1)
        best = np.empty(len(self.classes), np.int64)
        for c in range(len(self.classes)):
            top = mean[c].max()
            candidates = levels[np.isclose(mean[c], top, rtol=0, atol=1e-12)]
            best[c] = candidates[np.argmin(np.abs(candidates - prefer))]
        return best


def calibrate(probs: np.ndarray, threshold: float) -> np.ndarray:
    """Map probabilities so that ``threshold`` becomes 0.5: ``p(1-t) / (p(1-t) + (1-p)t)``.

    The odds are divided by the threshold's odds (a shift of the logit by
    ``logit(t)``), so the order of the values is kept, 0 and 1 stay 0 and 1, and a
    model whose own decision threshold is ``t`` decides at 0.5 afterwards. ``tools/cv.py``
    calibrates each fold model by its own out-of-fold threshold before the models are
    averaged (:func:`~mmseg_ext.postprocessing.tta_choice.class_soft_vote`).

    Args:
        probs: float probabilities in [0, 1], any shape.
        threshold: in (0, 1).

    Returns:
        ``float32`` array of the shape of ``probs``.
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f'threshold {threshold} is not in (0, 1)')  # a caller's bug
    p = np.asarray(probs, np.float32)
    up = p * np.float32(1.0 - threshold)
    return up / (up + (np.float32(1.0) - p) * np.float32(threshold))  # > 0: 0 < t < 1


# ------------------------------------------------------------------ the search
@dataclass
class TuneResult:
    thresholds: Dict[str, float]
    dice_default: Dict[str, float]
    dice_tuned: Dict[str, float]
    images: int
    seconds: float

    def table(self, default: float) -> str:
        width = max(len(c) for c in self.thresholds)
        lines = [f'{"class":<{width}}  threshold  dice@{default:<5.3g}  dice@best']
        for c, t in self.thresholds.items():
            lines.append(f'{c:<{width}}  {t:9.4f}  {self.dice_default[c]:10.4f}  '
                         f'{self.dice_tuned[c]:9.4f}')
        lines.append(f'{"mean":<{width}}  {"":9}  '
                     f'{np.mean(list(self.dice_default.values())):10.4f}  '
                     f'{np.mean(list(self.dice_tuned.values())):9.4f}')
        return '\n'.join(lines)


def class_levels(probs, c: int, size: Tuple[int, int]) -> np.ndarray:
    """``(H, W)`` uint8 probability levels of class ``c`` of :class:`CroppedProbs`
    resized to ``size`` (``float16`` files rounded to the 256 levels)."""
    up = upsample_class(probs, c, size)
    if up.dtype == np.uint8:
        return up
    return np.rint(np.clip(up, 0, 1) * 255).astype(np.uint8)


#: the owner recorded beside a thresholds file this module writes
OWNER = 'tune_thresholds'


def tune_thresholds(probs_dir: str, gt_root: str, out: Optional[str] = None,
                    search: Tuple[float, float] = (0.05, 0.95), default: float = 0.5,
                    force: bool = False, progress: bool = True) -> TuneResult:
    """Find per-class thresholds maximising the competition Dice; write them as JSON.

    Args:
        probs_dir: multi-label probability folder of a validation set.
        gt_root: ground truth (see :class:`GroundTruth`).
        out: JSON file ``{class: threshold}`` for ``make_submission.py --thresholds``.
        search: the range of thresholds tried (inclusive).
        default: the threshold reported beside the tuned one.
    """
    start = time.perf_counter()
    if out is not None:
        check_output_format(out, 'JSON', ('.json',))
        check_output_apart(out, [probs_dir, gt_root], 'out')
    folder = ProbFolder(probs_dir)
    if folder.task != 'multi-label':
        raise DataError(f'{probs_dir}: {folder.task} probabilities; thresholds apply to '
                        'multi-label probabilities only')
    lo, hi = threshold_level(search[0]), threshold_level(search[1])
    if not (0 <= search[0] <= search[1] <= 1):
        raise InvalidArgumentError('search', f'{search[0]} {search[1]}: need 0 <= lo <= hi '
                                   '<= 1')
    if lo > min(hi, 255):
        raise InvalidArgumentError('search', f'{search[0]} {search[1]}: no threshold level '
                                   'lies in this range (probabilities are stored in steps of '
                                   '1/255, and a pixel is foreground where p > t: t = 1 '
                                   'admits none)')
    if out is not None:
        check_new_output(out, force, OWNER)  # before the sweep, not after it
    gt = GroundTruth(gt_root, folder.classes)
    sweep = DiceSweep(folder.classes)
    keys = folder.keys()
    for key in tqdm(keys, desc='thresholds', unit='img', disable=not progress):
        probs, meta = folder.read(key, cropped=True)
        target = gt.load(key, meta.ori_shape, meta.img_sha256)
        for c in range(len(folder.classes)):
            sweep.update(c, class_levels(probs, c, meta.ori_shape), target[c])
    best = sweep.best_levels(lo, min(hi, 255), prefer=threshold_level(default))
    mean = sweep.mean_dice()
    d_level = threshold_level(default)
    result = TuneResult(
        thresholds={c: searched_threshold(int(b), *search)
                    for c, b in zip(folder.classes, best)},
        dice_default={c: float(mean[i, d_level]) for i, c in enumerate(folder.classes)},
        dice_tuned={c: float(mean[i, b]) for i, (c, b) in enumerate(zip(folder.classes, best))},
        images=len(keys), seconds=time.perf_counter() - start)
    if out is not None:
        with atomic_open(out, 'w', force=force, owner=OWNER) as f:
            json.dump(per_class_document(result.thresholds, 'thresholds'), f, indent=2)
            f.write('\n')
    return result
