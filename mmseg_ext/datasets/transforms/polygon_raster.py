"""Rasterise polygons into a multi-label ``(H, W, C)`` uint8 mask.

Three functions, all with ``cv2.fillPoly`` semantics (the interior and the boundary of
each polygon are painted; vertices are rounded to the nearest integer pixel):

- :func:`rasterize_full`: the mask at the annotated resolution. Each polygon is filled
  into a small contiguous buffer the size of its bounding box, which is OR-ed into its
  channel; no full-size ``(H, W)`` temporary per class and no full-array transpose.
- :func:`rasterize_nearest`: the mask **bit-identical** to
  ``cv2.resize(rasterize_full(...), (w, h), interpolation=cv2.INTER_NEAREST)`` (what a
  stock mmseg ``Resize`` does to ``gt_seg_map``) without building the full mask. It
  fills each polygon's bounding box at full resolution and samples the rows and
  columns that OpenCV's nearest-neighbour resize would read
  (``src = min(floor(dst * (1 / (dst_size / src_size))), src_size - 1)``, in float64).
- :func:`rasterize_scaled`: scales the vertices to the target size and fills there with
  sub-pixel precision. Not bit-identical to resizing the full mask (pixels along
  polygon edges differ), but it follows the polygon's geometry when upscaling, where a
  nearest-neighbour resize of the full mask is blocky.
"""
from __future__ import annotations

from typing import Sequence, Tuple

import cv2
import numpy as np

#: fractional bits used by :func:`rasterize_scaled` (``cv2.fillPoly(shift=...)``).
SUBPIXEL_BITS = 8


def _round_points(points: np.ndarray) -> np.ndarray:
    return np.rint(points).astype(np.int32)


def _bbox(pts: np.ndarray, height: int, width: int) -> Tuple[int, int, int, int]:
    """Integer bounding box ``(x0, y0, x1, y1)`` (end-exclusive) clipped to the image."""
    x0 = max(int(pts[:, 0].min()), 0)
    y0 = max(int(pts[:, 1].min()), 0)
    x1 = min(int(pts[:, 0].max()) + 1, width)
    y1 = min(int(pts[:, 1].max()) + 1, height)
    return x0, y0, x1, y1


def _fill_box(pts: np.ndarray, box: Tuple[int, int, int, int]) -> np.ndarray:
    """``(y1 - y0, x1 - x0)`` uint8 buffer with the polygon (int points) filled with 1."""
    x0, y0, x1, y1 = box
    buf = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(buf, [pts - np.array([x0, y0], np.int32)], 1)
    return buf


def rasterize_full(labels: Sequence[int], points: Sequence[np.ndarray],
                   shape: Tuple[int, int], num_classes: int) -> np.ndarray:
    """Fill the polygons at their own resolution.

    Args:
        labels: class index (channel) of each polygon.
        points: ``(N, 2)`` ``(x, y)`` vertices of each polygon, in pixels.
        shape: ``(H, W)`` of the mask.
        num_classes: ``C``.

    Returns:
        ``(H, W, C)`` uint8 C-contiguous mask in {0, 1}; channel ``c`` is the union of
        the polygons labelled ``c``.
    """
    height, width = int(shape[0]), int(shape[1])
    out = np.zeros((height, width, num_classes), np.uint8)
    for label, pts in zip(labels, points):
        ipts = _round_points(pts)
        box = _bbox(ipts, height, width)
        if box[2] <= box[0] or box[3] <= box[1]:
            continue
        x0, y0, x1, y1 = box
        out[y0:y1, x0:x1, int(label)] |= _fill_box(ipts, box)
    return out


def nearest_source_index(dst_size: int, src_size: int) -> np.ndarray:
    """Source index read by OpenCV's ``INTER_NEAREST`` resize for each destination index.

    Reproduces OpenCV's ``resizeNN``: ``fx = dst / src`` and ``ifx = 1 / fx`` in
    float64, then ``min(floor(i * ifx), src - 1)``.
    """
    ifx = 1.0 / (float(dst_size) / float(src_size))
    idx = np.floor(np.arange(dst_size, dtype=np.float64) * ifx).astype(np.int64)
    return np.minimum(idx, src_size - 1)


def rasterize_nearest(labels: Sequence[int], points: Sequence[np.ndarray],
                      src_shape: Tuple[int, int], dst_shape: Tuple[int, int],
                      num_classes: int) -> np.ndarray:
    """The full-resolution mask as ``cv2.resize(..., INTER_NEAREST)`` would resize it.

    Args:
        labels, points, num_classes: as :func:`rasterize_full`.
        src_shape: ``(H, W)`` of the annotated image (the points' frame).
        dst_shape: ``(h, w)`` of the output.

    Returns:
        ``(h, w, C)`` uint8 mask, equal bit for bit to
        ``cv2.resize(rasterize_full(labels, points, src_shape, C), (w, h),
        interpolation=cv2.INTER_NEAREST)``.
    """
    src_h, src_w = int(src_shape[0]), int(src_shape[1])
    dst_h, dst_w = int(dst_shape[0]), int(dst_shape[1])
    out = np.zeros((dst_h, dst_w, num_classes), np.uint8)
    rows = nearest_source_index(dst_h, src_h)  # non-decreasing
    cols = nearest_source_index(dst_w, src_w)
    for label, pts in zip(labels, points):
        ipts = _round_points(pts)
        box = _bbox(ipts, src_h, src_w)
        x0, y0, x1, y1 = box
        if x1 <= x0 or y1 <= y0:
            continue
        ya, yb = np.searchsorted(rows, [y0, y1], side='left')
        xa, xb = np.searchsorted(cols, [x0, x1], side='left')
        if yb <= ya or xb <= xa:
            continue  # the polygon falls between sampled rows/columns
        buf = _fill_box(ipts, box)
        sampled = buf[rows[ya:yb] - y0][:, cols[xa:xb] - x0]
        out[ya:yb, xa:xb, int(label)] |= sampled
    return out


def rasterize_scaled(labels: Sequence[int], points: Sequence[np.ndarray],
                     src_shape: Tuple[int, int], dst_shape: Tuple[int, int],
                     num_classes: int) -> np.ndarray:
    """Fill the polygons after scaling their vertices to ``dst_shape``.

    Vertex ``(x, y)`` becomes ``(x * w / W, y * h / H)`` (the pixel-index mapping of a
    nearest-neighbour resize) and is filled with ``SUBPIXEL_BITS`` fractional bits.

    Returns:
        ``(h, w, C)`` uint8 mask in {0, 1}.
    """
    src_h, src_w = int(src_shape[0]), int(src_shape[1])
    dst_h, dst_w = int(dst_shape[0]), int(dst_shape[1])
    scale = np.array([dst_w / src_w, dst_h / src_h], np.float64)
    one = 1 << SUBPIXEL_BITS
    out = np.zeros((dst_h, dst_w, num_classes), np.uint8)
    for label, pts in zip(labels, points):
        spts = pts * scale
        x0 = max(int(np.floor(spts[:, 0].min())), 0)
        y0 = max(int(np.floor(spts[:, 1].min())), 0)
        x1 = min(int(np.ceil(spts[:, 0].max())) + 1, dst_w)
        y1 = min(int(np.ceil(spts[:, 1].max())) + 1, dst_h)
        if x1 <= x0 or y1 <= y0:
            continue
        fixed = np.rint((spts - np.array([x0, y0])) * one).astype(np.int32)
        buf = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillPoly(buf, [fixed], 1, lineType=cv2.LINE_8, shift=SUBPIXEL_BITS)
        out[y0:y1, x0:x1, int(label)] |= buf
    return out
