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

    def predict(self, inputs: Tensor, data_samples: Optional[List] = None) -> List:
        return self.predictor.predict(inputs, data_samples)

    def _forward(self, inputs: Tensor, data_samples: Optional[List] = None):
        return self.predictor._forward(inputs, data_samples)

    def extract_feat(self, inputs: Tensor):
        return self.predictor.extract_feat(inputs)

    def encode_decode(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        return self.predictor.encode_decode(inputs, batch_img_metas)
