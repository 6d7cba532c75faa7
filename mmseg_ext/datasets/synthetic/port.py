"""A port-structure-like folder data set: labelled, unlabelled and test images.

Layout (as the port-structure competition)::

    root/train/labeled_images/NNNN.jpg   root/train/labels/NNNN.png
    root/train/unlabeled_images/NNNN.jpg
    root/test/images/NNNN.jpg

Labels are 8-bit maps: 0 background, 1 container_truck, 2 forklift, 3 reach_stacker,
4 ship, and 255 (ignore) on a one-pixel ring around every object, as annotators leave
uncertain borders. Images are not square; each class has its own colour.
"""
from __future__ import annotations

import os
import os.path as osp
from typing import Dict, Tuple

import cv2
import numpy as np

from ...io.image_write import write_image

_COLOURS = {1: (40, 200, 40), 2: (200, 60, 40), 3: (40, 60, 220), 4: (200, 200, 60)}


def _draw(rng: np.random.Generator, size: Tuple[int, int]):
    h, w = size
    img = rng.integers(90, 140, size=(h, w, 3)).astype(np.int16)
    label = np.zeros((h, w), np.uint8)
    ring = np.zeros((h, w), np.uint8)
    for cls in rng.permutation([1, 2, 3, 4])[:int(rng.integers(1, 4))]:
        shape = np.zeros((h, w), np.uint8)
        bh, bw = int(rng.integers(h // 6, h // 2)), int(rng.integers(w // 8, w // 3))
        y, x = int(rng.integers(0, h - bh)), int(rng.integers(0, w - bw))
        if cls == 4:  # ships: wide ellipses
            cv2.ellipse(shape, (x + bw // 2, y + bh // 2), (bw // 2, bh // 3), 0, 0, 360,
                        1, -1)
        else:
            cv2.rectangle(shape, (x, y), (x + bw, y + bh), 1, -1)
        colour = np.array(_COLOURS[int(cls)], np.int16)
        noise = rng.integers(-15, 16, size=(h, w, 3))
        img[shape > 0] = (colour + noise)[shape > 0]
        label[shape > 0] = cls
        ring = np.maximum(ring, cv2.dilate(shape, np.ones((3, 3), np.uint8)) - shape)
    label[(ring > 0) & (label == 0)] = 255
    return np.clip(img, 0, 255).astype(np.uint8), label


def make_port_dataset(root: str, num_labeled: int = 6, num_unlabeled: int = 4,
                      num_test: int = 3, size: Tuple[int, int] = (48, 80),
                      seed: int = 0) -> Dict[str, str]:
    """Write the data set under ``root`` and return its folders.

    Args:
        root: output folder; rewriting gives identical files (pure function of the
            arguments).
        num_labeled, num_unlabeled, num_test: images per folder.
        size: (H, W) in pixels, non-square by default.
        seed: random seed.

    Returns:
        ``{'labeled_images', 'labels', 'unlabeled_images', 'test_images'}`` -> folder.
    """
    rng = np.random.default_rng(seed)
    dirs = {'labeled_images': osp.join(root, 'train', 'labeled_images'),
            'labels': osp.join(root, 'train', 'labels'),
            'unlabeled_images': osp.join(root, 'train', 'unlabeled_images'),
            'test_images': osp.join(root, 'test', 'images')}
    for path in dirs.values():
        os.makedirs(path, exist_ok=True)
    jpeg = [cv2.IMWRITE_JPEG_QUALITY, 95]
    for i in range(num_labeled):
        img, label = _draw(rng, size)
        write_image(osp.join(dirs['labeled_images'], f'{i:04d}.jpg'), img, jpeg)
        write_image(osp.join(dirs['labels'], f'{i:04d}.png'), label)
    for key, count, offset in (('unlabeled_images', num_unlabeled, 1000),
                               ('test_images', num_test, 2000)):
        for i in range(count):
            img, _ = _draw(rng, size)
            write_image(osp.join(dirs[key], f'{offset + i:04d}.jpg'), img, jpeg)
    return dirs
