"""Test-time augmentation for multi-label segmentors: average sigmoid probabilities."""
from __future__ import annotations

from typing import List

import torch
from mmengine.model import BaseTTAModel
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg.utils import SampleList

from ...utils.errors import ConfigError

#: Probabilities are clamped to [eps, 1 - eps] before turning the mean back into logits.
LOGIT_EPS = 1e-6


def unswap_flipped(probs: torch.Tensor, metainfo: dict) -> torch.Tensor:
    """``(C, H, W)`` probabilities of a horizontally flipped view (already un-flipped in
    space by the segmentor) with the channels of its lateral pairs
    (``metainfo['flip_swap_pairs']``) exchanged back: in the mirrored image the left lung
    looked like a right one. Other views are returned as they are."""
    pairs = metainfo.get('flip_swap_pairs')
    if not pairs or not metainfo.get('flip') or \
            metainfo.get('flip_direction') != 'horizontal':
        return probs
    order = list(range(probs.shape[0]))
    for a, b in pairs:
        order[a], order[b] = order[b], order[a]
    return probs[order]


@MODELS.register_module()
class MultiLabelSegTTAModel(BaseTTAModel):
    """Merge TTA views (flips, scales) of a multi-label segmentor.

    Each view is predicted by the wrapped ``module`` (a ``MultiLabel*EncoderDecoder``),
    whose post-processing already un-flips and resizes the view's logits to the original
    size; a flipped view's lateral pairs are swapped back (:func:`unswap_flipped`). The merge averages the per-view probabilities ``sigmoid(logits)`` (not the
    logits, not a softmax) and thresholds the mean per class with the module's
    ``test_cfg.threshold``. Output per image:

    * ``pred_sem_seg``: ``uint8`` ``(C, H0, W0)``, ``mean_prob > threshold_c``;
    * ``seg_logits``: ``logit(mean_prob)`` (``(C, H0, W0)`` float, clamped at
      ``LOGIT_EPS``), so ``sigmoid(seg_logits)`` gives the averaged probabilities back;
    * metainfo and ``gt_sem_seg`` of the first view.
    """

    multi_label = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not getattr(self.module, 'multi_label', False):
            raise ConfigError(f'MultiLabelSegTTAModel: {type(self.module).__name__} is not a '
                            'multi-label segmentor; use SegTTAModel for softmax models')

    def merge_preds(self, data_samples_list: List[SampleList]) -> SampleList:
        """``[[view_1, ..., view_k] per image]`` -> one merged sample per image."""
        merged = []
        for views in data_samples_list:
            first = views[0]
            probs = torch.zeros_like(first.seg_logits.data, dtype=torch.float32)
            for view in views:
                probs += unswap_flipped(view.seg_logits.data.float().sigmoid(),
                                        view.metainfo)
            probs /= len(views)
            thresholds = self.module.class_thresholds(probs.device).view(-1, 1, 1)
            sample = SegDataSample(metainfo=first.metainfo)
            sample.set_data({
                'seg_logits': PixelData(data=torch.logit(probs, eps=LOGIT_EPS)),
                'pred_sem_seg': PixelData(data=(probs > thresholds).to(torch.uint8)),
            })
            if 'gt_sem_seg' in first:
                sample.gt_sem_seg = first.gt_sem_seg
            merged.append(sample)
        return merged
