"""Multi-label decode heads: one mixin, thin registered subclasses of stock heads."""
from .mixin import MultiLabelDecodeHeadMixin
from .multilabel_heads import (
    MultiLabelASPPHead,
    MultiLabelFCNHead,
    MultiLabelOCRHead,
    MultiLabelUPerHead,
    SigmoidSpatialGatherModule,
)

__all__ = ['MultiLabelDecodeHeadMixin', 'MultiLabelUPerHead', 'MultiLabelFCNHead',
           'MultiLabelOCRHead', 'MultiLabelASPPHead', 'SigmoidSpatialGatherModule']
