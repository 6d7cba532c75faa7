"""Padding and rotation that fill every channel of a multi-label ``(H, W, C)`` mask.

Stock mmcv/mmseg fill a 3-D mask through an OpenCV ``Scalar``, which holds at most
four values:

* ``Pad`` builds a ``C``-value tuple and ``cv2.copyMakeBorder`` rejects it for
  ``C > 4``;
* ``RandomRotate`` passes the plain number ``seg_pad_val``, which OpenCV reads as
  ``(v, 0, 0, 0)`` and repeats every four channels: channels 0, 4, 8, ... are filled
  with 255 and all the others with 0 (background instead of ignore).

OpenCV repeats a ``Scalar`` cyclically over the channels (channel ``i`` takes value
``i % 4``), so a four-value ``(v, v, v, v)`` fills any number of channels with ``v``;
both transforms below use that. Everything else (sizes, random state, image handling)
is inherited from the stock transforms.

A second difference: ``cv2.warpAffine`` with nearest-neighbour interpolation takes a
different code path for 2 or more than 4 channels than for 1, 3 or 4, and rounds some
source coordinates differently (about 1% of the pixels of a rotated 29-channel mask
differ from rotating each channel alone). :class:`MultiLabelRandomRotate` therefore
rotates the mask in groups of 4 (then 3 or 1) channels, which is bit-identical to
rotating every channel as a 2-D mask.
"""
from __future__ import annotations

import cv2
import mmcv
import numpy as np
from mmcv.transforms import Pad, RandomFlip
from mmseg.datasets.transforms import RandomRotate
from mmseg.registry import TRANSFORMS

_BORDER = {
    'constant': cv2.BORDER_CONSTANT,
    'edge': cv2.BORDER_REPLICATE,
    'reflect': cv2.BORDER_REFLECT_101,
    'symmetric': cv2.BORDER_REFLECT,
}


def _fill_value(value, array: np.ndarray):
    """A border value that OpenCV applies to every channel of ``array``."""
    if array.ndim == 3 and not isinstance(value, (tuple, list)):
        return (value,) * 4
    return value


def _keep_channel_axis(out: np.ndarray, like: np.ndarray) -> np.ndarray:
    """OpenCV drops a trailing axis of length 1; put it back."""
    if like.ndim == 3 and out.ndim == 2:
        return out[..., None]
    return out


def _channel_groups(channels: int):
    """Channel slices of 4, then 3 or single channels (never 2, never more than 4)."""
    start, groups = 0, []
    while start < channels:
        left = channels - start
        size = 4 if left >= 4 else (3 if left == 3 else 1)
        groups.append(slice(start, start + size))
        start += size
    return groups


def _rotate_mask(seg: np.ndarray, **kwargs) -> np.ndarray:
    """``mmcv.imrotate`` of a 2-D or ``(H, W, C)`` mask, channel groups of <= 4."""
    if seg.ndim == 2:
        return mmcv.imrotate(seg, **kwargs)
    parts = []
    for group in _channel_groups(seg.shape[2]):
        part = mmcv.imrotate(np.ascontiguousarray(seg[..., group]), **kwargs)
        parts.append(part if part.ndim == 3 else part[..., None])
    return np.concatenate(parts, axis=2) if len(parts) > 1 else parts[0]


def _seg_keys(results: dict):
    keys = list(results.get('seg_fields', []))
    if 'gt_seg_map' in results and 'gt_seg_map' not in keys:
        keys.append('gt_seg_map')
    return [k for k in keys if results.get(k) is not None]


@TRANSFORMS.register_module()
class MultiLabelPad(Pad):
    """mmcv's ``Pad`` that also pads ``(H, W, C)`` masks with any ``C``.

    The image is padded exactly as stock ``Pad`` pads it (same ``size`` /
    ``size_divisor`` / ``pad_to_square`` / ``padding_mode`` arguments, same
    ``pad_shape``, ``img_shape``, ``pad_fixed_size``, ``pad_size_divisor`` keys). Every
    mask in ``seg_fields`` (2-D ``(H, W)`` or 3-D ``(H, W, C)``, any dtype) is padded at
    the bottom/right to ``pad_shape[:2]`` with ``pad_val['seg']`` (default 255 =
    ignore) in every channel, or with the border mode.
    """

    def _pad_seg(self, results: dict) -> None:
        value = self.pad_val.get('seg', 255)
        target_h, target_w = results['pad_shape'][:2]
        for key in _seg_keys(results):
            seg = results[key]
            bottom = max(target_h - seg.shape[0], 0)
            right = max(target_w - seg.shape[1], 0)
            padded = cv2.copyMakeBorder(
                seg, 0, bottom, 0, right, _BORDER[self.padding_mode],
                value=_fill_value(value, seg))
            results[key] = _keep_channel_axis(padded, seg)


@TRANSFORMS.register_module()
class MultiLabelRandomRotate(RandomRotate):
    """mmseg's ``RandomRotate`` that fills every mask channel with ``seg_pad_val``.

    Same arguments and random draws as the stock transform (``prob``, ``degree``,
    ``pad_val``, ``seg_pad_val``, ``center``, ``auto_bound``). Masks in ``seg_fields``
    (2-D or ``(H, W, C)``) are rotated with nearest-neighbour interpolation, in groups
    of at most 4 channels so that the result equals stock ``RandomRotate`` applied to
    each channel as a 2-D mask; the area outside the source becomes ``seg_pad_val``
    (default 255 = ignore) in all ``C`` channels. A numeric ``pad_val`` is likewise applied to all image channels (stock
    fills only the first channel of a colour image when ``pad_val != 0``).
    """

    def transform(self, results: dict) -> dict:
        rotate, degree = self.generate_degree()
        if not rotate:
            return results
        img = results['img']
        results['img'] = _keep_channel_axis(mmcv.imrotate(
            img, angle=degree, border_value=_fill_value(self.pal_val, img),
            center=self.center, auto_bound=self.auto_bound), img)
        for key in _seg_keys(results):
            seg = results[key]
            results[key] = _rotate_mask(
                seg, angle=degree, border_value=_fill_value(self.seg_pad_val, seg),
                center=self.center, auto_bound=self.auto_bound, interpolation='nearest')
        if self.auto_bound:
            results['img_shape'] = results['img'].shape[:2]
        return results


def swap_channels(mask: np.ndarray, pairs) -> np.ndarray:
    """``(H, W, C)`` mask with the channels of each index pair exchanged."""
    order = list(range(mask.shape[-1]))
    for a, b in pairs:
        order[a], order[b] = order[b], order[a]
    return mask[..., order]


@TRANSFORMS.register_module()
class MultiLabelRandomFlip(RandomFlip):
    """mmcv's ``RandomFlip`` that knows left from right in a multi-label mask.

    A horizontal flip turns a left lung into what looks like a right lung; the channels
    of the lateral pairs are exchanged with it, so the labels follow the anatomy. The
    pairs come with each sample as ``results['flip_swap_pairs']`` (channel indices), set
    by the data set from its metainfo ``flip_swap_classes`` (class names): one setting
    that the test-time flip merge reads too. Without pairs it is the stock flip.

    Input/output: ``results['gt_seg_map']`` ``(H, W, C)`` uint8, flipped with the image.
    """

    def _flip(self, results: dict) -> None:
        super()._flip(results)
        pairs = results.get('flip_swap_pairs')
        mask = results.get('gt_seg_map')
        if pairs and mask is not None and mask.ndim == 3 and \
                results.get('flip_direction') == 'horizontal':
            results['gt_seg_map'] = np.ascontiguousarray(swap_channels(mask, pairs))
