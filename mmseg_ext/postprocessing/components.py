"""Connected-component clean-up of binary masks before they are written.

Both operations look only at the bounding box of the foreground
(:func:`mmseg_ext.io.rle.mask_bbox`), so a small bone in a 2048x2048 mask is cheap.
Components use 8-connectivity by default (4 on request), as ``cv2.connectedComponents``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict

import cv2
import numpy as np

from ..io.rle import mask_bbox
from ..utils.errors import InvalidArgumentError


def _components(crop: np.ndarray, connectivity: int):
    n, labels, stats, _ = cv2.connectedComponentsWithStats(
        crop.astype(np.uint8, copy=False), connectivity=connectivity)
    return n, labels, stats[:, cv2.CC_STAT_AREA]


def filter_components(mask: np.ndarray, min_area: int = 0, keep_largest: int = 0,
                      connectivity: int = 8) -> np.ndarray:
    """Drop components smaller than ``min_area`` pixels, then keep the ``keep_largest``
    largest (0 = no limit; ties go to the component met first in raster order).

    Args:
        mask: ``(H, W)`` bool or {0, 1} array.
        min_area: components with fewer pixels are removed (0: keep all).
        keep_largest: keep at most this many components (0: all).
        connectivity: 4 or 8.

    Returns:
        ``(H, W)`` bool mask (a new array; the input is not modified).
    """
    if connectivity not in (4, 8):
        raise InvalidArgumentError('connectivity', f'must be 4 or 8, got {connectivity}')
    out = np.asarray(mask).astype(np.bool_, copy=True)
    if min_area <= 0 and keep_largest <= 0:
        return out
    box = mask_bbox(out)
    if box is None:
        return out
    r0, r1, c0, c1 = box
    crop = out[r0:r1 + 1, c0:c1 + 1]
    n, labels, areas = _components(crop, connectivity)
    keep = np.zeros(n, np.bool_)
    keep[1:] = areas[1:] >= max(min_area, 1)
    if keep_largest > 0 and keep.sum() > keep_largest:
        candidates = np.flatnonzero(keep)
        order = candidates[np.argsort(-areas[candidates], kind='stable')]
        keep[:] = False
        keep[order[:keep_largest]] = True
    out[r0:r1 + 1, c0:c1 + 1] = keep[labels]
    return out


def remove_small_components(mask: np.ndarray, min_area: int,
                            connectivity: int = 8) -> np.ndarray:
    """Remove the components with fewer than ``min_area`` pixels (bool result)."""
    return filter_components(mask, min_area=min_area, connectivity=connectivity)


def keep_largest_components(mask: np.ndarray, k: int = 1, connectivity: int = 8
                            ) -> np.ndarray:
    """Keep only the ``k`` largest components (bool result)."""
    return filter_components(mask, keep_largest=k, connectivity=connectivity)


@dataclass
class ComponentFilter:
    """Per-class :func:`filter_components`: ``{class: N}`` minimum areas and
    ``{class: K}`` largest components to keep (classes not named are left alone)."""
    min_area: Dict[str, int]
    keep_largest: Dict[str, int]
    connectivity: int = 8

    def __call__(self, mask: np.ndarray, cls: str) -> np.ndarray:
        """The cleaned ``(H, W)`` bool mask of class ``cls`` (``mask`` itself when the
        class has no setting)."""
        a, k = self.min_area.get(cls, 0), self.keep_largest.get(cls, 0)
        if a <= 0 and k <= 0:
            return mask
        return filter_components(mask, a, k, self.connectivity)

    @property
    def active(self) -> bool:
        return any(v > 0 for v in self.min_area.values()) or \
            any(v > 0 for v in self.keep_largest.values())
