"""Metrics (registered in ``mmseg.registry.METRICS``); names imported on first access."""
from ..utils.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    'MultiLabelDiceMetric': '.dice_metric',
    'PerImageIoUMetric': '.per_image_iou',
    'COMPETITION_EPS': '.functional',
    'dice_from_counts': '.functional',
    'multilabel_counts': '.functional',
    'Validation': '.val_history',
    'validation_history': '.val_history',
})
