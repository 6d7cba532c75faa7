"""Soft Dice per image and class for overlapping classes, padding masked."""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from mmseg.registry import MODELS
from torch import Tensor

from .base import MultiLabelLoss


@MODELS.register_module()
class MultiLabelDiceLoss(MultiLabelLoss):
    """``1 - soft Dice`` computed for every (image, class) pair, then averaged.

    With ``p = sigmoid(logit)`` and ``t`` in {0, 1}, sums over the valid pixels of image n
    (pixels whose target is not ``ignore_index`` and that ``valid_mask`` keeps)::

        I = sum(p * t)        S = sum(p) + sum(t)
        dice[n, c] = (2 * I + smooth) / max(S + smooth, eps)
        loss = mean over n and c of (1 - dice[n, c])   (class_weight: weighted mean over c)

    ``smooth`` (default 1) keeps the gradient finite and scores an (image, class) pair
    with no target and no prediction as dice = 1 (loss 0), like the competition metric
    does; ``eps`` (default 1e-6) only guards ``0 / 0`` when ``smooth = 0``.

    Unlike mmseg's ``DiceLoss`` (one Dice over all classes flattened, padding included),
    every class of every image counts once and padding never enters a sum.

    Args:
        smooth: additive smoothing in numerator and denominator.
        eps: lower bound of the denominator.
        **kwargs: ``class_weight`` (per-class weights of the mean over classes),
            ``loss_weight``, ``reduction`` (``'mean'`` over images and classes,
            ``'sum'``, or ``'none'``: an ``(N, C)`` tensor of ``1 - dice``),
            ``ignore_index`` and ``loss_name`` (default ``'loss_dice'``): see
            :class:`MultiLabelLoss`.
    """

    def __init__(self, smooth: float = 1.0, eps: float = 1e-6, **kwargs) -> None:
        kwargs.setdefault('loss_name', 'loss_dice')
        super().__init__(**kwargs)
        self.smooth = smooth
        self.eps = eps

    def dice_per_image_class(self, pred: Tensor, target: Tensor,
                             valid_mask: Optional[Tensor] = None,
                             ignore_index: Optional[int] = -1) -> Tensor:
        """Soft Dice, float ``(N, C)``, of ``(N, C, H, W)`` logits against the target."""
        binary, valid = self.split_target(pred, target, valid_mask, ignore_index)
        return self._dice(pred, binary, valid)

    def _dice(self, pred: Tensor, binary: Tensor, valid: Tensor) -> Tensor:
        prob = pred.float().sigmoid() * valid  # float32 sums: fp16 overflows at 65504
        binary = binary * valid
        inter = (prob * binary).sum(dim=(2, 3))
        total = prob.sum(dim=(2, 3)) + binary.sum(dim=(2, 3))
        return (2 * inter + self.smooth) / torch.clamp(total + self.smooth, min=self.eps)

    def elementwise(self, pred: Tensor, binary: Tensor, valid: Tensor,
                    weight: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
        """``(N, C)`` weighted ``1 - dice`` and N times the sum of class weights (N * C
        without class weights); ``weight`` is per image, ``(N,)``."""
        loss = 1 - self._dice(pred, binary, valid)
        num_images, num_classes = loss.shape
        class_weight = self.class_vector(self.class_weight, pred, 'class_weight')
        if class_weight is None:
            class_weight = loss.new_ones(num_classes)
        loss = loss * class_weight.view(1, -1)
        if weight is not None:
            loss = loss * weight.float().view(-1, 1)
        return loss, num_images * class_weight.sum()
