"""Paint the label map of one COCO image, lazily, inside the data pipeline."""
from __future__ import annotations

from typing import Optional

from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS

from ..coco_index import CocoFormatError
from ..coco_rle import rasterize


@TRANSFORMS.register_module()
class LoadCocoAnnotations(BaseTransform):
    """Build ``gt_seg_map`` from the encoded COCO annotations of ``CocoSemanticDataset``.

    Annotations are painted in the order the data set stored them (its ``draw_order``),
    later ones on top, onto a background (0) map. The mask equals, pixel for pixel,
    pycocotools' ``annToMask`` painted in the same order, but only each annotation's
    window is touched (:mod:`mmseg_ext.datasets.coco_rle`).

    Place it after ``LoadImageFromFile`` (mmseg's ``LoadAnnotations`` slot): the image's
    size is then checked against the annotation file's ``height``/``width``. A resize
    before it does not matter: the check uses ``ori_shape``.

    Required keys: ``coco_anns`` (list of ``{'id', 'label', 'spans'}``), ``height``,
    ``width`` (or ``ori_shape`` when the file has no size: image-only splits).

    Added keys: ``gt_seg_map`` (``(H, W)`` uint8: class indices, 255 for ignored crowd
    regions), ``seg_fields`` (appends ``'gt_seg_map'``).

    Args:
        check_image_size: raise when the decoded image's size differs from the
            annotation file's (polygons would be misplaced).
    """

    def __init__(self, check_image_size: bool = True) -> None:
        self.check_image_size = check_image_size

    def transform(self, results: dict) -> Optional[dict]:
        height, width = results.get('height'), results.get('width')
        shape = results.get('ori_shape')
        where = results.get('img_path', '<image>')
        if height is None or width is None:
            if shape is None:
                raise CocoFormatError(f'{where}: image size unknown; put LoadImageFromFile '
                                      'before LoadCocoAnnotations')
            height, width = int(shape[0]), int(shape[1])
        elif self.check_image_size and shape is not None and \
                (int(shape[0]), int(shape[1])) != (height, width):
            raise CocoFormatError(
                f'{where}: image is {shape[1]}x{shape[0]} (width x height) but the '
                f"annotation file says {width}x{height} (image id {results.get('image_id')})")
        results['gt_seg_map'] = rasterize(results.get('coco_anns') or [], height, width)
        results.setdefault('seg_fields', []).append('gt_seg_map')
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(check_image_size={self.check_image_size})'
