"""Multi-label heads, losses and segmentors, batch augmentation (registered in
``mmseg.registry.MODELS``)."""
from .data_preprocessors import BatchAugmentSegDataPreProcessor, SegCutMix
from .heads import (
    MultiLabelASPPHead,
    MultiLabelDecodeHeadMixin,
    MultiLabelFCNHead,
    MultiLabelOCRHead,
    MultiLabelUNetHead,
    MultiLabelUPerHead,
    UNetHead,
)
from .losses import MultiLabelBCELoss, MultiLabelDiceLoss
from .segmentors import (
    MeanTeacherSegmentor,
    MultiLabelCascadeEncoderDecoder,
    MultiLabelEncoderDecoder,
    MultiLabelPostProcessMixin,
    MultiLabelSegTTAModel,
)

__all__ = [
    'MultiLabelDecodeHeadMixin', 'MultiLabelUPerHead', 'MultiLabelFCNHead',
    'MultiLabelOCRHead', 'MultiLabelASPPHead', 'UNetHead', 'MultiLabelUNetHead',
    'MultiLabelBCELoss', 'MultiLabelDiceLoss',
    'MultiLabelPostProcessMixin', 'MultiLabelEncoderDecoder',
    'MultiLabelCascadeEncoderDecoder', 'MultiLabelSegTTAModel', 'MeanTeacherSegmentor',
    'BatchAugmentSegDataPreProcessor', 'SegCutMix',
]
