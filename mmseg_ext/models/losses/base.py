"""The common part of the multi-label losses: settings, target split, reduction."""
from __future__ import annotations

from typing import Optional, Tuple, Union

import torch
import torch.nn as nn
from torch import Tensor

from ...utils.errors import ConfigError
from .utils import ClassValues, check_multilabel_shapes, per_class_vector, valid_and_binary_target

REDUCTIONS = ('mean', 'sum', 'none')


class MultiLabelLoss(nn.Module):
    """Base of the losses on ``(N, C, H, W)`` logits with an ``(N, C, H, W)`` {0, 1,
    ``ignore_index``} target.

    Args:
        class_weight: per-class factor (a list of C floats, or a ``.npy``/json/yaml file
            as mmseg's ``class_weight`` accepts).
        loss_weight: factor on the reduced loss.
        reduction: ``'mean'``, ``'sum'`` or ``'none'`` (what ``'mean'`` averages over
            and what ``'none'`` returns is the subclass's).
        ignore_index: target value ignored when the caller does not pass one.
        loss_name: key in the loss dict; must start with ``loss_`` to be back-propagated.
    """

    #: Marks losses that accept ``(N, C, H, W)`` targets and a ``valid_mask``.
    multi_label = True
    #: Lower bound of the ``'mean'`` denominator (``None``: no bound).
    min_denominator: Optional[float] = None

    def __init__(self, class_weight: ClassValues = None, loss_weight: float = 1.0,
                 reduction: str = 'mean', ignore_index: Optional[int] = 255,
                 loss_name: str = 'loss_multilabel') -> None:
        super().__init__()
        if reduction not in REDUCTIONS:
            raise ConfigError(f'{type(self).__name__}: unknown reduction {reduction!r}')
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
            weight: optional factor (its shape is the subclass's).
            avg_factor: denominator of ``'mean'`` instead of the subclass's default.
            reduction_override: overrides ``reduction`` for this call.
            ignore_index: overrides the constructor's value (``-1``: keep it).
        """
        binary, valid = self.split_target(pred, target, valid_mask, ignore_index)
        loss, denominator = self.elementwise(pred, binary, valid, weight)
        if avg_factor is not None:
            denominator = avg_factor
        if self.min_denominator is not None:
            denominator = torch.clamp(torch.as_tensor(denominator, dtype=loss.dtype),
                                      min=self.min_denominator)
        return self.reduce(loss, denominator, reduction_override)

    def elementwise(self, pred: Tensor, binary: Tensor, valid: Tensor,
                    weight: Optional[Tensor]) -> Tuple[Tensor, Union[Tensor, float]]:
        """The unreduced loss and the default denominator of its mean."""
        raise NotImplementedError

    def split_target(self, pred: Tensor, target: Tensor, valid_mask: Optional[Tensor],
                     ignore_index: Optional[int] = -1) -> Tuple[Tensor, Tensor]:
        """Check the shapes; return the float {0, 1} target and the float valid mask
        (``ignore_index=-1`` keeps the constructor's value)."""
        check_multilabel_shapes(pred, target, type(self).__name__)
        ignore = self.ignore_index if ignore_index == -1 else ignore_index
        return valid_and_binary_target(target, valid_mask, ignore)

    def class_vector(self, values: ClassValues, pred: Tensor, what: str) -> Optional[Tensor]:
        """``values`` as a float ``(C,)`` tensor on ``pred``'s device, or None."""
        return per_class_vector(values, pred.shape[1], pred, type(self).__name__, what)

    def reduce(self, loss: Tensor, denominator: Union[Tensor, float],
               reduction_override: Optional[str]) -> Tensor:
        """``loss_weight`` times ``loss.sum() / denominator`` (``'mean'``), the sum, or
        ``loss`` itself (``'none'``); the subclass chooses the denominator."""
        reduction = reduction_override or self.reduction
        if reduction == 'mean':
            loss = loss.sum() / denominator
        elif reduction == 'sum':
            loss = loss.sum()
        return self.loss_weight * loss

    @property
    def loss_name(self) -> str:
        """Name of this loss in the loss dict (``loss_`` prefix: back-propagated)."""
        return self._loss_name

