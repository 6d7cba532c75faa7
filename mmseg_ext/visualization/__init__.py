"""Visual inspection: overlays of multi-label masks, metric charts, a visualizer
registered in ``mmseg.registry.VISUALIZERS`` (``MultiLabelSegLocalVisualizer``)."""
from .charts import bar_chart, confusion_image, confusion_matrix, read_class_metrics
from .overlay import label_to_masks, outline, overlay_masks, side_by_side
from .visualizer import MultiLabelSegLocalVisualizer

__all__ = ['MultiLabelSegLocalVisualizer', 'bar_chart', 'confusion_image',
           'confusion_matrix', 'label_to_masks', 'outline', 'overlay_masks',
           'read_class_metrics', 'side_by_side']
