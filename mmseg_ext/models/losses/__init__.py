"""Multi-label losses on ``(N, C, H, W)`` logits and targets (``mmseg.registry.MODELS``)."""
from .base import MultiLabelLoss
from .multilabel_bce import MultiLabelBCELoss
from .multilabel_dice import MultiLabelDiceLoss

__all__ = ['MultiLabelBCELoss', 'MultiLabelDiceLoss', 'MultiLabelLoss']
