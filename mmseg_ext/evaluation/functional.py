"""Counting and Dice formulas shared by the metric and the training log of the heads.

One definition of the competition Dice lives here, so the number logged during training
(``dice_seg``) and the validation metric (``mDice``) cannot drift apart.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from ..utils.errors import DataError

#: The hand-bone competition's smoothing term: (2|P∩G| + eps) / (|P| + |G| + eps).
COMPETITION_EPS = 1e-4


def multilabel_counts(pred: Tensor, target: Tensor, ignore_index: Optional[int] = 255,
                      sum_dims: Sequence[int] = (1, 2)) -> tuple[Tensor, Tensor, Tensor]:
    """Per-class |P∩G|, |P|, |G| of a binary prediction against a {0, 1, ignore} target.

    Args:
        pred: bool or {0, 1} integer tensor, e.g. ``(C, H, W)`` or ``(N, C, H, W)``.
        target: same shape, {0, 1} with ``ignore_index`` marking entries to skip; an
            ignored entry counts in none of the three sums.
        ignore_index: the ignore value (``None``: nothing ignored).
        sum_dims: the axes summed over; ``(1, 2)`` for ``(C, H, W)`` (per image),
            ``(0, 2, 3)`` for ``(N, C, H, W)`` (pooled over a batch).

    Returns:
        ``(intersection, pred_area, gt_area)``, each an ``int64`` tensor over the axes that
        remain (usually ``(C,)``), on the inputs' device.
    """
    if tuple(pred.shape) != tuple(target.shape):
        raise DataError(f'prediction {tuple(pred.shape)} and ground truth '
                         f'{tuple(target.shape)} differ in shape')
    gt = target == 1
    p = pred.bool()
    if ignore_index is not None:
        valid = target != ignore_index
        p = p & valid
        gt = gt & valid
    dims = tuple(sum_dims)
    return ((p & gt).sum(dim=dims, dtype=torch.int64), p.sum(dim=dims, dtype=torch.int64),
            gt.sum(dim=dims, dtype=torch.int64))


def dice_from_counts(intersection, pred_area, gt_area, eps: float = COMPETITION_EPS):
    """``(2 I + eps) / (P + G + eps)`` elementwise (numpy arrays or tensors).

    With ``eps > 0`` a pair where prediction and ground truth are both empty scores 1,
    as the competition defines; numpy inputs give a float64 array.
    """
    if isinstance(intersection, Tensor):
        return (2 * intersection.double() + eps) / (pred_area.double() + gt_area.double()
                                                     + eps)
    return (2 * np.asarray(intersection, np.float64) + eps) / (
        np.asarray(pred_area, np.float64) + np.asarray(gt_area, np.float64) + eps)
