"""Binary cross-entropy for overlapping classes, with per-class ``pos_weight``."""
from __future__ import annotations

from typing import Optional, Tuple

import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor

from .base import MultiLabelLoss
from .utils import ClassValues


@MODELS.register_module()
class MultiLabelBCELoss(MultiLabelLoss):
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
        **kwargs: ``class_weight`` (per-class factor on the whole term), ``loss_weight``,
            ``reduction`` (``'mean'`` over valid entries, ``'sum'``, or ``'none'``: an
            ``(N, C, H, W)`` map with ignored entries set to 0), ``ignore_index`` and
            ``loss_name`` (default ``'loss_bce'``): see :class:`MultiLabelLoss`.
    """

    #: the mean is over at least one entry
    min_denominator = 1

    def __init__(self, pos_weight: ClassValues = None, **kwargs) -> None:
        kwargs.setdefault('loss_name', 'loss_bce')
        super().__init__(**kwargs)
        self.pos_weight = pos_weight

    def elementwise(self, pred: Tensor, binary: Tensor, valid: Tensor,
                    weight: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
        """``(N, C, H, W)`` BCE (0 on ignored entries) and the number of valid entries;
        ``weight`` is a per-entry factor broadcastable to ``pred``."""
        pos_weight = self.class_vector(self.pos_weight, pred, 'pos_weight')
        loss = F.binary_cross_entropy_with_logits(
            pred.float(), binary, reduction='none',
            pos_weight=None if pos_weight is None else pos_weight.view(-1, 1, 1))
        class_weight = self.class_vector(self.class_weight, pred, 'class_weight')
        if class_weight is not None:
            loss = loss * class_weight.view(1, -1, 1, 1)
        if weight is not None:
            loss = loss * weight.float()
        return loss * valid, valid.sum()
