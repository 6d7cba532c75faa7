"""Per-class component clean-up chosen to maximise the competition Dice.

For each class the search picks a ``keep_largest`` (0 = off, or keep the K largest
components) and a ``min_area`` (0 = off, or drop components smaller than that many
pixels), the settings :class:`~mmseg_ext.postprocessing.components.ComponentFilter` applies in
``tools/make_submission.py``, that maximise the mean per-image Dice of that class on a
labelled probability folder (out-of-fold predictions, for an honest choice).

It needs one pass over the images. For each image and class the thresholded mask's
connected components are labelled once, and per component its area and its overlap
with the ground truth are kept. A setting keeps a subset of the components (those
``>= min_area``, then the ``keep_largest`` largest, ties to the first in raster order,
as :func:`~mmseg_ext.postprocessing.components.filter_components`); the mask it leaves has
``|P| = sum(areas kept)`` and ``|P & G| = sum(overlaps kept)``, so every setting's Dice
is arithmetic on those arrays, without filtering any mask again.

The Dice only changes when ``min_area`` passes a component's area, so the candidate
minimum areas are 0 and ``area + 1`` of the components seen (at most
:data:`MAX_AREA_CANDIDATES`, taken at evenly spaced ranks of the sorted areas when
there are more). Ties keep the simpler setting: no clean-up first, then smaller
``keep_largest``, then smaller ``min_area``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np

from ..io.rle import mask_bbox
from .thresholds import DICE_EPS

#: the connectivity ``tools/cv.py`` tunes its clean-up at (``tuned/min_area.json`` and
#: ``keep_largest.json`` count components of 8-connected pixels), and so the one an
#: export of those values must use
CV_CONNECTIVITY = 8
#: the ``keep_largest`` values tried (0 = keep every component)
KEEP_CHOICES = (0, 1, 2, 3)
#: most minimum areas tried per class
MAX_AREA_CANDIDATES = 64


@dataclass
class ComponentStats:
    """One image's class mask: ``areas`` and ``overlaps`` ``(n,)`` int64 per component
    (label order = raster order of their first pixel) and the ground-truth area."""
    areas: np.ndarray
    overlaps: np.ndarray
    gt_area: int


def component_stats(mask: np.ndarray, gt: np.ndarray, connectivity: int = 8
                    ) -> ComponentStats:
    """Components of ``mask`` ``(H, W)`` bool and their overlap with ``gt`` ``(H, W)`` bool."""
    gt_area = int(np.count_nonzero(gt))
    box = mask_bbox(mask)
    if box is None:
        empty = np.zeros(0, np.int64)
        return ComponentStats(empty, empty, gt_area)
    r0, r1, c0, c1 = box
    crop = mask[r0:r1 + 1, c0:c1 + 1].astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(crop, connectivity=connectivity)
    areas = stats[1:, cv2.CC_STAT_AREA].astype(np.int64)
    overlap = np.bincount(labels[gt[r0:r1 + 1, c0:c1 + 1]], minlength=n)[1:]
    return ComponentStats(areas, overlap.astype(np.int64), gt_area)


def dice_table(stats: ComponentStats, min_areas: np.ndarray,
               keep_choices: Sequence[int]) -> np.ndarray:
    """Dice of the mask each setting leaves: ``(len(keep_choices), len(min_areas))``.

    The components that pass ``min_area`` are the largest ones, so keeping the K
    largest of them keeps a prefix of the components sorted by area (descending,
    stable: ties to the first in raster order, as ``filter_components``).
    """
    order = np.argsort(-stats.areas, kind='stable')
    areas, overlaps = stats.areas[order], stats.overlaps[order]
    pred = np.concatenate([[0], np.cumsum(areas)])
    inter = np.concatenate([[0], np.cumsum(overlaps)])
    ascending = areas[::-1]
    count = len(areas) - np.searchsorted(ascending, np.maximum(min_areas, 1), side='left')
    out = np.empty((len(keep_choices), len(min_areas)), np.float64)
    for i, k in enumerate(keep_choices):
        take = count if k <= 0 else np.minimum(count, k)
        out[i] = (2.0 * inter[take] + DICE_EPS) / (pred[take] + stats.gt_area + DICE_EPS)
    return out


def area_candidates(per_image: Sequence[ComponentStats]) -> List[int]:
    """0, then ``area + 1`` of the components seen (thinned to
    :data:`MAX_AREA_CANDIDATES` by rank), ascending."""
    areas = np.unique(np.concatenate([s.areas for s in per_image] or [np.zeros(0)]))
    values = (areas + 1).astype(np.int64)
    if len(values) > MAX_AREA_CANDIDATES - 1:
        ranks = np.linspace(0, len(values) - 1, MAX_AREA_CANDIDATES - 1).round()
        values = np.unique(values[ranks.astype(np.int64)])
    return [0] + [int(v) for v in values]


@dataclass
class ClassChoice:
    """The setting chosen for one class and the mean Dice without and with it."""
    min_area: int
    keep_largest: int
    dice_before: float
    dice_after: float


def choose_setting(per_image: Sequence[ComponentStats],
                   keep_choices: Sequence[int] = KEEP_CHOICES) -> ClassChoice:
    """The setting with the best mean Dice over ``per_image`` (ties: the simpler)."""
    if not per_image:
        return ClassChoice(0, 0, float('nan'), float('nan'))
    keeps = sorted(set(keep_choices) | {0})
    min_areas = np.asarray(area_candidates(per_image), np.int64)
    total = np.zeros((len(keeps), len(min_areas)), np.float64)
    for stats in per_image:
        total += dice_table(stats, min_areas, keeps)
    mean = total / len(per_image)
    before = float(mean[0, 0])
    best = (before, 0, 0)
    for i, k in enumerate(keeps):  # simpler settings first; a later one must be better
        for j, a in enumerate(min_areas):
            if mean[i, j] > best[0] + 1e-12:
                best = (float(mean[i, j]), int(a), int(k))
    return ClassChoice(best[1], best[2], before, best[0])


@dataclass
class ComponentSearch:
    """Collects :class:`ComponentStats` per class; :meth:`choose` picks the settings."""
    classes: Tuple[str, ...]
    connectivity: int = 8
    stats: Dict[str, List[ComponentStats]] = field(default_factory=dict)

    def update(self, cls: str, mask: np.ndarray, gt: np.ndarray) -> None:
        """Add one image's class ``cls``: ``mask`` and ``gt`` ``(H, W)`` bool."""
        self.stats.setdefault(cls, []).append(component_stats(mask, gt, self.connectivity))

    def choose(self, keep_choices: Sequence[int] = KEEP_CHOICES) -> Dict[str, ClassChoice]:
        return {c: choose_setting(self.stats.get(c, []), keep_choices) for c in self.classes}
