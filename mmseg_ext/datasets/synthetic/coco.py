"""A recycling-trash-like COCO data set: polygons that overlap, category ids with gaps.

Layout (as the trash competition's ``data/`` folder)::

    root/train.json  root/val.json        COCO: images, annotations (polygons), categories
    root/test.json                        images only, "annotations": []
    root/batch_01_vt/NNNN.jpg             train images   (batch_02_vt: val, batch_03: test)

Quirks on purpose: category ids are not class indices (``'Paper'`` has id 0, ids have
gaps, ``categories`` is not in class order); objects overlap; one annotation has two
polygons; the last train image has no annotation; coordinates are floats with one
decimal. The image shows each class in its own colour, objects painted largest first
(the ``'area_desc'`` drawing order), so a small network learns the masks.
"""
from __future__ import annotations

import json
import os
import os.path as osp
from typing import Dict, List, Tuple

import cv2
import numpy as np

from ...io.atomic import atomic_write_text
from ...io.image_write import write_image
from ...utils.class_names import TRASH_CLASSES

#: category id of each class name: id 0, gaps, not in class order.
TRASH_CATEGORY_IDS = {'General trash': 7, 'Paper': 0, 'Paper pack': 3, 'Metal': 12,
                      'Glass': 4, 'Plastic': 20, 'Styrofoam': 9, 'Plastic bag': 15,
                      'Battery': 1, 'Clothing': 30}
_FOLDERS = {'train': 'batch_01_vt', 'val': 'batch_02_vt', 'test': 'batch_03'}


def _colour(class_index: int) -> np.ndarray:
    hue = (class_index * 37) % 180
    hsv = np.uint8([[[hue, 200, 90 + (class_index * 15) % 150]]])
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0].astype(np.int16)


def _polygon(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A star-shaped polygon (5-9 points) as (P, 2) float (x, y), 1 decimal."""
    n = int(rng.integers(5, 10))
    radius = rng.uniform(min(h, w) / 8, min(h, w) / 3)
    cx, cy = rng.uniform(radius / 2, w - radius / 2), rng.uniform(radius / 2, h - radius / 2)
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    radii = radius * rng.uniform(0.6, 1.0, n)
    pts = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], 1)
    pts[:, 0] = np.clip(pts[:, 0], 0, w - 1)
    pts[:, 1] = np.clip(pts[:, 1], 0, h - 1)
    return np.round(pts, 1)


def _image(rng: np.random.Generator, h: int, w: int, objects: List[Tuple[int, list]]):
    img = rng.integers(100, 140, size=(h, w, 3)).astype(np.int16)
    for cls, polys in objects:  # already in painting order
        mask = np.zeros((h, w), np.uint8)
        cv2.fillPoly(mask, [np.round(p).astype(np.int32) for p in polys], 1)
        noise = rng.integers(-15, 16, size=(h, w, 3))
        img[mask > 0] = (_colour(cls) + noise)[mask > 0]
    return np.clip(img, 0, 255).astype(np.uint8)


def make_trash_coco(root: str, num_train: int = 6, num_val: int = 3, num_test: int = 2,
                    size: Tuple[int, int] = (64, 64), seed: int = 0) -> Dict[str, str]:
    """Write the data set under ``root``; returns the paths of the three JSON files.

    Args:
        root: output folder (created; files are rewritten identically, the output is a
            pure function of the arguments).
        num_train, num_val, num_test: images per split.
        size: (H, W) of every image in pixels.
        seed: random seed.

    Returns:
        ``{'train': path, 'val': path, 'test': path}``.
    """
    rng = np.random.default_rng(seed)
    h, w = size
    categories = [dict(id=cid, name=name, supercategory=name)
                  for name, cid in sorted(TRASH_CATEGORY_IDS.items(), key=lambda x: -x[1])]
    paths = {}
    image_id, ann_id = 0, 0
    for split, count in (('train', num_train), ('val', num_val), ('test', num_test)):
        os.makedirs(osp.join(root, _FOLDERS[split]), exist_ok=True)
        images, annotations = [], []
        for i in range(count):
            file_name = f'{_FOLDERS[split]}/{i:04d}.jpg'
            empty = split == 'train' and i == count - 1
            objects = []
            for k in range(0 if empty else int(rng.integers(2, 5))):
                cls = int(rng.integers(1, len(TRASH_CLASSES)))
                polys = [_polygon(rng, h, w)]
                if k == 0 and i == 0:  # one annotation with two polygons
                    polys.append(_polygon(rng, h, w))
                objects.append((cls, polys))
            areas = [sum(cv2.contourArea(p.astype(np.float32)) for p in polys)
                     for _, polys in objects]
            order = sorted(range(len(objects)), key=lambda j: -areas[j])
            img = _image(rng, h, w, [objects[j] for j in order])
            write_image(osp.join(root, file_name), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
            images.append(dict(id=image_id, file_name=file_name, height=h, width=w,
                               license=0, flickr_url=None, coco_url=None,
                               date_captured=None))
            if split != 'test':
                for (cls, polys), area in zip(objects, areas):
                    xy = np.concatenate(polys)
                    x0, y0 = xy.min(0)
                    x1, y1 = xy.max(0)
                    annotations.append(dict(
                        id=ann_id, image_id=image_id,
                        category_id=TRASH_CATEGORY_IDS[TRASH_CLASSES[cls]],
                        segmentation=[[round(float(v), 1) for v in p.ravel()] for p in polys],
                        area=round(float(area), 1),
                        bbox=[round(float(v), 1) for v in (x0, y0, x1 - x0, y1 - y0)],
                        iscrowd=0))
                    ann_id += 1
            image_id += 1
        coco = dict(info=dict(description=f'synthetic trash-like {split}'),
                    licenses=[dict(id=0, name='CC0')], images=images,
                    annotations=annotations, categories=categories)
        paths[split] = osp.join(root, f'{split}.json')
        atomic_write_text(paths[split], json.dumps(coco), force=True)
    return paths
