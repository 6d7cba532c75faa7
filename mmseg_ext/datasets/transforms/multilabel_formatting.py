"""Pack a multi-label sample into mmseg's ``inputs`` / ``SegDataSample`` without int64."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.structures import PixelData
from mmseg.registry import TRANSFORMS
from mmseg.structures import SegDataSample

from ...utils.errors import ConfigError, DataError

#: metainfo keys packed by default (stock ``PackSegInputs``'s list).
DEFAULT_META_KEYS = ('img_path', 'seg_map_path', 'ori_shape', 'img_shape', 'pad_shape',
                     'scale_factor', 'flip', 'flip_direction', 'reduce_zero_label',
                     'flip_swap_pairs')


def _image_to_tensor(img: np.ndarray) -> torch.Tensor:
    """``(H, W)`` or ``(H, W, 3)`` array -> contiguous ``(3 or 1, H, W)`` tensor, same dtype."""
    if img.ndim < 3:
        img = img[..., None]
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))


def multilabel_mask_to_tensor(mask: np.ndarray) -> torch.Tensor:
    """``(H, W, C)`` mask -> ``(C, H, W)`` torch.uint8, one copy, never a wider dtype.

    Values are kept (0/1 labels, 255 ignore). ``bool`` masks become 0/1; other dtypes
    must hold values in [0, 255].
    """
    if mask.dtype != np.uint8:
        if mask.dtype != np.bool_ and mask.size and (mask.min() < 0 or mask.max() > 255):
            raise ConfigError(f'multi-label mask values must be in [0, 255], got '
                             f'[{mask.min()}, {mask.max()}] ({mask.dtype})')
        mask = mask.astype(np.uint8)
    chw = np.ascontiguousarray(mask.transpose(2, 0, 1))
    return torch.from_numpy(chw)


@TRANSFORMS.register_module()
class PackMultiLabelSegInputs(BaseTransform):
    """mmseg's ``PackSegInputs`` for multi-label masks.

    Outputs ``{'inputs': img tensor, 'data_samples': SegDataSample}``:

    * ``inputs``: ``(3, H, W)`` (or ``(1, H, W)`` for a 2-D image), the image's dtype,
      as stock.
    * ``data_samples.gt_sem_seg.data``: for a 3-D ``(H, W, C)`` mask a ``(C, H, W)``
      **torch.uint8** tensor (values 0/1, 255 = ignore/padding). About 116 MiB for
      29x2048x2048; stock would make it int64 (928 MiB). A 2-D ``(H, W)`` mask is
      packed exactly as stock ``PackSegInputs`` packs it, ``(1, H, W)`` int64, so the
      transform is a drop-in replacement in single-label pipelines; pass
      ``multi_label=True`` to pack a 2-D mask as a one-class ``(1, H, W)`` uint8 stack
      (OpenCV drops a trailing channel axis of length 1 during resizes).
    * metainfo: ``meta_keys`` present in ``results``; for keys that stock mmseg code
      reads, missing values get neutral defaults: ``scale_factor=(1.0, 1.0)``,
      ``flip=False``, ``flip_direction=None``, ``pad_shape=img_shape``,
      ``reduce_zero_label=False``.

    Raises:
        ValueError: ``results`` still holds unrasterised ``gt_polygons`` (a deferred
            ``LoadHandBoneAnnotations`` without ``RasterizePolygons``).
    """

    def __init__(self, meta_keys: Sequence[str] = DEFAULT_META_KEYS,
                 multi_label: Optional[bool] = None) -> None:
        self.meta_keys = tuple(meta_keys)
        self.multi_label = multi_label

    def _defaults(self, results: dict) -> dict:
        defaults = dict(scale_factor=(1.0, 1.0), flip=False, flip_direction=None,
                        reduce_zero_label=False)
        if 'img_shape' in results:
            defaults['pad_shape'] = results['img_shape']
        return defaults

    def transform(self, results: dict) -> dict:
        if results.get('gt_polygons') is not None and 'gt_seg_map' not in results:
            raise DataError(f'{results.get("seg_map_path")}: polygons were loaded with '
                             'rasterize=False but never rasterised; add '
                             "dict(type='RasterizePolygons') after the resize transforms")
        packed = {}
        if 'img' in results:
            packed['inputs'] = _image_to_tensor(results['img'])
        sample = SegDataSample()
        mask = results.get('gt_seg_map')
        if mask is not None:
            if mask.ndim == 3:
                data = multilabel_mask_to_tensor(mask)
            elif self.multi_label:
                data = multilabel_mask_to_tensor(mask[..., None])
            else:
                data = torch.from_numpy(mask[None].astype(np.int64))
            sample.gt_sem_seg = PixelData(data=data)
        defaults = self._defaults(results)
        meta = {}
        for key in self.meta_keys:
            if key in results:
                meta[key] = results[key]
            elif key in defaults:
                meta[key] = defaults[key]
        sample.set_metainfo(meta)
        packed['data_samples'] = sample
        return packed

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(meta_keys={self.meta_keys}, '
                f'multi_label={self.multi_label})')
