"""The hand-bone X-ray annotation format (docs/FORMATS.md section 1): read, write, rasterise.

One JSON file per image::

    {"annotations": [{"id": "...", "type": "poly_seg", "attributes": {},
                      "points": [[x, y], ...], "label": "finger-1"}, ...],
     "attributes": {}, "file_id": "...", "filename": "image..._R.png",
     "parent_path": "...", "last_modifier_id": "...",
     "metadata": {"height": 2048, "width": 2048}, "last_workers": {}}

Points are ``(x, y)`` pixel coordinates (x = column, y = row) of one closed polygon; a
class may have several polygons and polygons of different classes may overlap.

This module is the one home of the format:

* reading: :func:`parse_hand_bone_json` turns a file into a :class:`PolygonSet` (class
  indices + point arrays) after validating it, raising one :class:`DataFileError` per
  problem whose message starts with the file path;
* writing: :func:`hand_bone_document` builds a file's content with every top-level key,
  :func:`write_hand_bone_json` writes it (the synthetic generator and pseudo-labelling);
* rasterising (``cv2.fillPoly`` semantics: the interior and the boundary of each polygon
  are painted; vertices are rounded to the nearest integer pixel):

  - :func:`rasterize_full`: the mask at the annotated resolution. Each polygon is filled
    into a small buffer the size of its bounding box, OR-ed into its channel; no
    full-size ``(H, W)`` temporary per class and no full-array transpose.
  - :func:`rasterize_nearest`: the mask **bit-identical** to
    ``cv2.resize(rasterize_full(...), (w, h), interpolation=cv2.INTER_NEAREST)`` (what a
    stock mmseg ``Resize`` does to ``gt_seg_map``) without building the full mask. It
    fills each polygon's bounding box at full resolution and samples the rows and
    columns that OpenCV's nearest-neighbour resize would read
    (``src = min(floor(dst * (1 / (dst_size / src_size))), src_size - 1)``, in float64).
  - :func:`rasterize_scaled`: scales the vertices to the target size and fills there
    with sub-pixel precision. Not bit-identical to resizing the full mask (pixels along
    polygon edges differ), but it follows the polygon's geometry when upscaling, where
    a nearest-neighbour resize of the full mask is blocky.
  - :func:`read_masks`: a file straight to ``(C, H, W)`` masks, as training fills them
    (the threshold tuner's and the overlay's ground truth).
"""
from __future__ import annotations

import json
import logging
import os
import os.path as osp
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Collection, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..utils.errors import DataFileError, InvalidArgumentError
from ..utils.tally import Tally

#: Top-level keys of an annotation file, as written by the annotation tool.
HAND_BONE_JSON_KEYS: Tuple[str, ...] = (
    'annotations', 'attributes', 'file_id', 'filename', 'parent_path',
    'last_modifier_id', 'metadata', 'last_workers')

#: Default tolerance (pixels) for polygon points outside the image; see
#: :func:`parse_hand_bone_json`.
DEFAULT_BOUNDARY_TOLERANCE = 1.0

logger = logging.getLogger(__name__)


@dataclass
class PolygonSet:
    """The polygons of one image, in the coordinates of the annotated image.

    Attributes:
        labels: ``(K,)`` int64 class index of each polygon (into the class list used
            to parse the file).
        points: ``K`` float64 arrays of shape ``(N_k, 2)``: ``(x, y)`` vertices in
            pixels of the original image, ``N_k >= 3``.
        height, width: size of the annotated image in pixels.
        num_classes: ``C``, the length of the class list (the mask's channel count).
        ids: the annotation ``id`` of each polygon (for messages).
    """

    labels: np.ndarray
    points: List[np.ndarray]
    height: int
    width: int
    num_classes: int
    ids: List[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.points)


@dataclass
class UnknownLabelCounter(Tally):
    """Counts annotations skipped because their label is not in the class list.

    ``counts[label]`` is the number of skipped annotations with that label, ``files``
    the number of files that had at least one. Counting is per process: each
    dataloader worker keeps its own counter.
    """

    counts: Counter = field(default_factory=Counter)
    files: int = 0

    def summary(self) -> str:
        if not self.counts:
            return 'no annotation skipped for an unknown label'
        labels = self.listing(lambda k, v: f'{k!r} x{v}')
        return f'skipped {self.total} annotation(s) with unknown labels in ' \
               f'{self.files} file(s): {labels}'


def _annotation_name(ann: object, index: int) -> str:
    ann_id = ann.get('id') if isinstance(ann, dict) else None
    return f'annotation id={ann_id!r}' if ann_id is not None else f'annotation #{index}'


def read_json(path: str) -> dict:
    """Read a JSON object from ``path``; any failure becomes a :class:`DataFileError`."""
    from ..utils.readers import read_json as read_strict_json
    data = read_strict_json(path, 'annotation file')
    if not isinstance(data, dict):
        raise DataFileError(f'{path}: malformed JSON (top level is '
                            f'{type(data).__name__}, expected an object)')
    return data


def json_image_size(data: dict, path: str) -> Optional[Tuple[int, int]]:
    """``(height, width)`` from ``data['metadata']``, or None when it is absent."""
    meta = data.get('metadata')
    if not isinstance(meta, dict) or 'height' not in meta or 'width' not in meta:
        return None
    from ..utils.readers import MAX_PIXELS_ENV, max_pixels
    def whole(value) -> bool:  # JSON numbers only: text, booleans and fractions are not
        return type(value) is int or (type(value) is float and value.is_integer())

    if not (whole(meta['height']) and whole(meta['width'])):
        raise DataFileError(f'{path}: metadata height/width are not whole numbers '
                            f'({meta.get("height")!r}, {meta.get("width")!r})')
    height, width = int(meta['height']), int(meta['width'])
    if height <= 0 or width <= 0:
        raise DataFileError(f'{path}: metadata size {height}x{width} is not positive')
    if height * width > max_pixels():
        raise DataFileError(f'{path}: metadata size {height}x{width} is more than the '
                            f'{max_pixels()} pixels an image may have (set '
                            f'{MAX_PIXELS_ENV} to raise it)')
    return height, width


def _non_number(points: Any) -> Optional[str]:
    """What in a JSON list of ``[x, y]`` points is not a number (text, a boolean,
    null), described for a message (``"the text '9'"``); None when every coordinate is
    one. Shapes are checked afterwards."""
    if not isinstance(points, list):
        return None
    for point in points:
        for value in point if isinstance(point, list) else [point]:
            if type(value) is int or type(value) is float:
                continue
            if isinstance(value, bool):
                return f'the boolean {json.dumps(value)}'
            if isinstance(value, str):
                return f'the text {value!r}'
            if value is None:
                return 'null'
            if isinstance(value, (list, dict)):
                continue  # a nesting error: reported as a shape
            return repr(value)
    return None


def _stem(name: str) -> str:
    return osp.splitext(osp.basename(name.replace('\\', '/')))[0].casefold()


def check_json_image_name(data: dict, path: str, image_name: Optional[str]) -> None:
    """Refuse an annotation file whose ``filename`` names another image than
    ``image_name`` (stems compared, case aside; nothing to check without either)."""
    named = data.get('filename') if isinstance(data, dict) else None
    if image_name is None or not isinstance(named, str) or not named.strip():
        return
    if _stem(named) != _stem(image_name):
        raise DataFileError(f'{path}: written for the image {named!r} (its "filename"), '
                            f'but read as the annotation of {image_name}')


def parse_hand_bone_json(path: str,
                         classes: Sequence[str],
                         image_shape: Optional[Tuple[int, int]] = None,
                         unknown_labels: str = 'error',
                         boundary_tolerance: float = DEFAULT_BOUNDARY_TOLERANCE,
                         counter: Optional[UnknownLabelCounter] = None,
                         ignored_labels: Collection[str] = (),
                         image_name: Optional[str] = None) -> PolygonSet:
    """Read and validate one annotation file.

    Args:
        path: the JSON file.
        classes: class names; a polygon's class index is its label's position here.
            Labels are matched by name, so a subset or a reordering of the 29 classes
            works.
        image_shape: ``(H, W)`` of the decoded image. When given, the JSON's
            ``metadata`` size must equal it; when the metadata has no size, this size
            is used. At least one of the two must be present.
        unknown_labels: ``'error'`` raises on a label not in ``classes``; ``'skip'``
            drops the annotation, logs it (once per label) and counts it in ``counter``.
        boundary_tolerance: points may lie up to this many pixels outside the pixel
            grid: ``-tol <= x <= W - 1 + tol`` (same for y). The default 1 px accepts
            points placed on the outer edge of the last pixel (``x == W``), which
            annotation tools produce; anything further out is an error. Accepted
            points are kept as they are (rasterisation clips them).
        counter: where skipped labels are counted (``unknown_labels='skip'``).
        ignored_labels: labels that are valid but not wanted (the classes left out when
            ``classes`` is a subset): their annotations are dropped silently.
        image_name: the image this file is read for (a path or name). When the JSON
            names its image (``filename``), the two stems must agree (case aside): a
            file of another image (two JSONs swapped) is refused.

    Returns:
        a :class:`PolygonSet`.

    Raises:
        DataFileError: malformed JSON, a missing key, a label not in ``classes``
            (with ``'error'``), a polygon with fewer than 3 points or non-numeric
            points, a point outside the image beyond the tolerance, or a size that
            differs from ``image_shape``. The message names the file and the
            annotation id.
    """
    if unknown_labels not in ('error', 'skip'):
        raise InvalidArgumentError('unknown_labels', f"must be 'error' or 'skip', got "
                                   f'{unknown_labels!r}')
    data = read_json(path)
    check_json_image_name(data, path, image_name)
    size = json_image_size(data, path)
    if image_shape is not None:
        image_shape = (int(image_shape[0]), int(image_shape[1]))
        if size is not None and size != image_shape:
            raise DataFileError(
                f'{path}: metadata size {size[0]}x{size[1]} (HxW) does not match the '
                f'image, which is {image_shape[0]}x{image_shape[1]}')
        size = image_shape
    if size is None:
        raise DataFileError(f'{path}: metadata has no height/width and no image size '
                            'was given')
    height, width = size
    anns = data.get('annotations')
    if not isinstance(anns, list):
        raise DataFileError(f"{path}: malformed JSON (no 'annotations' list)")

    index_of: Dict[str, int] = {name: i for i, name in enumerate(classes)}
    labels: List[int] = []
    points: List[np.ndarray] = []
    ids: List[str] = []
    skipped_here = 0
    tol = float(boundary_tolerance)
    for i, ann in enumerate(anns):
        where = f'{path}: {_annotation_name(ann, i)}'
        if not isinstance(ann, dict) or 'label' not in ann or 'points' not in ann:
            raise DataFileError(f"{where}: malformed annotation (needs 'label' and "
                                "'points')")
        label = ann['label']
        if not isinstance(label, str):
            raise DataFileError(f'{where}: label {label!r} is not a string')
        if label in ignored_labels and label not in index_of:
            continue
        if label not in index_of:
            if unknown_labels == 'error':
                raise DataFileError(f'{where}: label {label!r} is not one of the '
                                    f'{len(classes)} classes')
            if counter is not None:
                if label not in counter.counts:
                    logger.warning('%s: skipping unknown label %r (further ones are '
                                   'only counted)', where, label)
                counter.counts[label] += 1
            skipped_here += 1
            continue
        kind = ann.get('type', 'poly_seg')
        if kind != 'poly_seg':  # a bbox's 2 points are not a polygon: say what it is
            raise DataFileError(f'{where}: annotation type {kind!r}; the hand-bone format '
                                "has polygons ('poly_seg') only")
        odd = _non_number(ann['points'])
        if odd is not None:  # numpy would read '9' as 9.0 and true as 1.0
            raise DataFileError(f'{where}: points hold {odd}, not a number')
        try:
            pts = np.asarray(ann['points'], dtype=np.float64)
        except (TypeError, ValueError):
            raise DataFileError(f'{where}: points are not a list of [x, y] '
                                'numbers') from None
        if pts.ndim != 2 or pts.shape[1] != 2:
            if pts.size == 0 or (pts.ndim == 2 and pts.shape[0] < 3):
                raise DataFileError(f'{where}: polygon has {len(pts)} point(s), needs '
                                    'at least 3')
            raise DataFileError(f'{where}: points are not a list of [x, y] pairs '
                                f'(array shape {pts.shape})')
        if len(pts) < 3:
            raise DataFileError(f'{where}: polygon has {len(pts)} point(s), needs at '
                                'least 3')
        if not np.isfinite(pts).all():
            raise DataFileError(f'{where}: points contain NaN or infinity')
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        if lo[0] < -tol or lo[1] < -tol or hi[0] > width - 1 + tol \
                or hi[1] > height - 1 + tol:
            raise DataFileError(
                f'{where}: points outside the {height}x{width} (HxW) image: x in '
                f'[{lo[0]:g}, {hi[0]:g}], y in [{lo[1]:g}, {hi[1]:g}] (tolerance '
                f'{tol:g} px)')
        labels.append(index_of[label])
        points.append(pts)
        ids.append(str(ann.get('id', i)))
    if skipped_here and counter is not None:
        counter.files += 1
    return PolygonSet(labels=np.asarray(labels, dtype=np.int64), points=points,
                      height=height, width=width, num_classes=len(classes), ids=ids)


# ------------------------------------------------------------------ writing
def hand_bone_document(annotations: Sequence[Tuple[str, Any, str]], filename: str,
                       parent_path: str, size: Tuple[int, int], file_id: str,
                       modifier: str) -> dict:
    """The content of one annotation file, with every top-level key of the format.

    Args:
        annotations: ``(label, points, id)`` per polygon; ``points`` an ``(N, 2)``
            array or list of ``(x, y)`` pixel coordinates, written as given.
        filename: the image's file name (``image1661319116107_R.png``).
        parent_path: the annotation tool's folder of the image (``/ID001``).
        size: ``(height, width)`` of the image in pixels.
        file_id: the file's id; ``modifier``: ``last_modifier_id``.
    """
    return {
        'annotations': [{'id': ann_id, 'type': 'poly_seg', 'attributes': {},
                         'points': np.asarray(points).tolist(), 'label': label}
                        for label, points, ann_id in annotations],
        'attributes': {},
        'file_id': file_id,
        'filename': filename,
        'parent_path': parent_path,
        'last_modifier_id': modifier,
        'metadata': {'height': int(size[0]), 'width': int(size[1])},
        'last_workers': {},
    }


def write_hand_bone_json(path: str, document: dict) -> None:
    """Write ``document`` (from :func:`hand_bone_document`) to ``path`` (its folder is made)."""
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    with open(path, 'w') as f:
        json.dump(document, f)


# ------------------------------------------------------------------ rasterising
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


def read_masks(path: str, classes: Sequence[str], shape: Tuple[int, int],
               image_name: Optional[str] = None) -> np.ndarray:
    """``(C, H, W)`` uint8 {0, 1} masks of an annotation file, as training fills them.

    The file is validated by :func:`parse_hand_bone_json` (unknown labels, bad polygons
    and a size that differs from ``shape`` are errors naming the file) and filled by
    :func:`rasterize_full`, so the same polygons give the same masks everywhere.
    ``image_name``: the image it is read for (its ``filename`` must agree).
    """
    polys = parse_hand_bone_json(path, classes, image_shape=tuple(shape),
                                 image_name=image_name)
    full = rasterize_full(polys.labels, polys.points, (polys.height, polys.width),
                          len(classes))
    return np.ascontiguousarray(full.transpose(2, 0, 1))


def check_annotations_have_images(img_dir: str, ann_dir: str, img_suffix: str = '.png',
                                  ann_suffix: str = '.json') -> None:
    """Every annotation file under ``ann_dir`` has its image under ``img_dir`` (same
    relative path and stem): an annotation whose image is missing would be left out
    of training and scoring without a word.

    Raises:
        DataFileError: naming the first annotation without an image and the count.
    """
    from .images import list_images
    images = {osp.splitext(rel)[0] for rel in list_images(img_dir, (img_suffix,))}
    orphans = [rel for rel in list_images(ann_dir, (ann_suffix,))
               if osp.splitext(rel)[0] not in images]
    if orphans:
        first = osp.join(ann_dir, orphans[0])
        expected = osp.join(img_dir, osp.splitext(orphans[0])[0] + img_suffix)
        raise DataFileError(f'{first}: annotation without its image (expected {expected}; '
                            f'{len(orphans)} such file(s) under {ann_dir})')
