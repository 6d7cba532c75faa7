"""From stored probabilities to masks at the original image size.

Stored probabilities (:mod:`mmseg_ext.io.probs`) are ``(C, h, w)`` ``uint8``
(``p = q / 255``) or ``float16``. Every consumer (ensemble, submission, threshold tuner)
goes through these functions, so the same pixel gets the same decision everywhere:

* resizing is bilinear with half-pixel centres (``cv2.INTER_LINEAR``, the same sampling as
  ``torch.nn.functional.interpolate(mode='bilinear', align_corners=False)``), one class at
  a time; ``uint8`` stays ``uint8`` (cv2's fixed-point rounding, error < 1/255);
* :func:`upsample_class` resizes only a class's bounding box (plus one pixel of zeros)
  when the scale is an integer factor per axis (512 -> 2048), which gives exactly the
  full-image result (``tests/inference/test_probmaps.py`` checks it) at a fraction of the cost;
* a multi-label pixel is foreground when ``p > t``; for ``uint8`` that is
  ``q >= threshold_level(t)``;
* a multi-class pixel takes the class of the highest probability (first class on ties).
"""
from __future__ import annotations

import math
from typing import Tuple

import cv2
import numpy as np

from ..io.prob_file import CroppedProbs


def resize_channel(channel: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """Bilinear resize of one ``(h, w)`` map to ``size = (H, W)``; ``uint8`` and
    ``float32`` are kept, ``float16`` comes back as ``float32``."""
    h, w = size
    if channel.dtype == np.float16:
        channel = channel.astype(np.float32)
    if channel.shape == (h, w):
        return channel
    return cv2.resize(channel, (int(w), int(h)), interpolation=cv2.INTER_LINEAR)


def resize_probs(probs: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """Bilinear resize of ``(C, h, w)`` probabilities to ``(C, H, W)``, class by class."""
    return np.stack([resize_channel(c, size) for c in probs])


def _upsample_region(probs: CroppedProbs, c: int, size: Tuple[int, int]):
    """``(region, (y0, y1, x0, x1))``: class ``c`` resized to ``size``, computed and
    returned only inside the region that can be non-zero, or None when the fast path does
    not apply (not an integer scale factor) or the class is empty."""
    H, W = (int(v) for v in size)
    h, w = probs.shape[1:]
    box = probs.box(c)
    if box is None or (h, w) == (H, W) or H % h or W % w:
        return None
    ky, kx = H // h, W // w
    r0, r1, c0, c1 = box
    # one pixel of zeros around the box (or the image border): cv2's border replication
    # inside the crop then sees the same values as the full image would
    rm0, rm1, cm0, cm1 = max(0, r0 - 1), min(h, r1 + 1), max(0, c0 - 1), min(w, c1 + 1)
    src = np.zeros((rm1 - rm0, cm1 - cm0), probs.dtype)
    src[r0 - rm0:r1 - rm0, c0 - cm0:c1 - cm0] = probs.crops[c]
    region = resize_channel(src, ((rm1 - rm0) * ky, (cm1 - cm0) * kx))
    return region, (rm0 * ky, rm1 * ky, cm0 * kx, cm1 * kx)


def upsample_class(probs: CroppedProbs, c: int, size: Tuple[int, int]) -> np.ndarray:
    """``resize_channel(probs.channel(c), size)``, computed on the class's box only when
    the scale is an integer factor on both axes (exactly the same values)."""
    out_dtype = np.uint8 if probs.dtype == np.uint8 else np.float32
    if probs.box(c) is None:
        return np.zeros(tuple(int(v) for v in size), out_dtype)
    fast = _upsample_region(probs, c, size)
    if fast is None:
        return resize_channel(probs.channel(c), size)
    region, (y0, y1, x0, x1) = fast
    out = np.zeros(tuple(int(v) for v in size), out_dtype)
    out[y0:y1, x0:x1] = region
    return out


def threshold_level(t: float) -> int:
    """Smallest ``uint8`` level ``q`` with ``q / 255 > t`` (256: no level; 0: all)."""
    return min(256, max(0, math.floor(255.0 * float(t)) + 1))


def level_threshold(level: int) -> float:
    """A threshold ``t`` with ``threshold_level(t) == level`` (the midpoint below it)."""
    return (level - 0.5) / 255.0


def searched_threshold(level: int, lo: float, hi: float) -> float:
    """The threshold written for ``level`` found by a search over ``[lo, hi]``: the
    level's midpoint (:func:`level_threshold`, to 6 decimals), moved into ``[lo, hi]``
    where it lies outside. Both ends map to their own level, so the value written keeps
    ``threshold_level(t) == level`` and is never outside the range searched (the level
    of ``lo = 0.999`` is 255, whose midpoint 0.998039 is below it)."""
    return min(max(round(level_threshold(level), 6), float(lo)), float(hi))


def threshold_map(up: np.ndarray, threshold: float) -> np.ndarray:
    """``(H, W)`` bool ``p > threshold`` of a resized map (``uint8`` levels or float)."""
    if up.dtype == np.uint8:
        level = threshold_level(threshold)
        if level >= 256:
            return np.zeros(up.shape, np.bool_)
        return up >= level
    return up > threshold


def class_mask(channel: np.ndarray, size: Tuple[int, int], threshold: float) -> np.ndarray:
    """``(H, W)`` bool mask ``p > threshold`` of one stored channel resized to ``size``."""
    return threshold_map(resize_channel(channel, size), threshold)


def cropped_class_mask(probs: CroppedProbs, c: int, size: Tuple[int, int],
                       threshold: float) -> np.ndarray:
    """:func:`class_mask` of class ``c`` of :class:`CroppedProbs` (same result; only the
    class's box is resized and thresholded when the scale is an integer factor)."""
    size = tuple(int(v) for v in size)
    if probs.box(c) is None and threshold >= 0:
        return np.zeros(size, np.bool_)
    fast = _upsample_region(probs, c, size)
    if fast is None:
        return threshold_map(upsample_class(probs, c, size), threshold)
    region, (y0, y1, x0, x1) = fast
    out = np.zeros(size, np.bool_)
    out[y0:y1, x0:x1] = threshold_map(region, threshold)
    return out


def label_dtype(num_classes: int) -> np.dtype:
    """The smallest unsigned integer dtype holding class indices ``0..num_classes-1``
    (``uint8`` up to 256 classes, then ``uint16``, then ``uint32``)."""
    for dtype in (np.uint8, np.uint16):
        if num_classes <= np.iinfo(dtype).max + 1:
            return np.dtype(dtype)
    return np.dtype(np.uint32)


def label_map(probs: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """``(H, W)`` argmax of ``(C, h, w)`` probabilities resized to ``size``: ``uint8``
    up to 256 classes, a wider unsigned dtype beyond (:func:`label_dtype`), so a class
    index never wraps."""
    best = resize_channel(probs[0], size).copy()  # updated in place below
    labels = np.zeros(best.shape, label_dtype(probs.shape[0]))
    for c in range(1, probs.shape[0]):
        up = resize_channel(probs[c], size)
        better = up > best
        labels[better] = c
        np.maximum(best, up, out=best)
    return labels
