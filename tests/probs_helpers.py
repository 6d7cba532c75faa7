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
