"""Image and label-map loading for every shipped config: checked readers.

:class:`LoadImageFromFileChecked` replaces mmcv's ``LoadImageFromFile`` in the
multi-label and the multi-class configs alike (``dict(type='LoadImageFromFileChecked')``
in a user's config): failures name the file, and 16-bit images are scaled by the bit
depth their data uses instead of ``value >> 8``. :class:`LoadAnnotationsChecked`
replaces mmseg's ``LoadAnnotations`` of label-map PNGs: channels, size and values are
checked against the image and the class count.
"""
from __future__ import annotations

import os.path as osp
from typing import Optional

import mmcv
import mmengine.fileio as fileio
import numpy as np
from mmcv.transforms import LoadImageFromFile
from mmseg.datasets.transforms import LoadAnnotations
from mmseg.registry import TRANSFORMS

from ...io.images import (
    check_label_map,
    decode_image,
    header_size,
    stored_channels,
    stores_high_bit_depth,
)
from ...utils.errors import ConfigError, DataError, DataFileError
from ...utils.readers import check_pixels, check_regular_file


@TRANSFORMS.register_module()
class LoadImageFromFileChecked(LoadImageFromFile):
    """mmcv's ``LoadImageFromFile`` whose failures name the file, and which reads 16-bit
    images by the bit depth their data uses.

    Stock loading reports an empty file as a bare OpenCV assertion, relies on an
    ``assert`` (dropped under ``python -O``) for undecodable bytes, and turns a 16-bit
    PNG into 8 bits by ``value >> 8``, which makes 12-bit data (values < 4096) nearly
    black. Here every failure (missing, empty, truncated or not an image) raises
    :class:`DataFileError` ``'<img_path>: cannot decode image (...)'`` (``ignore_empty``
    still returns None as stock does), and 16-bit PNG/TIFF images are scaled by
    :func:`mmseg_ext.io.images.to_uint8`: ``round(value * 255 / (2**b - 1))`` with ``b``
    the smallest of 8, 10, 12, 14, 16 bits that holds the image's maximum, or
    ``bit_depth`` when given. 8-bit images load exactly as stock loads them. A FIFO or
    other special file is refused before it is opened, and an image with more pixels
    than :func:`mmseg_ext.utils.readers.max_pixels` (or a side of 0) is refused from its
    header, before decoding.

    Args:
        bit_depth: the bit depth of the 16-bit data (e.g. 12); None: per image, as
            above. Set it when it is known, so that a dark image is not brightened.
        **kwargs: ``LoadImageFromFile``'s (``color_type='color'`` only for 16-bit
            files; ``to_float32``, ``backend_args``, ``ignore_empty``...).

    Output: ``results['img']`` ``(H, W, 3)`` uint8 BGR by default, ``img_shape``,
    ``ori_shape``.
    """

    def __init__(self, bit_depth: Optional[int] = None, **kwargs) -> None:
        super().__init__(**kwargs)
        if bit_depth is not None and bit_depth not in range(8, 17):
            raise ConfigError(f'{type(self).__name__}: bit_depth must be in 8..16, got {bit_depth}')
        self.bit_depth = bit_depth

    def transform(self, results: dict) -> Optional[dict]:
        path = results['img_path']
        local = '://' not in str(path)
        if local and osp.lexists(path):
            check_regular_file(path, 'image file')  # a FIFO would block the read
        try:
            data = fileio.get(path, backend_args=self.backend_args)
            size = header_size(data)
            if size is not None:
                check_pixels(path, *size)  # before decoding
            if stores_high_bit_depth(data):
                img = decode_image(data, self.bit_depth)
            else:
                img = mmcv.imfrombytes(data, flag=self.color_type,
                                       backend=self.imdecode_backend)
        except FileNotFoundError:
            if self.ignore_empty:
                return None
            raise DataFileError(f'{path}: image file not found') from None
        except DataFileError:
            raise
        except Exception as exc:  # noqa: BLE001  (cv2.error, AssertionError, ...)
            if self.ignore_empty:
                return None
            detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else \
                type(exc).__name__
            raise DataFileError(f'{path}: cannot decode image ({detail})') from None
        if img is None:
            if self.ignore_empty:
                return None
            raise DataFileError(f'{path}: cannot decode image')
        check_pixels(path, *img.shape[:2])
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results


@TRANSFORMS.register_module()
class LoadAnnotationsChecked(LoadAnnotations):
    """mmseg's ``LoadAnnotations`` for label-map PNGs, checked against the data they
    describe: the tools load every stock ``LoadAnnotations`` step through it
    (:func:`mmseg_ext.config.label_loading.check_label_loading`).

    Stock loading takes a colour label (``(H, W, 3)``) into the batch, where it fails as
    a stacking error; wraps 16-bit values above 255 into other classes; trains on a
    label of another size than its image (the resize stretches it); and lets a value
    that is no class reach the loss (``Target 77 is out of bounds``) or drop out of
    the IoU metric without a word. Here each is a :class:`DataFileError` naming the
    label file: a missing or undecodable file, more than one channel, a value above
    255, a size other than the image's (when the image was loaded first), and, with
    ``num_classes``, a value (after ``reduce_zero_label`` and the data set's
    ``label_map``) that is neither a class ``0..num_classes-1`` nor ``ignore_index``.

    Args:
        num_classes: the data set's class count; None checks no values.
        ignore_index: the label value that marks pixels left out (255).
        **kwargs: ``LoadAnnotations``'s (``reduce_zero_label``, ``imdecode_backend``,
            ``backend_args``).

    Output: ``results['gt_seg_map']`` ``(H, W)`` uint8, ``'gt_seg_map'`` in
    ``seg_fields``.
    """

    def __init__(self, num_classes: Optional[int] = None, ignore_index: int = 255,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if num_classes is not None and (isinstance(num_classes, bool) or
                                        not isinstance(num_classes, int) or
                                        not 1 <= num_classes <= 255):
            raise ConfigError(f'{type(self).__name__}: num_classes must be an integer in '
                              f'1..255, got {num_classes!r}')
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    def _read(self, path: str) -> np.ndarray:
        if '://' not in str(path):
            if not osp.lexists(path):
                raise DataFileError(f'{path}: label file not found')
            check_regular_file(path, 'label file')
        try:
            data = fileio.get(path, backend_args=self.backend_args)
            size = header_size(data)
            if size is not None:
                check_pixels(path, *size)
            seg = mmcv.imfrombytes(data, flag='unchanged', backend=self.imdecode_backend)
        except DataFileError:
            raise
        except Exception as exc:  # noqa: BLE001  (PIL/cv2 errors of a bad file)
            detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else \
                type(exc).__name__
            raise DataFileError(f'{path}: cannot decode label map ({detail})') from None
        if seg is None:
            raise DataFileError(f'{path}: cannot decode label map')
        return seg

    def _load_seg_map(self, results: dict) -> None:
        path = results['seg_map_path']
        seg = self._read(path)
        if seg.ndim == 3 and seg.shape[2] == 1:
            seg = seg[..., 0]
        if seg.ndim != 2:  # named as the file stores it (OpenCV reads LA as 4 channels)
            where = path if '://' not in str(path) else \
                fileio.get(path, backend_args=self.backend_args)
            raise DataFileError(f'{path}: not a single-channel label map '
                                f'({stored_channels(where, seg.shape)}); write class '
                                'indices, one channel')
        try:  # the one label-map rule (values 0..255, the image's size)
            seg = check_label_map(seg, path, results.get('ori_shape'), results.get('img_path'))
        except DataError as exc:
            raise DataFileError(str(exc)) from None
        if self.reduce_zero_label is None:
            self.reduce_zero_label = results['reduce_zero_label']
        if self.reduce_zero_label != results['reduce_zero_label']:
            raise ConfigError(f'{type(self).__name__}: reduce_zero_label='
                              f'{self.reduce_zero_label} but the data set has '
                              f'{results["reduce_zero_label"]}')
        seg = _remap(seg, self.reduce_zero_label, results.get('label_map'))
        if self.num_classes is not None:
            counts = np.bincount(seg.ravel(), minlength=256)
            if 0 <= self.ignore_index < 256:
                counts[self.ignore_index] = 0
            bad = np.flatnonzero(counts[self.num_classes:])
            if bad.size:
                raise DataFileError(
                    f'{path}: holds the label value {int(bad[0]) + self.num_classes}, but '
                    f'there are {self.num_classes} classes (values 0..'
                    f'{self.num_classes - 1} or the ignore index {self.ignore_index})')
        results['gt_seg_map'] = seg
        results['seg_fields'].append('gt_seg_map')


def _remap(seg: np.ndarray, reduce_zero_label: bool, label_map: Optional[dict]) -> np.ndarray:
    """``seg`` (uint8) through ``reduce_zero_label`` (0 -> 255, v -> v - 1, 255 stays)
    and then the data set's ``label_map`` ``{old: new}``, as mmseg defines them."""
    table = np.arange(256, dtype=np.int64)
    if reduce_zero_label:
        table = np.where(table == 0, 255, np.where(table == 255, 255, table - 1))
    if label_map:
        after = table.copy()
        for old, new in label_map.items():
            after[table == old] = new
        table = after
    return table.astype(np.uint8)[seg]
