"""The one mechanism that turns a stock mmseg decode head into a multi-label head.

Stock ``BaseDecodeHead`` assumes one label per pixel: ``loss_by_feat`` squeezes the
target to ``(N, H, W)`` and computes ``acc_seg`` with ``accuracy()``, which asserts
``pred.ndim == target.ndim + 1`` and so crashes on an ``(N, C, H, W)`` target. The mixin
below replaces only ``loss_by_feat`` and the channel checks; the network (``forward``),
``predict_by_feat`` (a bilinear resize of all C channels, correct as it is) and the input
handling stay the stock head's. Put it first in the bases::

    @MODELS.register_module()
    class MultiLabelUPerHead(MultiLabelDecodeHeadMixin, UPerHead):
        pass
"""
from __future__ import annotations

import warnings
from typing import Any

import torch
import torch.nn as nn
from mmseg.models.utils import resize
from mmseg.utils import SampleList
from torch import Tensor

from ...evaluation.functional import dice_from_counts, multilabel_counts
from ...utils.errors import ConfigError, DataError

#: Loss used when a head's config names none (stock default is softmax cross-entropy).
DEFAULT_LOSS = dict(type='MultiLabelBCELoss', loss_weight=1.0)


class MultiLabelDecodeHeadMixin:
    """Sigmoid multi-label behaviour for any ``BaseDecodeHead`` subclass.

    * ``out_channels`` is always ``num_classes`` (one logit per class; ``num_classes=1``
      is a plain binary head). Stock ``threshold`` is accepted and ignored: thresholds
      live in the segmentor's ``test_cfg`` (see ``MultiLabelPostProcessMixin``).
    * ``loss_decode`` entries must be multi-label losses (``multi_label = True``, e.g.
      ``MultiLabelBCELoss``, ``MultiLabelDiceLoss``); each is called as
      ``loss(logits (N, C, H, W), target (N, C, H, W) uint8, valid_mask=bool (N, C, H, W),
      ignore_index=...)`` after the logits are resized bilinearly to the target size.
      Losses with the same ``loss_name`` are summed, as in stock mmseg.
    * Instead of ``acc_seg`` the head logs ``dice_seg``: the competition Dice of
      ``logit > 0`` (sigmoid > 0.5), pooled over the batch per class, mean over classes;
      a float in [0, 1] without gradient.
    * Pixel samplers (OHEM) assume a label map and are refused.
    """

    #: Read by segmentors and tools: outputs are independent per-class sigmoid logits.
    multi_label = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        name = type(self).__name__
        if 'num_classes' not in kwargs:
            raise ConfigError(f'{name}: num_classes is required')
        num_classes = kwargs['num_classes']
        out_channels = kwargs.pop('out_channels', None)
        if out_channels is not None and out_channels != num_classes:
            raise ConfigError(f'{name}: a multi-label head has one output channel per class; '
                             f'got out_channels={out_channels}, num_classes={num_classes}')
        if kwargs.get('sampler') is not None:
            raise ConfigError(f'{name}: pixel samplers assume one label per pixel and are '
                             'not supported for multi-label heads')
        kwargs.setdefault('loss_decode', DEFAULT_LOSS)
        kwargs.setdefault('threshold', 0.5)  # unused; silences the stock binary warning
        with warnings.catch_warnings():
            warnings.filterwarnings('ignore', message='For binary segmentation')
            super().__init__(*args, out_channels=num_classes, **kwargs)
        for loss in self._loss_modules():
            if not getattr(loss, 'multi_label', False):
                raise ConfigError(f'{name}: loss_decode {type(loss).__name__} does not take '
                                '(N, C, H, W) targets; use MultiLabelBCELoss and/or '
                                'MultiLabelDiceLoss')

    def _loss_modules(self) -> list[nn.Module]:
        """The configured losses as a list (stock keeps a module or a ModuleList)."""
        losses = self.loss_decode
        return list(losses) if isinstance(losses, nn.ModuleList) else [losses]

    def _stack_multilabel_gt(self, batch_data_samples: SampleList) -> Tensor:
        """``(N, C, H, W)`` target from the samples' ``gt_sem_seg.data`` (``(C, H, W)``).

        Raises:
            DataError: a sample has no ground truth (an image without annotations in a
                training or validation set), naming its image.
        """
        for s in batch_data_samples:
            if 'gt_sem_seg' not in s:
                image = s.metainfo.get('img_path', 'an image')
                raise DataError(f'{image}: no ground truth to learn from (no annotation '
                                'file was found for it; a training set needs one per '
                                'image, e.g. outputs_json/ beside DCM/)')
        target = torch.stack([s.gt_sem_seg.data for s in batch_data_samples], dim=0)
        if target.dim() != 4 or target.shape[1] != self.out_channels:
            raise ConfigError(
                f'{type(self).__name__}: expected gt_sem_seg of shape (C={self.out_channels}, '
                f'H, W) per sample, got {tuple(target.shape[1:])}; a multi-label head needs '
                'the pipeline to pack a (C, H, W) {0, 1, 255} mask')
        return target

    def loss_by_feat(self, seg_logits: Tensor, batch_data_samples: SampleList) -> dict:
        """Losses of ``(N, C, h, w)`` logits against the samples' ``(C, H, W)`` masks.

        Returns:
            ``{loss_name: scalar, ..., 'dice_seg': scalar}``.
        """
        target = self._stack_multilabel_gt(batch_data_samples)
        seg_logits = resize(input=seg_logits, size=target.shape[2:], mode='bilinear',
                            align_corners=self.align_corners)
        if self.ignore_index is None:
            valid = torch.ones_like(target, dtype=torch.bool)
        else:
            valid = target != self.ignore_index
        losses: dict = {}
        for loss_module in self._loss_modules():
            value = loss_module(seg_logits, target, valid_mask=valid,
                                ignore_index=self.ignore_index)
            name = loss_module.loss_name
            losses[name] = losses[name] + value if name in losses else value
        with torch.no_grad():
            counts = multilabel_counts(seg_logits > 0, target, self.ignore_index,
                                       sum_dims=(0, 2, 3))
            losses['dice_seg'] = dice_from_counts(*counts).mean().to(seg_logits.dtype)
        return losses
