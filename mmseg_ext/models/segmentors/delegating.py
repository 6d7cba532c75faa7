"""The inference side of a semi-supervised training wrapper: one wrapped segmentor's."""
from __future__ import annotations

from typing import List, Optional

from mmseg.models.segmentors.base import BaseSegmentor
from torch import Tensor


class PredictorDelegatingSegmentor(BaseSegmentor):
    """A segmentor that trains segmentors it wraps (a mean teacher's student and
    teacher, a weak-to-strong student) and predicts with one of them, ``predictor``:
    ``predict``, ``_forward``, ``extract_feat`` and ``encode_decode`` are that
    segmentor's, so tools, TTA and export see an ordinary segmentor. Subclasses give
    ``predictor`` and ``loss``."""

    @property
    def predictor(self) -> BaseSegmentor:
        raise NotImplementedError

    # --- what tools and TTA models read of a segmentor: the predictor's ----------------
    # (mmseg's SegTTAModel reads ``module.out_channels`` and, for one channel,
    # ``module.decode_head.threshold``; tools read ``num_classes``/``align_corners``)
    @property
    def out_channels(self) -> int:
        return self.predictor.out_channels

    @property
    def num_classes(self) -> int:
        return self.predictor.num_classes

    @property
    def align_corners(self) -> bool:
        return self.predictor.align_corners

    @property
    def decode_head(self):
        return self.predictor.decode_head

    @property
    def dataset_meta(self) -> Optional[dict]:
        """The predictor's ``dataset_meta`` (class names for per-class thresholds)."""
        return getattr(self.predictor, 'dataset_meta', None)

    @dataset_meta.setter
    def dataset_meta(self, meta: Optional[dict]) -> None:
        # every wrapped segmentor (a mean teacher's student and teacher): either may
        # be the predictor
        for module in self.children():
            if isinstance(module, BaseSegmentor):
                module.dataset_meta = meta

    def predict(self, inputs: Tensor, data_samples: Optional[List] = None) -> List:
        return self.predictor.predict(inputs, data_samples)

    def _forward(self, inputs: Tensor, data_samples: Optional[List] = None):
        return self.predictor._forward(inputs, data_samples)

    def extract_feat(self, inputs: Tensor):
        return self.predictor.extract_feat(inputs)

    def encode_decode(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        return self.predictor.encode_decode(inputs, batch_img_metas)
