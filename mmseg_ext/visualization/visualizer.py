"""A segmentation visualizer that draws multi-label ``(C, H, W)`` masks."""
from __future__ import annotations

from typing import List, Optional

import cv2
import numpy as np
from mmengine.structures import PixelData
from mmseg.registry import VISUALIZERS
from mmseg.visualization import SegLocalVisualizer

from .overlay import default_palette, overlay_masks


@VISUALIZERS.register_module()
class MultiLabelSegLocalVisualizer(SegLocalVisualizer):
    """``SegLocalVisualizer`` that understands multi-label ground truth / predictions.

    When ``gt_sem_seg`` / ``pred_sem_seg`` hold ``(C, H, W)`` data with ``C > 1`` (one
    binary plane per class, as the multi-label models and ``LoadHandBoneAnnotations``
    produce), every class is blended in its palette colour and outlined
    (:func:`mmseg_ext.visualization.overlay.overlay_masks`); overlapping classes stay
    visible. ``(1, H, W)`` label maps are drawn by the stock code. Use it in a config::

        visualizer = dict(type='MultiLabelSegLocalVisualizer', name='visualizer',
                          vis_backends=[dict(type='LocalVisBackend')], alpha=0.45)
        default_hooks = dict(visualization=dict(type='SegVisualizationHook',
                                                draw=True, interval=50))

    Args:
        alpha: fill opacity in [0, 1] (also used by the stock single-label drawing).
        outline_px: outline thickness in pixels for multi-label drawings.
        kwargs: as ``SegLocalVisualizer``.
    """

    def __init__(self, name: str = 'visualizer', alpha: float = 0.45, outline_px: int = 1,
                 **kwargs) -> None:
        super().__init__(name=name, alpha=alpha, **kwargs)
        self.outline_px = int(outline_px)

    def _draw_sem_seg(self, image: np.ndarray, sem_seg: PixelData, classes: Optional[List],
                      palette: Optional[List], with_labels: Optional[bool] = True
                      ) -> np.ndarray:
        """Draw ``sem_seg`` over ``image`` (``(H, W, 3)`` uint8 **RGB**, the hook's
        channel order); returns an RGB ``uint8`` array of the same size."""
        data = sem_seg.data
        data = data.cpu().numpy() if hasattr(data, 'cpu') else np.asarray(data)
        if data.ndim != 3 or data.shape[0] <= 1:
            return super()._draw_sem_seg(image, sem_seg, classes, palette, with_labels)
        if not palette or len(palette) < data.shape[0]:
            palette = default_palette(data.shape[0])
        bgr = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR)
        if data.shape[1:] != bgr.shape[:2]:
            raise ValueError(f'mask {data.shape[1:]} and image {bgr.shape[:2]} differ in '
                             'size')  # a bug: the hook pairs them
        masks = (data != 0) & (data != 255)
        drawn = overlay_masks(bgr, masks, palette, self.alpha, self.outline_px)
        return cv2.cvtColor(drawn, cv2.COLOR_BGR2RGB)
