"""A U-Net decoder over the levels of any encoder, predicting at the input resolution.

UperNet and OCRNet predict at 1/4 of the input and DeepLabV3 at 1/8; the logits are then
resized bilinearly, which loses thin structures (finger tips, clavicles). This head
decodes the encoder's levels U-Net fashion, deepest first: each block upsamples,
concatenates the next finer level (the skip connection) and applies two 3x3 conv-norm-act
layers; blocks without a skip then double the resolution until stride 1. The last block
upsamples to the exact size of the network's input, so the logits are ``(N, C, H, W)``
for any ``H, W`` (also sizes not divisible by the encoder's stride).

Optional scSE attention (concurrent spatial and channel squeeze-and-excitation, Roy et
al. 2018) recalibrates the concatenated input and the output of each block.

``UNetHead`` is the single-label (softmax) head; ``MultiLabelUNetHead`` the sigmoid one
(:class:`~.mixin.MultiLabelDecodeHeadMixin` in front, as every multi-label head here).
"""
from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, SampleList
from torch import Tensor

from ...utils.errors import ConfigError
from .mixin import MultiLabelDecodeHeadMixin


class SCSEModule(nn.Module):
    """``x * cSE(x) + x * sSE(x)``: channel gates from the global mean (a bottleneck of
    ``channels // reduction``) and a spatial gate from a 1x1 convolution."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.channel_gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1), nn.Sigmoid())
        self.spatial_gate = nn.Sequential(nn.Conv2d(channels, 1, 1), nn.Sigmoid())

    def forward(self, x: Tensor) -> Tensor:
        return x * self.channel_gate(x) + x * self.spatial_gate(x)


class UNetDecoderBlock(nn.Module):
    """Upsample ``(N, in, h, w)`` to the skip's size (or ``size``, or 2x), concatenate
    the skip ``(N, skip, H, W)``, two 3x3 conv-norm-act -> ``(N, out, H, W)``."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int,
                 conv_cfg: Optional[ConfigType], norm_cfg: Optional[ConfigType],
                 act_cfg: ConfigType, attention: Optional[str], upsample_mode: str,
                 align_corners: bool) -> None:
        super().__init__()
        joined = in_channels + skip_channels
        self.attention_in = SCSEModule(joined) if attention and skip_channels else \
            nn.Identity()
        self.conv1 = ConvModule(joined, out_channels, 3, padding=1, conv_cfg=conv_cfg,
                                norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.conv2 = ConvModule(out_channels, out_channels, 3, padding=1, conv_cfg=conv_cfg,
                                norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.attention_out = SCSEModule(out_channels) if attention else nn.Identity()
        self.upsample_mode = upsample_mode
        self.align_corners = align_corners if upsample_mode == 'bilinear' else None

    def forward(self, x: Tensor, skip: Optional[Tensor] = None,
                size: Optional[Tuple[int, int]] = None) -> Tensor:
        if skip is not None:
            size = tuple(skip.shape[-2:])
        elif size is None:
            size = (x.shape[-2] * 2, x.shape[-1] * 2)
        x = F.interpolate(x, size=size, mode=self.upsample_mode,
                          align_corners=self.align_corners)
        if skip is not None:
            x = self.attention_in(torch.cat([x, skip], dim=1))
        return self.attention_out(self.conv2(self.conv1(x)))


def default_decoder_channels(num_blocks: int, first: int = 256, smallest: int = 16
                             ) -> Tuple[int, ...]:
    """``first`` halved at every block, never below ``smallest`` (256, 128, 64, 32, 16)."""
    return tuple(max(first >> i, smallest) for i in range(num_blocks))


@MODELS.register_module()
class UNetHead(BaseDecodeHead):
    """U-Net decoder over multi-level encoder features; logits at input resolution.

    Args:
        in_channels: channels of the encoder levels used, finest first, e.g.
            ``(96, 192, 384, 768)`` for a ConvNeXt at strides 4, 8, 16, 32.
        in_index: the indices of those levels in the backbone's outputs.
        in_strides: stride of each level (input pixels per feature pixel), finest
            first; each twice the previous and a power of 2, e.g. ``(4, 8, 16, 32)`` or
            ``(2, 4, 8, 16, 32)``.
        decoder_channels: output channels of each decoder block, deepest first: one
            block per skip level (``len(in_channels) - 1``), then one per doubling from
            the finest stride to 1 (``log2(in_strides[0])``). Default: 256 halved at
            every block, at least 16. The last value is the head's ``channels``.
        attention: ``None`` or ``'scse'`` (in each block).
        upsample_mode: ``'bilinear'`` (default) or ``'nearest'``.
        **kwargs: :class:`~mmseg.models.decode_heads.decode_head.BaseDecodeHead`
            arguments (``num_classes``, ``norm_cfg``, ``dropout_ratio``, ``loss_decode``,
            ``align_corners``, ...). ``channels`` and ``input_transform`` are set here.

    Shapes: inputs are the backbone's levels; ``forward`` returns ``(N, C, H, W)``
    logits, ``H, W`` the network input's size when the data samples give it (training
    and inference through the segmentor), else ``in_strides[0]`` times the finest
    level's size.
    """

    def __init__(self, in_channels: Sequence[int], in_index: Sequence[int],
                 in_strides: Sequence[int],
                 decoder_channels: Optional[Sequence[int]] = None,
                 attention: Optional[str] = None, upsample_mode: str = 'bilinear',
                 **kwargs) -> None:
        name = type(self).__name__
        in_channels, in_index = list(in_channels), list(in_index)
        strides = [int(s) for s in in_strides]
        if not (len(in_channels) == len(in_index) == len(strides)) or len(strides) < 2:
            raise ConfigError(f'{name}: in_channels, in_index and in_strides need one entry '
                              f'per level (at least 2), got {len(in_channels)}, '
                              f'{len(in_index)} and {len(strides)}')
        if strides[0] < 1 or strides[0] & (strides[0] - 1) or \
                any(b != 2 * a for a, b in zip(strides, strides[1:])):
            raise ConfigError(f'{name}: in_strides must be powers of 2, each twice the '
                              f'previous (finest first), got {tuple(strides)}')
        extra = int(math.log2(strides[0]))
        num_blocks = len(strides) - 1 + extra
        decoder_channels = tuple(decoder_channels or default_decoder_channels(num_blocks))
        if len(decoder_channels) != num_blocks:
            raise ConfigError(f'{name}: decoder_channels needs {num_blocks} values '
                              f'({len(strides) - 1} skip levels + {extra} doublings from '
                              f'stride {strides[0]} to 1), got {len(decoder_channels)}')
        if attention not in (None, 'scse'):
            raise ConfigError(f"{name}: attention must be None or 'scse', got {attention!r}")
        if upsample_mode not in ('bilinear', 'nearest'):
            raise ConfigError(f"{name}: upsample_mode must be 'bilinear' or 'nearest', got "
                              f'{upsample_mode!r}')
        kwargs.pop('channels', None)
        kwargs.pop('input_transform', None)
        super().__init__(in_channels, decoder_channels[-1], in_index=in_index,
                         input_transform='multiple_select', **kwargs)
        self.in_strides = tuple(strides)
        self.decoder_channels = decoder_channels
        skips = in_channels[-2::-1] + [0] * extra        # deepest skip first
        ins = [in_channels[-1], *decoder_channels[:-1]]
        self.blocks = nn.ModuleList(
            UNetDecoderBlock(i, s, o, self.conv_cfg, self.norm_cfg, self.act_cfg,
                             attention, upsample_mode, self.align_corners)
            for i, s, o in zip(ins, skips, decoder_channels))
        self._out_size: Optional[Tuple[int, int]] = None

    def forward(self, inputs: List[Tensor]) -> Tensor:
        """``(N, C, H, W)`` logits of the levels ``inputs`` (see the class doc)."""
        feats = self._transform_inputs(inputs)
        got = [int(f.shape[1]) for f in feats]
        if got != list(self.in_channels):
            raise ConfigError(f'{type(self).__name__}: in_channels {list(self.in_channels)}, '
                              f'but the backbone levels {list(self.in_index)} have {got} '
                              'channels')
        x = feats[-1]
        for i, block in enumerate(self.blocks):
            skip = feats[-2 - i] if i < len(feats) - 1 else None
            last = i == len(self.blocks) - 1
            x = block(x, skip, self._out_size if last and skip is None else None)
        return self.cls_seg(x)

    def _forward_at(self, inputs: List[Tensor], size: Tuple[int, int]) -> Tensor:
        self._out_size = (int(size[0]), int(size[1]))
        try:
            return self.forward(inputs)
        finally:
            self._out_size = None

    def loss(self, inputs: Tuple[Tensor], batch_data_samples: SampleList,
             train_cfg: ConfigType) -> dict:
        # the batch tensor's size: stack_batch records it as pad_shape (img_shape is the
        # sample's own, unpadded size then)
        meta = batch_data_samples[0].metainfo
        size = tuple(meta.get('pad_shape', meta['img_shape'])[:2])
        return self.loss_by_feat(self._forward_at(list(inputs), size), batch_data_samples)

    def predict(self, inputs: Tuple[Tensor], batch_img_metas: List[dict],
                test_cfg: ConfigType) -> Tensor:
        size = _input_size(batch_img_metas[0])
        return self.predict_by_feat(self._forward_at(list(inputs), size), batch_img_metas)


def _input_size(meta: dict) -> Tuple[int, int]:
    """The size of the network input a sample went through, as mmseg's
    ``predict_by_feat`` reads it: the crop of slide inference (``img_shape`` as a
    ``torch.Size``), else the padded batch (``pad_shape``), else ``img_shape``."""
    if isinstance(meta['img_shape'], torch.Size):
        return tuple(meta['img_shape'][:2])
    if 'pad_shape' in meta:
        return tuple(meta['pad_shape'][:2])
    return tuple(meta['img_shape'][:2])


@MODELS.register_module()
class MultiLabelUNetHead(MultiLabelDecodeHeadMixin, UNetHead):
    """:class:`UNetHead` with C sigmoid outputs (one per class, overlapping classes)."""
