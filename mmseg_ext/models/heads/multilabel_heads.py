"""Registered multi-label versions of stock mmseg decode heads.

Each class is the stock head with :class:`MultiLabelDecodeHeadMixin` in front; the only
head with its own code is OCR, whose object-region gathering reads the previous head's
logits (see :class:`SigmoidSpatialGatherModule`).
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
from mmseg.models.decode_heads import ASPPHead, FCNHead, OCRHead, SegformerHead, UPerHead
from mmseg.registry import MODELS
from torch import Tensor

from ...utils.errors import ConfigError
from .mixin import MultiLabelDecodeHeadMixin


@MODELS.register_module()
class MultiLabelUPerHead(MultiLabelDecodeHeadMixin, UPerHead):
    """``UPerHead`` with C sigmoid outputs (UPerNet with Swin, BEiT, ConvNeXt, ...)."""


@MODELS.register_module()
class MultiLabelFCNHead(MultiLabelDecodeHeadMixin, FCNHead):
    """``FCNHead`` with C sigmoid outputs: auxiliary head of UPerNet/DeepLabV3 and the
    first (soft object region) stage of OCRNet."""


@MODELS.register_module()
class MultiLabelASPPHead(MultiLabelDecodeHeadMixin, ASPPHead):
    """``ASPPHead`` (DeepLabV3) with C sigmoid outputs."""


@MODELS.register_module()
class MultiLabelSegformerHead(MultiLabelDecodeHeadMixin, SegformerHead):
    """``SegformerHead`` (the all-MLP decoder of SegFormer, output at 1/4) with C sigmoid
    outputs."""


class SigmoidSpatialGatherModule(nn.Module):
    """Object-region features from sigmoid probabilities.

    For each class k, with ``q = sigmoid(scale * logit_k)`` over the h*w positions, the
    region feature is the q-weighted mean of the pixel features:
    ``sum_p q_p f_p / (sum_p q_p + eps)`` -- the mean feature inside the soft mask.

    Args:
        scale: factor on the logits before the sigmoid (as stock OCR's ``scale``).
        eps: guards the division for a class predicted absent everywhere.
    """

    def __init__(self, scale: float = 1.0, eps: float = 1e-6) -> None:
        super().__init__()
        self.scale = scale
        self.eps = eps

    def forward(self, feats: Tensor, logits: Tensor) -> Tensor:
        """``feats`` ``(N, D, h, w)``, ``logits`` ``(N, K, h, w)`` -> ``(N, D, K, 1)``."""
        n, k = logits.shape[:2]
        weights = torch.sigmoid(self.scale * logits).reshape(n, k, -1)
        weights = weights / (weights.sum(dim=2, keepdim=True) + self.eps)
        feats = feats.reshape(n, feats.shape[1], -1).permute(0, 2, 1)  # (N, hw, D)
        context = torch.matmul(weights, feats)  # (N, K, D)
        return context.permute(0, 2, 1).contiguous().unsqueeze(3)


@MODELS.register_module()
class MultiLabelOCRHead(MultiLabelDecodeHeadMixin, OCRHead):
    """``OCRHead`` with C sigmoid outputs (OCRNet, cascaded after ``MultiLabelFCNHead``).

    The soft object regions come from the previous head's C logits. Stock
    ``SpatialGatherModule`` takes a softmax over the *spatial* axis separately for each
    class (not over classes), so it stays meaningful when classes overlap: each class's
    region is a distribution over pixels computed from that class's logits alone.

    Args:
        gather_mode: ``'softmax'`` (default; the stock module, so OCRNet weights carry
            over) or ``'sigmoid'`` (:class:`SigmoidSpatialGatherModule`: region = mean
            feature under the class's sigmoid probability map).
        **kwargs: as for ``OCRHead`` (``ocr_channels``, ``scale``, ...).
    """

    def __init__(self, *args: Any, gather_mode: str = 'softmax', **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if gather_mode not in ('softmax', 'sigmoid'):
            raise ConfigError(f'MultiLabelOCRHead: gather_mode must be "softmax" or '
                             f'"sigmoid", got {gather_mode!r}')
        self.gather_mode = gather_mode
        if gather_mode == 'sigmoid':
            self.spatial_gather_module = SigmoidSpatialGatherModule(self.scale)
