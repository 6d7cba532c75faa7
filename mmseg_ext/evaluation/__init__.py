"""Metrics (registered in ``mmseg.registry.METRICS``)."""
from .dice_metric import MultiLabelDiceMetric
from .functional import COMPETITION_EPS, dice_from_counts, multilabel_counts
from .per_image_iou import PerImageIoUMetric  # noqa: F401

__all__ = ['MultiLabelDiceMetric', 'COMPETITION_EPS', 'dice_from_counts', 'multilabel_counts']
