"""Soft Dice per image and class for overlapping classes, padding masked."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
from mmseg.registry import MODELS
from torch import Tensor

from .utils import ClassValues, check_multilabel_shapes, per_class_vector, valid_and_binary_target


@MODELS.register_module()
class MultiLabelDiceLoss(nn.Module):
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
        class_weight: per-class weights of the mean over classes (C floats or a file).
        loss_weight: factor on the reduced loss.
        reduction: ``'mean'`` (over images and classes), ``'sum'``, or ``'none'`` (an
            ``(N, C)`` tensor of ``1 - dice``).
        ignore_index: target value ignored when the caller does not pass one.
        loss_name: key in the loss dict.
    """

    multi_label = True

    def __init__(self,
                 smooth: float = 1.0,
                 eps: float = 1e-6,
                 class_weight: ClassValues = None,
                 loss_weight: float = 1.0,
                 reduction: str = 'mean',
                 ignore_index: Optional[int] = 255,
                 loss_name: str = 'loss_dice') -> None:
        super().__init__()
        if reduction not in ('mean', 'sum', 'none'):
            raise ValueError(f'MultiLabelDiceLoss: unknown reduction {reduction!r}')
        self.smooth = smooth
        self.eps = eps
        self.class_weight = class_weight
        self.loss_weight = loss_weight
        self.reduction = reduction
        self.ignore_index = ignore_index
        self._loss_name = loss_name

    def dice_per_image_class(self, pred: Tensor, target: Tensor,
                             valid_mask: Optional[Tensor] = None,
                             ignore_index: Optional[int] = -1) -> Tensor:
        """Soft Dice, float ``(N, C)``, of ``(N, C, H, W)`` logits against the target."""
        check_multilabel_shapes(pred, target, 'MultiLabelDiceLoss')
        ignore = self.ignore_index if ignore_index == -1 else ignore_index
        binary, valid = valid_and_binary_target(target, valid_mask, ignore)
        prob = pred.float().sigmoid() * valid  # float32 sums: fp16 overflows at 65504
        binary = binary * valid
        inter = (prob * binary).sum(dim=(2, 3))
        total = prob.sum(dim=(2, 3)) + binary.sum(dim=(2, 3))
        return (2 * inter + self.smooth) / torch.clamp(total + self.smooth, min=self.eps)

    def forward(self,
                pred: Tensor,
                target: Tensor,
                valid_mask: Optional[Tensor] = None,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None,
                ignore_index: Optional[int] = -1,
                **kwargs) -> Tensor:
        """Loss of ``(N, C, H, W)`` logits; ``weight`` (per image, ``(N,)``) is optional.

        ``avg_factor`` replaces the denominator of the mean (default: N times the sum of
        class weights, i.e. N * C without class weights).
        """
        loss = 1 - self.dice_per_image_class(pred, target, valid_mask, ignore_index)
        num_images, num_classes = loss.shape
        class_weight = per_class_vector(self.class_weight, num_classes, pred,
                                        'MultiLabelDiceLoss', 'class_weight')
        if class_weight is None:
            class_weight = loss.new_ones(num_classes)
        loss = loss * class_weight.view(1, -1)
        if weight is not None:
            loss = loss * weight.float().view(-1, 1)
        reduction = reduction_override or self.reduction
        if reduction == 'mean':
            denom = num_images * class_weight.sum() if avg_factor is None else avg_factor
            loss = loss.sum() / denom
        elif reduction == 'sum':
            loss = loss.sum()
        return self.loss_weight * loss

    @property
    def loss_name(self) -> str:
        """Name of this loss in the loss dict."""
        return self._loss_name
