"""Multi-label segmentors: stock ``EncoderDecoder`` / ``CascadeEncoderDecoder`` with
sigmoid + per-class threshold post-processing (:class:`MultiLabelPostProcessMixin`)."""
from __future__ import annotations

from mmseg.models.segmentors import CascadeEncoderDecoder, EncoderDecoder
from mmseg.registry import MODELS

from .postprocess import MultiLabelPostProcessMixin


@MODELS.register_module()
class MultiLabelEncoderDecoder(MultiLabelPostProcessMixin, EncoderDecoder):
    """``EncoderDecoder`` for overlapping classes (UPerNet, DeepLabV3, ...).

    Training, whole and slide inference are stock (slide inference averages the C
    logits of overlapping windows); every head must be a ``MultiLabel*`` head.
    """


@MODELS.register_module()
class MultiLabelCascadeEncoderDecoder(MultiLabelPostProcessMixin, CascadeEncoderDecoder):
    """``CascadeEncoderDecoder`` for overlapping classes (OCRNet: ``MultiLabelFCNHead``
    then ``MultiLabelOCRHead``)."""
