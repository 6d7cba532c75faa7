"""Batch-level augmentation for segmentation: CutMix of images and their masks.

Stock ``SegDataPreProcessor`` accepts ``batch_augments`` but stores the config list
unbuilt and then calls it, which fails (mmseg marks it "TODO"). Here
:class:`BatchAugmentSegDataPreProcessor` builds each entry from ``MODELS`` and applies them
in order to the stacked training batch; :class:`SegCutMix` pastes a random box of another
image of the batch, with its label, into each image. CutMix is the strong augmentation
of the self-training recipe (ST++, UniMatch): it breaks the context a pseudo-labelled
image shares with its errors. It works for multi-class ``(1, H, W)`` label maps and
multi-label ``(C, H, W)`` masks alike.
"""
from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple

import torch
from mmseg.models.data_preprocessor import SegDataPreProcessor
from mmseg.registry import MODELS
from torch import Tensor

from ...utils.errors import ConfigError


@MODELS.register_module()
class SegCutMix:
    """Paste a random box of another image of the batch (and its label) into an image.

    For every image ``i``, with probability ``prob``, a box of ``area`` (a fraction of the
    image, uniform in ``area_range``) and aspect ratio uniform in ``ratio_range`` (width
    / height) is taken at a uniform position from image ``j`` (the batch rolled by one,
    so every image gives one box) and written into image ``i``: pixels of ``inputs`` and
    of every segmentation field of the data sample (``gt_sem_seg`` and, if present,
    ``gt_edge_map``). Uses torch's global random generator.

    Args:
        prob: probability of mixing each image.
        area_range: box area as a fraction of the image.
        ratio_range: box width / height.
    """

    def __init__(self, prob: float = 0.5, area_range: Tuple[float, float] = (0.02, 0.4),
                 ratio_range: Tuple[float, float] = (0.3, 1 / 0.3)) -> None:
        if not 0.0 <= prob <= 1.0:
            raise ConfigError(f'SegCutMix: prob must be in [0, 1], got {prob}')
        if not 0.0 < area_range[0] <= area_range[1] <= 1.0:
            raise ConfigError(f'SegCutMix: area_range must lie in (0, 1], got {area_range}')
        if not 0.0 < ratio_range[0] <= ratio_range[1]:
            raise ConfigError(f'SegCutMix: ratio_range must be positive, got {ratio_range}')
        self.prob = prob
        self.area_range = area_range
        self.ratio_range = ratio_range

    def box(self, height: int, width: int) -> Tuple[int, int, int, int]:
        """A random ``(top, bottom, left, right)`` box inside an ``height x width`` image."""
        area = torch.empty(1).uniform_(*self.area_range).item() * height * width
        ratio = math.exp(torch.empty(1).uniform_(math.log(self.ratio_range[0]),
                                                 math.log(self.ratio_range[1])).item())
        h = max(1, min(height, int(round(math.sqrt(area / ratio)))))
        w = max(1, min(width, int(round(math.sqrt(area * ratio)))))
        top = int(torch.randint(0, height - h + 1, (1,)).item())
        left = int(torch.randint(0, width - w + 1, (1,)).item())
        return top, top + h, left, left + w

    def __call__(self, inputs: Tensor, data_samples: Sequence) -> Tuple[Tensor, Sequence]:
        """Mix ``inputs`` ``(N, C, H, W)`` and the samples' maps in place; return both."""
        n, _, height, width = inputs.shape
        if n < 2:
            return inputs, data_samples
        chosen = torch.rand(n) < self.prob
        sources = inputs.clone()
        fields = [name for name in ('gt_sem_seg', 'gt_edge_map')
                  if all(name in s for s in data_samples)]
        maps = {name: [s.get(name).data.clone() for s in data_samples] for name in fields}
        for i in torch.nonzero(chosen).flatten().tolist():
            j = (i + 1) % n
            top, bottom, left, right = self.box(height, width)
            box = (..., slice(top, bottom), slice(left, right))
            inputs[i][box] = sources[j][box]
            for name in fields:
                data_samples[i].get(name).data[box] = maps[name][j][box]
        return inputs, data_samples


@MODELS.register_module()
class BatchAugmentSegDataPreProcessor(SegDataPreProcessor):
    """``SegDataPreProcessor`` whose ``batch_augments`` work.

    Args:
        batch_augments: configs of batch augmentations (``MODELS`` types such as
            :class:`SegCutMix`), applied in order to the padded training batch only.
        **kwargs: ``SegDataPreProcessor``'s arguments (mean, std, size, ...).
    """

    def __init__(self, batch_augments: Optional[List[dict]] = None, **kwargs) -> None:
        super().__init__(batch_augments=None, **kwargs)
        self.augments = [MODELS.build(cfg) for cfg in (batch_augments or [])]

    def forward(self, data: dict, training: bool = False) -> dict:
        data = super().forward(data, training)
        if training:
            inputs, samples = data['inputs'], data['data_samples']
            for augment in self.augments:
                inputs, samples = augment(inputs, samples)
            data = dict(inputs=inputs, data_samples=samples)
        return data
