"""A multi-class image/label-folder data set of coloured shapes on a noisy background.

Layout (mmseg's folder convention, as the port-structure and CamVid data)::

    root/images/{train,val}/NNNN.png   (H, W, 3) uint8 BGR
    root/labels/{train,val}/NNNN.png   (H, W) uint8, 0 = background, 1..3 = shapes

Each class has its own colour range, so a small network learns it in a few iterations.
"""
from __future__ import annotations

import os
import os.path as osp
from typing import Tuple

import cv2
import numpy as np

from ...io.image_write import write_image

SHAPES_CLASSES = ('background', 'disc', 'square', 'triangle')
_COLOURS = {1: (40, 200, 40), 2: (200, 60, 40), 3: (40, 60, 220)}  # BGR, per class


def _draw_sample(rng: np.random.Generator, size: Tuple[int, int]):
    h, w = size
    img = rng.integers(90, 140, size=(h, w, 3), dtype=np.uint8)
    label = np.zeros((h, w), np.uint8)
    for cls in rng.permutation([1, 2, 3]):
        r = int(rng.integers(min(h, w) // 8, min(h, w) // 4))
        cx, cy = int(rng.integers(r, w - r)), int(rng.integers(r, h - r))
        shape = np.zeros((h, w), np.uint8)
        if cls == 1:
            cv2.circle(shape, (cx, cy), r, 1, -1)
        elif cls == 2:
            cv2.rectangle(shape, (cx - r, cy - r), (cx + r, cy + r), 1, -1)
        else:
            pts = np.array([[cx, cy - r], [cx - r, cy + r], [cx + r, cy + r]], np.int32)
            cv2.fillPoly(shape, [pts], 1)
        colour = np.array(_COLOURS[int(cls)], np.int16)
        noise = rng.integers(-20, 21, size=(h, w, 3))
        painted = np.clip(colour + noise, 0, 255).astype(np.uint8)
        img[shape > 0] = painted[shape > 0]
        label[shape > 0] = cls
    return img, label


def make_shapes_dataset(root: str, num_train: int = 24, num_val: int = 8,
                        size: Tuple[int, int] = (64, 80), seed: int = 0) -> str:
    """Write the data set under ``root`` and return ``root``.

    Args:
        root: output folder; files that already exist are rewritten identically
            (the output is a pure function of the arguments).
        num_train, num_val: number of image/label pairs per split.
        size: (H, W) in pixels; non-square by default.
        seed: random seed.
    """
    rng = np.random.default_rng(seed)
    for split, count in (('train', num_train), ('val', num_val)):
        os.makedirs(osp.join(root, 'images', split), exist_ok=True)
        os.makedirs(osp.join(root, 'labels', split), exist_ok=True)
        for i in range(count):
            img, label = _draw_sample(rng, size)
            write_image(osp.join(root, 'images', split, f'{i:04d}.png'), img)
            write_image(osp.join(root, 'labels', split, f'{i:04d}.png'), label)
    return root
