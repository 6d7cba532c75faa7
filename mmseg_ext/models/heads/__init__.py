"""Decode heads: the multi-label mixin, thin multi-label subclasses of stock heads, and
the U-Net decoder (single- and multi-label)."""
from .mixin import MultiLabelDecodeHeadMixin
from .multilabel_heads import (
    MultiLabelASPPHead,
    MultiLabelFCNHead,
    MultiLabelOCRHead,
    MultiLabelSegformerHead,
    MultiLabelUPerHead,
    SigmoidSpatialGatherModule,
)
from .unet_head import MultiLabelUNetHead, SCSEModule, UNetHead

__all__ = ['MultiLabelDecodeHeadMixin', 'MultiLabelUPerHead', 'MultiLabelFCNHead',
           'MultiLabelOCRHead', 'MultiLabelASPPHead', 'SigmoidSpatialGatherModule',
           'MultiLabelSegformerHead', 'UNetHead', 'MultiLabelUNetHead', 'SCSEModule']
