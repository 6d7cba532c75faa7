"""Run an albumentations pipeline, written as config dicts, inside an mmseg pipeline.

Differences from mmseg's ``Albu`` (which converts BGR<->RGB unconditionally, turns a
2-D mask into 3 channels and never updates ``img_shape``):

* only the image is colour-converted; masks go through albumentations' ``mask``
  target untouched (all ``C`` channels of a multi-label ``(H, W, C)`` mask together);
* ``img_shape`` is updated, and every mask is checked to match the image size;
* a grey image stored as three equal BGR channels (X-rays loaded with
  ``LoadImageFromFile``) is passed as one ``(H, W)`` channel, so intensity transforms
  such as ``CLAHE`` act on the grey values themselves (albumentations applies CLAHE to
  the L channel of LAB for a 3-channel image, which is not the same).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import albumentations as A
import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS

from ...utils.errors import ConfigError, DataError

#: ``(rank, worker)`` of one process without data-loader workers
MAIN_PLACE = (0, None)


def _process_place() -> tuple:
    """``(distributed rank, data-loader worker id or None)`` of the calling process."""
    import torch.utils.data
    from mmengine.dist import get_rank
    worker = torch.utils.data.get_worker_info()
    return get_rank(), (worker.id if worker is not None else None)


def stream_seed(seed: int, place: tuple) -> int:
    """The seed of the albumentations stream of ``place`` = ``(rank, worker)``:
    ``seed`` itself for :data:`MAIN_PLACE`, else a value derived from all three by
    numpy's ``SeedSequence`` (distinct places get independent streams)."""
    if tuple(place) == MAIN_PLACE:
        return int(seed)
    rank, worker = place
    entropy = [int(seed), int(rank), -1 if worker is None else int(worker)]
    entropy = [v % 2**32 for v in entropy]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0] & 0x7FFFFFFF)


def build_albumentation(cfg: Any):
    """Build an albumentations transform from ``dict(type='Name', **kwargs)``.

    ``type`` is a name in the ``albumentations`` namespace (or a class); a
    ``transforms`` list (``Compose``, ``OneOf``, ``SomeOf``, ``Sequential``, ...) is
    built recursively. Already-built transforms are returned as they are.
    """
    if not isinstance(cfg, dict):
        return cfg
    kwargs = {k: v for k, v in dict(cfg).items()}
    kind = kwargs.pop('type', None)
    if kind is None:
        raise ConfigError(f'albumentations transform config without a type: {cfg}')
    cls = kind if isinstance(kind, type) else getattr(A, kind, None)
    if cls is None:
        raise ConfigError(f'albumentations {A.__version__} has no transform {kind!r}')
    if 'transforms' in kwargs:
        kwargs['transforms'] = [build_albumentation(c) for c in kwargs['transforms']]
    return cls(**kwargs)


def _is_grey_bgr(img: np.ndarray) -> bool:
    return (img.ndim == 3 and img.shape[2] == 3 and np.array_equal(img[..., 0], img[..., 1])
            and np.array_equal(img[..., 0], img[..., 2]))


@TRANSFORMS.register_module()
class Albumentations(BaseTransform):
    """Apply ``albumentations.Compose(transforms)`` to ``img`` and the masks.

    Example (X-rays)::

        dict(type='Albumentations', transforms=[
            dict(type='CLAHE', clip_limit=(2.0, 2.0), p=1.0),
            dict(type='OneOf', transforms=[
                dict(type='RandomBrightnessContrast', p=1.0),
                dict(type='GaussNoise', p=1.0)], p=0.3),
            dict(type='Rotate', limit=10, fill_mask=255, p=0.5)])

    Note that albumentations reads a scalar ``clip_limit=2.0`` of ``CLAHE`` as the
    random range ``(1, 2.0)``; write ``(2.0, 2.0)`` for a fixed limit. Geometric
    transforms should fill masks with ``fill_mask=255`` (ignore).

    Required keys: ``img`` (``(H, W)`` or ``(H, W, 3)`` BGR, uint8 or float32).
    Modified: ``img``, ``img_shape``, each mask in ``seg_fields`` (2-D or
    ``(H, W, C)``, dtype and values kept apart from what geometric transforms do).

    Args:
        transforms: albumentations transform configs (see :func:`build_albumentation`).
        bgr_to_rgb: convert a 3-channel image to RGB for albumentations and back to
            BGR afterwards (mmseg images are BGR; albumentations' colour transforms
            assume RGB). Masks are never converted.
        grey_as_single_channel: a 3-channel image whose channels are equal is given
            to albumentations as one ``(H, W)`` channel and copied back to three.
            Disable it for colour-only transforms (e.g. ``HueSaturationValue``).
        seed: seed of albumentations' own random generator (``Compose(seed=...)``),
            a fixed stream. Each data-loader worker and each distributed rank gets
            its own stream derived from it (:func:`stream_seed`), so that workers never
            repeat one another's draws; one process without workers uses ``seed``
            itself. None (default)
            draws each call's seed from numpy's global generator, which the runner
            seeds from ``randomness.seed`` (and mmengine per worker), so a training
            run repeats with its seed. Before this, None drew from the OS and two
            runs with one seed augmented differently.
        **compose_kwargs: other ``albumentations.Compose`` arguments.
    """

    def __init__(self,
                 transforms: Sequence[dict],
                 bgr_to_rgb: bool = True,
                 grey_as_single_channel: bool = True,
                 seed: Optional[int] = None,
                 **compose_kwargs) -> None:
        self.transforms_cfg = [dict(t) if isinstance(t, dict) else t for t in transforms]
        self.bgr_to_rgb = bgr_to_rgb
        self.grey_as_single_channel = grey_as_single_channel
        self.seed = seed
        self.pipeline = A.Compose([build_albumentation(t) for t in self.transforms_cfg],
                                  seed=seed, **compose_kwargs)
        self._stream_place = MAIN_PLACE  # whose stream the generator holds

    def _to_albu_image(self, img: np.ndarray):
        if self.grey_as_single_channel and _is_grey_bgr(img):
            return np.ascontiguousarray(img[..., 0]), 'grey'
        if self.bgr_to_rgb and img.ndim == 3 and img.shape[2] == 3:
            return cv2.cvtColor(img, cv2.COLOR_BGR2RGB), 'rgb'
        return img, 'asis'

    @staticmethod
    def _from_albu_image(img: np.ndarray, how: str) -> np.ndarray:
        if how == 'grey':
            grey = img if img.ndim == 2 else img[..., 0]
            return np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=2))
        if how == 'rgb':
            return cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
        return img

    def transform(self, results: dict) -> dict:
        img, how = self._to_albu_image(results['img'])
        keys: List[str] = [k for k in results.get('seg_fields', [])
                           if results.get(k) is not None]
        if 'gt_seg_map' in results and results['gt_seg_map'] is not None \
                and 'gt_seg_map' not in keys:
            keys.append('gt_seg_map')
        data: Dict[str, Any] = dict(image=img)
        if keys:
            data['mask'] = results[keys[0]]
        if len(keys) > 1:
            data['masks'] = [results[k] for k in keys[1:]]
        if self.seed is None:  # follow the seeded global generator (see Args)
            self.pipeline.set_random_seed(int(np.random.randint(0, 2**31 - 1)))
        else:
            place = _process_place()
            if place != self._stream_place:  # a worker's or a rank's copy: its own stream
                self.pipeline.set_random_seed(stream_seed(self.seed, place))
                self._stream_place = place
        out = self.pipeline(**data)
        new_img = self._from_albu_image(out['image'], how)
        results['img'] = new_img
        results['img_shape'] = new_img.shape[:2]
        new_masks = ([out['mask']] if keys else []) + list(out.get('masks', []))[:len(keys) - 1]
        for key, mask in zip(keys, new_masks):
            mask = np.asarray(mask)
            old = results[key]
            if old.ndim == 3 and mask.ndim == 2:
                mask = mask[..., None]
            if mask.shape[:2] != new_img.shape[:2]:
                raise DataError(f'{results.get("img_path")}: after albumentations the '
                                 f'{key} is {mask.shape[:2]} but the image is '
                                 f'{new_img.shape[:2]}')
            results[key] = np.ascontiguousarray(mask)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(transforms={self.transforms_cfg}, '
                f'bgr_to_rgb={self.bgr_to_rgb}, '
                f'grey_as_single_channel={self.grey_as_single_channel})')
