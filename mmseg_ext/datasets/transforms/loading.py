"""Image loading for every shipped config: one checked reader.

:class:`LoadImageFromFileChecked` replaces mmcv's ``LoadImageFromFile`` in the
multi-label and the multi-class configs alike (``dict(type='LoadImageFromFileChecked')``
in a user's config): failures name the file, and 16-bit images are scaled by the bit
depth their data uses instead of ``value >> 8``.
"""
from __future__ import annotations

import os.path as osp
from typing import Optional

import mmcv
import mmengine.fileio as fileio
import numpy as np
from mmcv.transforms import LoadImageFromFile
from mmseg.registry import TRANSFORMS

from ...io.images import decode_image, header_size, stores_high_bit_depth
from ...utils.errors import ConfigError, DataFileError
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
