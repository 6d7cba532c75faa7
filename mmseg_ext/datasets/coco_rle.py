"""Exact COCO masks without full-image decoding: pycocotools RLE, painted in a window.

Every COCO segmentation (polygon list, uncompressed RLE, compressed RLE) is turned once,
by pycocotools, into its *compressed* run-length string at the image's full size
(:func:`encode_segmentation`); the string's run lengths are read with numpy
(:func:`mmseg_ext.io.rle.coco_string_to_counts`, the format of ``rleToString`` in pycocotools' ``maskApi.c``) and
kept as vertical pixel spans (:func:`rle_to_spans`). Painting (:func:`paint_spans`)
writes only the pixels inside the spans' bounding window, so the cost of one annotation
grows with its size, not with the image's. No rasterisation is re-implemented here: the
result is bit-identical to ``label[pycocotools.mask.decode(rle) == 1] = value``.

Run-length layout (pycocotools): column-major (Fortran) flattening of an ``(H, W)``
mask; ``counts[0]`` is a run of zeros (possibly empty), then ones, zeros, ... alternate.
"""
from __future__ import annotations

import math
from numbers import Real
from typing import Any, List, Sequence, Tuple, Union

import numpy as np
from pycocotools import mask as mask_utils

from ..io.rle import coco_string_to_counts
from ..utils.errors import DataError
from ..utils.readers import MAX_PIXELS_ENV, max_pixels

#: How far outside the image a polygon coordinate may lie, in image sides (a polygon is
#: clipped to the image; coordinates far beyond it are a broken file, and pycocotools
#: overflows its 32-bit integers or exhausts memory on them).
POLYGON_MARGIN = 4
#: The largest coordinate magnitude pycocotools' ``rleFrPoly`` handles exactly (it scales
#: coordinates by 5 into a C ``int``).
_COORD_LIMIT = 2 ** 26
#: The side a small image's margin is computed from (pixels).
_MIN_SIDE = 256


class DegeneratePolygonError(DataError):
    """A polygon with fewer than 3 points (or an odd number of coordinates)."""


def _is_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def encode_segmentation(segmentation: Any, height: int, width: int,
                        drop_degenerate: bool = False) -> Tuple[bytes, int]:
    """Encode one COCO ``segmentation`` as a compressed RLE string at full image size.

    Args:
        segmentation: a polygon list ``[[x1, y1, x2, y2, ...], ...]`` (pixel
            coordinates, several polygons are united), an uncompressed RLE
            ``{'size': [H, W], 'counts': [int, ...]}`` or a compressed RLE
            ``{'size': [H, W], 'counts': str}``.
        height, width: the image size from the annotation file, in pixels.
        drop_degenerate: polygons with fewer than 3 points are dropped (and counted)
            instead of raising.

    Returns:
        ``(counts, dropped)``: pycocotools' compressed ``counts`` (bytes, empty when
        every polygon was dropped) and the number of dropped polygons.

    Raises:
        ValueError: with a one-line description of the problem (the caller names the
            file, image and annotation).
    """
    check_image_size(height, width)
    if isinstance(segmentation, dict):
        return _encode_rle(segmentation, height, width), 0
    if not isinstance(segmentation, list):
        raise DataError('segmentation is neither a polygon list nor an RLE dict '
                         f'(got {type(segmentation).__name__})')
    if not segmentation:
        raise DataError('segmentation is an empty polygon list')
    polygons: List[List[float]] = []
    dropped = 0
    for i, poly in enumerate(segmentation):
        if not isinstance(poly, (list, tuple)) or not all(_is_number(v) for v in poly):
            raise DataError(f'polygon {i} is not a flat list of finite numbers '
                             '[x1, y1, x2, y2, ...] (neither a polygon nor an RLE)')
        if len(poly) < 6 or len(poly) % 2:
            if drop_degenerate:
                dropped += 1
                continue
            raise DegeneratePolygonError(
                f'degenerate polygon {i}: {len(poly)} coordinates, a polygon needs an even '
                'number >= 6 (3 points)')
        polygons.append(_checked_polygon(poly, i, height, width))
    if not polygons:
        return b'', dropped
    rles = mask_utils.frPyObjects(polygons, height, width)
    rle = rles[0] if len(rles) == 1 else mask_utils.merge(rles)
    return rle['counts'], dropped


def check_image_size(height: int, width: int) -> None:
    """Refuse an image size that is not two whole numbers >= 1 or has more pixels than
    the cap (:func:`~mmseg_ext.utils.readers.max_pixels`), before pycocotools allocates
    anything for it."""
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1
               for v in (height, width)):
        raise DataError(f'image size {height}x{width} (H x W) is not two whole numbers >= 1')
    cap = max_pixels()
    if int(height) * int(width) > cap:
        raise DataError(f'the image is {height}x{width} (H x W), {int(height) * int(width)} '
                        f'pixels, more than the limit of {cap} (set {MAX_PIXELS_ENV} to '
                        'raise it)')


def _checked_polygon(poly: Sequence[float], i: int, height: int, width: int) -> List[float]:
    """Polygon ``i`` as floats, refused when a coordinate's magnitude exceeds
    :data:`POLYGON_MARGIN` times the image's longer side (at least :data:`_MIN_SIDE`
    pixels, so small images keep a generous margin), in pixels."""
    out = [float(v) for v in poly]
    limit = min(POLYGON_MARGIN * max(height, width, _MIN_SIDE), _COORD_LIMIT)
    for axis, name in ((0, 'x'), (1, 'y')):
        values = out[axis::2]
        worst = max(values, key=abs)
        if abs(worst) > limit:
            raise DataError(f'polygon {i}: {name} coordinate {worst:g} is far outside the '
                            f'{height}x{width} (H x W) image (allowed: |{name}| <= {limit})')
    return out


def _encode_rle(rle: dict, height: int, width: int) -> bytes:
    if 'counts' not in rle or 'size' not in rle:
        raise DataError('segmentation is a dict without "counts" and "size" (neither a '
                         'polygon nor an RLE)')
    size = rle['size']
    if not isinstance(size, (list, tuple)) or list(size) != [height, width]:
        raise DataError(f'RLE size {size} differs from the image size [{height}, {width}] '
                         '([height, width])')
    counts = rle['counts']
    if isinstance(counts, (str, bytes)):
        encoded = counts.encode('ascii') if isinstance(counts, str) else counts
        runs = coco_string_to_counts(encoded)
    elif isinstance(counts, list) and all(isinstance(v, int) for v in counts):
        runs = np.asarray(counts, np.int64)
        encoded = None
    else:
        raise DataError('RLE "counts" is neither a string (compressed) nor a list of '
                         'integers (uncompressed)')
    if runs.ndim != 1:
        raise DataError('RLE "counts" is not a flat list of run lengths')
    if (runs < 0).any():
        raise DataError(f'RLE counts hold the negative run length {int(runs[runs < 0][0])} '
                        '(run lengths are >= 0)')
    if int(runs.sum()) != height * width:
        raise DataError(f'RLE counts sum to {int(runs.sum())} pixels, the image has '
                         f'{height * width} ({height}x{width})')
    if encoded is None:
        encoded = mask_utils.frPyObjects(
            {'size': [height, width], 'counts': counts}, height, width)['counts']
    return encoded


def rle_to_spans(counts: Union[bytes, str], height: int) -> np.ndarray:
    """Foreground of a compressed RLE as vertical pixel spans.

    Args:
        counts: compressed RLE string of an ``(height, W)`` mask.
        height: H.

    Returns:
        ``(P, 3)`` int16 (int32 beyond 32766 pixels) rows
        ``(column, row_start, row_stop)``: the pixels
        ``row_start <= y < row_stop`` of column ``x`` are foreground; sorted by column,
        then row. A run that wraps from the bottom of a column to the top of the next is
        split at the column border.
    """
    if not counts:
        return np.zeros((0, 3), np.int16)
    ends = np.cumsum(coco_string_to_counts(counts))
    stop = ends[1::2]                          # foreground runs are [start, stop)
    start = ends[0:2 * len(stop):2]
    if len(stop) and ((start // height) != ((stop - 1) // height)).any():
        start, stop = _split_at_columns(start, stop, height)
    col = start // height
    spans = np.stack([col, start - col * height, stop - col * height], 1)
    small = max(int(col.max(initial=0)), height) < np.iinfo(np.int16).max
    return spans.astype(np.int16 if small else np.int32)


def paint_spans(label: np.ndarray, spans: np.ndarray, value: int) -> None:
    """Set ``label`` to ``value`` on the spans of :func:`rle_to_spans` (in place).

    Only the spans' bounding window is touched: a per-column +1/-1 edge buffer, summed
    down the rows, gives the window's mask.

    Args:
        label: ``(H, W)`` uint8 label map.
        spans: ``(P, 3)`` integer ``(column, row_start, row_stop)``.
        value: class index (or the ignore index) to paint.
    """
    if not len(spans):
        return
    col, row0, row1 = (spans[:, i].astype(np.intp) for i in range(3))
    x0, x1 = int(col[0]), int(col[-1]) + 1     # sorted by column
    y0, y1 = int(row0.min()), int(row1.max())
    span = y1 - y0 + 1                         # one spare row per column for the -1 edges
    edges = np.zeros((x1 - x0) * span, np.int8)
    base = (col - x0) * span - y0
    edges[base + row0] = 1
    edges[base + row1] = -1
    window = np.cumsum(edges, dtype=np.int8).reshape(x1 - x0, span)[:, :-1].T
    label[y0:y1, x0:x1][window.view(bool)] = value


def _split_at_columns(start: np.ndarray, stop: np.ndarray,
                      height: int) -> Tuple[np.ndarray, np.ndarray]:
    new_start: List[int] = []
    new_stop: List[int] = []
    for a, b in zip(start.tolist(), stop.tolist()):
        while a < b:
            end = min(b, (a // height + 1) * height)
            new_start.append(a)
            new_stop.append(end)
            a = end
    return np.asarray(new_start, np.int64), np.asarray(new_stop, np.int64)


def rasterize(annotations: Sequence[dict], height: int, width: int) -> np.ndarray:
    """Paint encoded annotations, in list order (later on top), onto a zero label map.

    Args:
        annotations: dicts with ``'spans'`` (:func:`rle_to_spans`) and ``'label'``.
        height, width: label map size in pixels.

    Returns:
        ``(H, W)`` uint8 label map, 0 where no annotation is.
    """
    label = np.zeros((height, width), np.uint8)
    for ann in annotations:
        paint_spans(label, ann['spans'], ann['label'])
    return label
