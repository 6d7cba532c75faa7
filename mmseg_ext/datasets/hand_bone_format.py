"""The hand-bone X-ray annotation format (docs/FORMATS.md section 1), read and checked.

One JSON file per image::

    {"annotations": [{"id": "...", "type": "poly_seg", "attributes": {},
                      "points": [[x, y], ...], "label": "finger-1"}, ...],
     "attributes": {}, "file_id": "...", "filename": "image..._R.png",
     "parent_path": "...", "last_modifier_id": "...",
     "metadata": {"height": 2048, "width": 2048}, "last_workers": {}}

Points are ``(x, y)`` pixel coordinates (x = column, y = row) of one closed polygon; a
class may have several polygons and polygons of different classes may overlap.

This module knows only the format: :func:`parse_hand_bone_json` turns a file into a
:class:`PolygonSet` (class indices + point arrays) after validating it, raising one
:class:`DataFileError` per problem whose message starts with the file path.
"""
from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Collection, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..utils.errors import DataError, DataFileError  # noqa: F401  (re-exported)

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
class UnknownLabelCounter:
    """Counts annotations skipped because their label is not in the class list.

    ``counts[label]`` is the number of skipped annotations with that label, ``files``
    the number of files that had at least one. Counting is per process: each
    dataloader worker keeps its own counter.
    """

    counts: Counter = field(default_factory=Counter)
    files: int = 0

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        if not self.counts:
            return 'no annotation skipped for an unknown label'
        labels = ', '.join(f'{k!r} x{v}' for k, v in sorted(self.counts.items()))
        return f'skipped {self.total} annotation(s) with unknown labels in ' \
               f'{self.files} file(s): {labels}'


def _annotation_name(ann: object, index: int) -> str:
    ann_id = ann.get('id') if isinstance(ann, dict) else None
    return f'annotation id={ann_id!r}' if ann_id is not None else f'annotation #{index}'


def read_json(path: str) -> dict:
    """Read a JSON object from ``path``; any failure becomes a :class:`DataFileError`."""
    try:
        with open(path, 'rb') as f:
            data = json.loads(f.read())
    except FileNotFoundError:
        raise DataFileError(f'{path}: annotation file not found') from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataFileError(f'{path}: malformed JSON ({exc})') from None
    if not isinstance(data, dict):
        raise DataFileError(f'{path}: malformed JSON (top level is '
                            f'{type(data).__name__}, expected an object)')
    return data


def json_image_size(data: dict, path: str) -> Optional[Tuple[int, int]]:
    """``(height, width)`` from ``data['metadata']``, or None when it is absent."""
    meta = data.get('metadata')
    if not isinstance(meta, dict) or 'height' not in meta or 'width' not in meta:
        return None
    try:
        height, width = int(meta['height']), int(meta['width'])
    except (TypeError, ValueError):
        raise DataFileError(f'{path}: metadata height/width are not integers '
                            f'({meta.get("height")!r}, {meta.get("width")!r})') from None
    if height <= 0 or width <= 0:
        raise DataFileError(f'{path}: metadata size {height}x{width} is not positive')
    return height, width


def parse_hand_bone_json(path: str,
                         classes: Sequence[str],
                         image_shape: Optional[Tuple[int, int]] = None,
                         unknown_labels: str = 'error',
                         boundary_tolerance: float = DEFAULT_BOUNDARY_TOLERANCE,
                         counter: Optional[UnknownLabelCounter] = None,
                         ignored_labels: Collection[str] = ()) -> PolygonSet:
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
        raise ValueError(f"unknown_labels must be 'error' or 'skip', got {unknown_labels!r}")
    data = read_json(path)
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
