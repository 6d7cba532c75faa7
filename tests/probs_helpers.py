"""Helpers for the submission-tool tests: small probability folders and image folders."""
import os.path as osp

import cv2
import numpy as np

from mmseg_ext.io.probs import ProbFolderWriter


def write_prob_folder(root, images, classes, task='multi-label', dtype='uint8', order=None):
    """``images``: {img_path: (probs (C, h, w) float, ori_shape)}; written in ``order``."""
    with ProbFolderWriter(str(root), classes, task, dtype=dtype) as w:
        for img_path in (order or list(images)):
            probs, ori_shape = images[img_path]
            w.write(np.asarray(probs, np.float32), img_path, ori_shape)
        w.commit()
    return str(root)


def write_images(root, sizes):
    """``sizes``: {relative path: (H, W)}; writes grey PNG/JPG files."""
    for rel, (h, w) in sizes.items():
        path = osp.join(str(root), rel)
        import os
        os.makedirs(osp.dirname(path), exist_ok=True)
        cv2.imwrite(path, np.full((h, w, 3), 100, np.uint8))
    return str(root)


def two_image_world(tmp_path, classes, prob_folders=('probs',)):
    """Two 8x8 images of one ID folder (``ID1/a.png``, ``ID1/b.png``) with constant
    probabilities 0.8 and 0.3 in 2 classes: ``dict(root=..., imgs=..., <folder>=...)``
    with one probability folder per name in ``prob_folders`` (the first stored as
    ``uint8`` with those values, each later one as ``float16`` with values 0.1 lower per
    step: other values and other files, as two models' outputs are; an ensemble refuses
    one model's predictions given twice)."""
    probs = {'ID1/a.png': (np.full((2, 8, 8), 0.8, np.float32), (8, 8)),
             'ID1/b.png': (np.full((2, 8, 8), 0.3, np.float32), (8, 8))}
    w = dict(root=str(tmp_path))
    for i, name in enumerate(prob_folders):  # stored apart: two runs, never one copied
        own = {k: (p - np.float32(0.1 * i), size) for k, (p, size) in probs.items()}
        w[name] = write_prob_folder(tmp_path / name, own, classes,
                                    dtype='uint8' if i == 0 else 'float16')
    w['imgs'] = write_images(tmp_path / 'imgs', {k: (8, 8) for k in probs})
    w['probs_by_image'] = probs
    return w
