"""Visual inspection: overlays of multi-label masks, metric charts, a visualizer
registered in ``mmseg.registry.VISUALIZERS`` (``MultiLabelSegLocalVisualizer``).

Names are imported on first access: the drawing modules need neither torch nor mmseg.
"""
from ..utils.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    'MultiLabelSegLocalVisualizer': '.visualizer',
    'bar_chart': '.charts', 'confusion_image': '.charts', 'confusion_matrix': '.charts',
    'read_class_metrics': '.charts',
    'label_to_masks': '.overlay', 'outline': '.overlay', 'overlay_masks': '.overlay',
    'side_by_side': '.overlay',
})
