"""Binary cross-entropy for overlapping classes, with per-class ``pos_weight``."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor

from .utils import ClassValues, check_multilabel_shapes, per_class_vector, valid_and_binary_target


@MODELS.register_module()
class MultiLabelBCELoss(nn.Module):
    """Sigmoid binary cross-entropy on ``(N, C, H, W)`` logits, one channel per class.

    Per entry (image n, class c, pixel p), with ``x`` the logit, ``t`` in {0, 1}::

        l = -w_c * (pos_weight_c * t * log(sigmoid(x)) + (1 - t) * log(1 - sigmoid(x)))

    where ``w_c`` is ``class_weight`` (default 1). Entries whose target is
    ``ignore_index`` (255: padding, rotation fill) or that ``valid_mask`` drops contribute
    nothing; ``reduction='mean'`` divides the sum by the number of valid entries (weights
    are not part of the denominator), so padding never dilutes the loss.

    Unlike mmseg's ``CrossEntropyLoss(use_sigmoid=True, class_weight=...)``, whose weight
    vector broadcasts against the last (width) axis of 4-D logits, ``pos_weight`` and
    ``class_weight`` are reshaped to ``(C, 1, 1)`` and act on the class axis.

    Args:
        pos_weight: per-class factor on the positive term (a list of C floats, or a
            ``.npy``/json/yaml file as mmseg's ``class_weight`` accepts). > 1 favours recall.
        class_weight: per-class factor on the whole term (C floats or a file).
        loss_weight: factor on the reduced loss.
        reduction: ``'mean'`` (over valid entries), ``'sum'`` or ``'none'`` (an
            ``(N, C, H, W)`` map with ignored entries set to 0).
        ignore_index: target value ignored when the caller does not pass one.
        loss_name: key in the loss dict; must start with ``loss_`` to be back-propagated.
    """

    #: Marks losses that accept ``(N, C, H, W)`` targets and a ``valid_mask``.
    multi_label = True

    def __init__(self,
                 pos_weight: ClassValues = None,
                 class_weight: ClassValues = None,
                 loss_weight: float = 1.0,
                 reduction: str = 'mean',
                 ignore_index: Optional[int] = 255,
                 loss_name: str = 'loss_bce') -> None:
        super().__init__()
        if reduction not in ('mean', 'sum', 'none'):
            raise ValueError(f'MultiLabelBCELoss: unknown reduction {reduction!r}')
        self.pos_weight = pos_weight
        self.class_weight = class_weight
        self.loss_weight = loss_weight
        self.reduction = reduction
        self.ignore_index = ignore_index
        self._loss_name = loss_name

    def forward(self,
                pred: Tensor,
                target: Tensor,
                valid_mask: Optional[Tensor] = None,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None,
                ignore_index: Optional[int] = -1,
                **kwargs) -> Tensor:
        """Loss of ``(N, C, H, W)`` float logits against an ``(N, C, H, W)`` target.

        Args:
            pred: logits, float ``(N, C, H, W)``.
            target: {0, 1} with ``ignore_index`` entries, any dtype, ``(N, C, H, W)``.
            valid_mask: optional bool ``(N, C, H, W)`` or ``(N, 1, H, W)``.
            weight: optional per-entry factor broadcastable to ``pred``.
            avg_factor: denominator for ``'mean'`` instead of the number of valid entries.
            reduction_override: overrides ``reduction`` for this call.
            ignore_index: overrides the constructor's value (``-1``: keep it).

        Returns:
            A scalar (``'mean'``/``'sum'``) or an ``(N, C, H, W)`` tensor (``'none'``).
        """
        check_multilabel_shapes(pred, target, 'MultiLabelBCELoss')
        reduction = reduction_override or self.reduction
        ignore = self.ignore_index if ignore_index == -1 else ignore_index
        binary, valid = valid_and_binary_target(target, valid_mask, ignore)
        num_classes = pred.shape[1]
        pos_weight = per_class_vector(self.pos_weight, num_classes, pred,
                                      'MultiLabelBCELoss', 'pos_weight')
        loss = F.binary_cross_entropy_with_logits(
            pred.float(), binary, reduction='none',
            pos_weight=None if pos_weight is None else pos_weight.view(-1, 1, 1))
        class_weight = per_class_vector(self.class_weight, num_classes, pred,
                                        'MultiLabelBCELoss', 'class_weight')
        if class_weight is not None:
            loss = loss * class_weight.view(1, -1, 1, 1)
        if weight is not None:
            loss = loss * weight.float()
        loss = loss * valid
        if reduction == 'mean':
            denom = valid.sum() if avg_factor is None else avg_factor
            loss = loss.sum() / torch.clamp(torch.as_tensor(denom, dtype=loss.dtype), min=1)
        elif reduction == 'sum':
            loss = loss.sum()
        return self.loss_weight * loss

    @property
    def loss_name(self) -> str:
        """Name of this loss in the loss dict (``loss_`` prefix: back-propagated)."""
        return self._loss_name
