"""Draw multi-label masks over an image: filled with alpha, outlined, overlaps blended.

Colours are ``(R, G, B)`` triples (a data set's ``metainfo['palette']``); images are
``(H, W, 3)`` ``uint8`` **BGR** (what ``cv2.imread`` returns and ``cv2.imwrite`` expects).

Blending is sequential, class after class in channel order: inside class ``c`` the pixel
becomes ``(1 - alpha) * pixel + alpha * colour_c`` (rounded to ``uint8``). A pixel in two
classes is blended twice, so it differs from both single-class colours and the lower
layers stay visible. Outlines are drawn after all fills: a pixel of class ``c`` with a
4-neighbour outside the class (or on the image border) takes ``colour_c`` exactly.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

from ..utils.class_names import random_palette
from ..utils.errors import DataError

Colour = Tuple[int, int, int]


def default_palette(n: int) -> list:
    """``n`` ``[R, G, B]`` colours: the hand-bone colours for 29 classes, reproducible
    random colours (:func:`~mmseg_ext.utils.class_names.random_palette`) otherwise."""
    return random_palette(n)


def to_bgr(image: np.ndarray) -> np.ndarray:
    """``(H, W)`` grey or ``(H, W, 3)`` BGR ``uint8`` -> a new ``(H, W, 3)`` BGR copy."""
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 3:
        return image.copy()
    raise DataError(f'expected an (H, W) or (H, W, 3) image, got shape {image.shape}')


def outline(mask: np.ndarray, thickness: int = 1) -> np.ndarray:
    """``(H, W)`` bool: pixels of ``mask`` within ``thickness`` (4-connected steps) of a
    pixel outside it; the outside of the image counts as outside."""
    m = mask.astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    inner = cv2.erode(m, kernel, iterations=int(thickness), borderType=cv2.BORDER_CONSTANT,
                      borderValue=0)
    return (m > 0) & (inner == 0)


def overlay_masks(image: np.ndarray, masks: np.ndarray, palette: Sequence[Sequence[int]],
                  alpha: float = 0.45, outline_px: int = 1) -> np.ndarray:
    """Blend ``(C, H, W)`` masks over an image.

    Args:
        image: ``(H, W)`` grey or ``(H, W, 3)`` BGR ``uint8``.
        masks: ``(C, H, W)`` bool / {0, 1}; classes may overlap.
        palette: ``C`` ``(R, G, B)`` colours.
        alpha: fill opacity in [0, 1].
        outline_px: outline thickness in pixels (0: no outline).

    Returns:
        ``(H, W, 3)`` ``uint8`` BGR drawing (the input is not modified).
    """
    out = to_bgr(image).astype(np.float32)
    masks = np.asarray(masks).astype(bool)
    if masks.ndim != 3 or masks.shape[1:] != out.shape[:2]:
        raise DataError(f'masks {masks.shape} do not match the image {out.shape[:2]}')
    if len(palette) < masks.shape[0]:
        raise DataError(f'palette has {len(palette)} colours for {masks.shape[0]} classes')
    bgr = np.asarray(palette, np.float32)[:, ::-1]
    for c in range(masks.shape[0]):
        m = masks[c]
        if m.any():
            out[m] = np.rint((1.0 - alpha) * out[m] + alpha * bgr[c])
    if outline_px > 0:
        for c in range(masks.shape[0]):
            if masks[c].any():
                out[outline(masks[c], outline_px)] = bgr[c]
    return out.astype(np.uint8)


def label_to_masks(label: np.ndarray, num_classes: int,
                   ignore_index: Optional[int] = 255) -> np.ndarray:
    """``(H, W)`` label map -> ``(C, H, W)`` bool one-hot (``ignore_index`` in no class)."""
    masks = label[None] == np.arange(num_classes)[:, None, None]
    if ignore_index is not None and ignore_index < num_classes:
        masks[ignore_index] = False
    return masks


def side_by_side(panels: Sequence[np.ndarray], titles: Sequence[str] = (),
                 gap: int = 4) -> np.ndarray:
    """Panels of equal height next to each other, ``gap`` white columns apart, each with
    its title written in its top-left corner. Returns ``(H, sum(W) + gaps, 3)`` BGR."""
    height = panels[0].shape[0]
    parts = []
    for i, panel in enumerate(panels):
        panel = to_bgr(panel)
        if panel.shape[0] != height:
            raise ValueError('panels must have the same height')  # a bug of the caller
        if i < len(titles) and titles[i]:
            scale = max(0.3, height / 600)
            cv2.putText(panel, titles[i], (4, int(14 * scale) + 4), cv2.FONT_HERSHEY_SIMPLEX,
                        scale, (255, 255, 255), 1, cv2.LINE_AA)
        if i:
            parts.append(np.full((height, gap, 3), 255, np.uint8))
        parts.append(panel)
    return np.concatenate(parts, axis=1)
