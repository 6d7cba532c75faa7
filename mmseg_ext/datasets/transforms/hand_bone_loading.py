"""Loading transforms for polygon-JSON multi-label data (hand-bone X-rays).

Two ways to get the ``(H, W, C)`` uint8 mask into ``results['gt_seg_map']``:

* **eager** (``LoadHandBoneAnnotations(rasterize=True)``, the default): the mask is
  rasterised at the annotated (original) resolution. Use it in validation/test
  pipelines, where the metric compares at the original size, or anywhere a stock
  transform needs the mask right after loading.
* **deferred** (``LoadHandBoneAnnotations(rasterize=False)`` ... ``Resize`` /
  ``RandomResize`` ... ``RasterizePolygons``): the loader only parses the polygons into
  ``results['gt_polygons']``; the resize transforms see no mask and resize the image
  alone; :class:`RasterizePolygons` then builds the mask directly at the current
  ``img_shape``. With ``mode='nearest'`` (default) the result is bit-identical to what
  a stock ``Resize`` would have produced from the eager mask, provided exactly one
  cv2-backend resize ran in between (see :class:`RasterizePolygons`). Training at 512
  on 2048 images this skips building and resizing a 116 MB mask per sample.
"""
from __future__ import annotations

import logging
from typing import Optional, Sequence

from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS

from ...io.hand_bone_json import (
    DEFAULT_BOUNDARY_TOLERANCE,
    PolygonSet,
    UnknownLabelCounter,
    parse_hand_bone_json,
    rasterize_full,
    rasterize_nearest,
    rasterize_scaled,
)
from ...utils.class_names import HAND_BONE_CLASSES
from ...utils.errors import ConfigError

logger = logging.getLogger(__name__)


def _check_classes(explicit: Optional[Sequence[str]], results: dict) -> Sequence[str]:
    from_dataset = results.get('classes')
    if explicit is not None:
        if from_dataset is not None and tuple(from_dataset) != tuple(explicit):
            raise ConfigError(
                f'{results.get("seg_map_path")}: the transform was given classes '
                f'{tuple(explicit)} but the dataset uses {tuple(from_dataset)}; set the '
                'classes once, in the dataset metainfo')
        return explicit
    if from_dataset is not None:
        return from_dataset
    return HAND_BONE_CLASSES


@TRANSFORMS.register_module()
class LoadHandBoneAnnotations(BaseTransform):
    """Parse a hand-bone JSON and rasterise its polygons into a multi-label mask.

    Required keys: ``seg_map_path`` (the JSON; None = no annotation, e.g. a test image,
    and the transform does nothing), ``ori_shape`` or ``img`` (for the size check),
    optional ``classes`` (set by :class:`~mmseg_ext.datasets.HandBoneDataset`).

    Added keys:

    * eager (``rasterize=True``): ``gt_seg_map`` ``(H, W, C)`` uint8 in {0, 1} at the
      annotated resolution (channel ``c`` = union of the polygons of class ``c``);
      ``'gt_seg_map'`` is appended to ``seg_fields``.
    * deferred (``rasterize=False``): ``gt_polygons``, a
      :class:`~mmseg_ext.io.hand_bone_json.PolygonSet`; a later
      :class:`RasterizePolygons` makes the mask.

    Args:
        classes: class names (channel order). Default: ``results['classes']`` (the
            dataset's metainfo), else the 29 hand-bone classes. Giving both with
            different values is an error.
        rasterize: eager (True) or deferred (False) rasterisation, see the module doc.
        unknown_labels: ``'error'`` (default) or ``'skip'``; skipped annotations are
            logged once per label and counted in :attr:`unknown_label_counter`
            (per process: each dataloader worker has its own).
        boundary_tolerance: pixels a point may lie outside the image (default 1:
            ``-1 <= x <= W``); see :func:`parse_hand_bone_json`.
        all_labels: every label the files may carry (default: the 29 hand-bone
            classes). Annotations whose label is here but not in ``classes`` (a
            subset was selected) are dropped silently; labels outside both are
            "unknown" and handled by ``unknown_labels``.

    Raises:
        DataFileError: for malformed JSON, unknown labels (``'error'``), polygons with
            fewer than 3 points, points outside the image, or a JSON size that differs
            from the decoded image; the message names the JSON file and annotation id.
    """

    def __init__(self,
                 classes: Optional[Sequence[str]] = None,
                 rasterize: bool = True,
                 unknown_labels: str = 'error',
                 boundary_tolerance: float = DEFAULT_BOUNDARY_TOLERANCE,
                 all_labels: Optional[Sequence[str]] = None) -> None:
        if unknown_labels not in ('error', 'skip'):
            raise ConfigError(f"{type(self).__name__}: unknown_labels must be 'error' or "
                              f"'skip', got {unknown_labels!r}")
        self.classes = tuple(classes) if classes is not None else None
        self.rasterize = rasterize
        self.unknown_labels = unknown_labels
        self.boundary_tolerance = boundary_tolerance
        self.all_labels = frozenset(all_labels if all_labels is not None
                                    else HAND_BONE_CLASSES)
        self.unknown_label_counter = UnknownLabelCounter()

    def transform(self, results: dict) -> dict:
        path = results.get('seg_map_path')
        if path is None:
            return results
        classes = _check_classes(self.classes, results)
        shape = results.get('ori_shape')
        if shape is None and results.get('img') is not None:
            shape = results['img'].shape[:2]
        polygons = parse_hand_bone_json(
            path, classes, image_shape=shape[:2] if shape is not None else None,
            unknown_labels=self.unknown_labels,
            boundary_tolerance=self.boundary_tolerance,
            counter=self.unknown_label_counter, ignored_labels=self.all_labels,
            image_name=results.get('img_path'))
        if self.rasterize:
            results['gt_seg_map'] = rasterize_full(
                polygons.labels, polygons.points, (polygons.height, polygons.width),
                polygons.num_classes)
            _add_seg_field(results)
        else:
            results['gt_polygons'] = polygons
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(classes={self.classes}, '
                f'rasterize={self.rasterize}, unknown_labels={self.unknown_labels!r}, '
                f'boundary_tolerance={self.boundary_tolerance})')


def _add_seg_field(results: dict) -> None:
    fields = results.setdefault('seg_fields', [])
    if 'gt_seg_map' not in fields:
        fields.append('gt_seg_map')


@TRANSFORMS.register_module()
class RasterizePolygons(BaseTransform):
    """Turn ``results['gt_polygons']`` into ``gt_seg_map`` at the current image size.

    Place it after the last ``Resize``/``RandomResize`` and **before** any crop, flip,
    rotation or padding: the polygons are mapped from the annotated size
    ``(H, W)`` to ``results['img_shape']`` ``(h, w)`` by scaling alone. It raises if
    ``results['flip']`` is already set; a crop or rotation before it cannot be detected
    and would misplace the mask.

    Required keys: ``gt_polygons`` (from ``LoadHandBoneAnnotations(rasterize=False)``;
    absent = nothing to do), ``img_shape``. Added: ``gt_seg_map`` ``(h, w, C)`` uint8
    in {0, 1}, ``'gt_seg_map'`` in ``seg_fields``. Removed: ``gt_polygons``.

    Args:
        mode: ``'nearest'`` (default): bit-identical to loading the full mask and
            resizing it with a stock cv2-backend ``Resize`` / ``RandomResize``
            (nearest-neighbour for masks, ``keep_ratio`` either way) when exactly one
            such resize ran between the loader and this transform, or none. After
            several resizes the result is the one-step nearest resize from the
            original to the final size, which can differ from the chained resizes
            along edges. ``'scaled'``: vertices scaled to ``(h, w)`` and filled with
            sub-pixel precision: smoother when upscaling, not bit-identical (about
            one pixel along polygon edges; see docs/handbone.md for the measured IoU).
    """

    def __init__(self, mode: str = 'nearest') -> None:
        if mode not in ('nearest', 'scaled'):
            raise ConfigError(f"{type(self).__name__}: mode must be 'nearest' or 'scaled', "
                              f'got {mode!r}')
        self.mode = mode

    def transform(self, results: dict) -> dict:
        polygons: Optional[PolygonSet] = results.pop('gt_polygons', None)
        if polygons is None:
            return results
        if results.get('flip'):
            raise ConfigError(
                f'{results.get("seg_map_path")}: RasterizePolygons runs after a flip; '
                'place it right after the resize transforms, before RandomFlip / '
                'RandomCrop / rotations / padding')
        dst = tuple(results['img_shape'][:2])
        src = (polygons.height, polygons.width)
        fn = rasterize_nearest if self.mode == 'nearest' else rasterize_scaled
        results['gt_seg_map'] = fn(polygons.labels, polygons.points, src, dst,
                                   polygons.num_classes)
        _add_seg_field(results)
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(mode={self.mode!r})'


__all__ = ['LoadHandBoneAnnotations',
           'RasterizePolygons']
