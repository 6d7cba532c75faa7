"""Per-image ground truth by probability key: a hand-bone data root or a mask folder.

Read by the threshold tuner and the overlay drawings; the masks are what training sees
(polygons through :func:`mmseg_ext.io.hand_bone_json.read_masks`).
"""
from __future__ import annotations

import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..utils.errors import DataError
from ..utils.readers import check_regular_file, reading
from .hand_bone_json import read_masks
from .images import read_label_map


class GroundTruth:
    """Per-image ``(C, H, W)`` bool ground truth, by probability key.

    ``root`` is either a hand-bone data root (it has ``outputs_json/``: polygons are
    rasterised by :func:`mmseg_ext.io.hand_bone_json.read_masks`) or a folder of per-image
    masks named like the images
    (``<key>.npy`` holding ``(C, H, W)``, or for one class ``(H, W)``; ``<key>.png`` holding
    an ``(H, W)`` label map: value ``c`` is class ``c``, or for one class non-zero =
    foreground). Files are matched by relative key first, then by file stem.
    ``json_dir`` names the polygon folder of a hand-bone root when it is not
    ``root/outputs_json``.
    """

    def __init__(self, root: str, classes: Sequence[str], json_dir: Optional[str] = None):
        if not osp.isdir(root):
            raise DataError(f'{root}: ground-truth folder not found')
        self.root = root
        self.classes = tuple(classes)
        json_dir = json_dir or osp.join(root, 'outputs_json')
        if osp.isdir(json_dir):
            self.kind, base, exts = 'json', json_dir, ('.json',)
        else:
            self.kind, base, exts = 'mask', root, ('.npy', '.png')
        self.by_key: Dict[str, str] = {}
        self.by_stem: Dict[str, List[str]] = {}
        for dirpath, dirs, files in os.walk(base):
            dirs[:] = sorted(dirs)
            for name in sorted(files):
                stem, ext = osp.splitext(name)
                if ext.lower() not in exts:
                    continue
                path = osp.join(dirpath, name)
                key = osp.splitext(osp.relpath(path, base))[0].replace(os.sep, '/')
                self.by_key.setdefault(key, path)
                self.by_stem.setdefault(stem, []).append(path)
        if not self.by_key:
            raise DataError(f'{root}: no ground truth found ({"/".join(exts)} files'
                            f'{" under outputs_json/" if self.kind == "json" else ""})')

    def find(self, key: str) -> Optional[str]:
        for k in (key, key[4:] if key.startswith('DCM/') else None):
            if k is not None and k in self.by_key:
                return self.by_key[k]
        paths = self.by_stem.get(osp.basename(key), [])
        if len(paths) > 1:
            raise DataError(f'{self.root}: several ground-truth files for {key}: '
                            f'{paths[0]}, {paths[1]}')
        return paths[0] if paths else None

    def load(self, key: str, shape: Tuple[int, int]) -> np.ndarray:
        path = self.find(key)
        if path is None:
            raise DataError(f'{self.root}: no ground truth for image {key}')
        if self.kind == 'json':
            gt = read_masks(path, self.classes, shape).astype(np.bool_)
        elif path.endswith('.npy'):
            gt = self._load_npy(path)
        else:
            gt = self._load_png(path)
        if gt.shape[1:] != tuple(shape):
            raise DataError(f'{path}: ground truth is {gt.shape[1]}x{gt.shape[2]}, the '
                            f'image is {shape[0]}x{shape[1]}')
        return gt

    def _load_npy(self, path: str) -> np.ndarray:
        check_regular_file(path, 'ground-truth file')  # a FIFO is never opened
        with reading(path, 'ground-truth file'):
            arr = np.load(path, allow_pickle=False)
        if not isinstance(arr, np.ndarray):
            raise DataError(f'{path}: not a .npy array file')
        if arr.ndim == 2 and len(self.classes) == 1:
            arr = arr[None]
        if arr.ndim != 3 or arr.shape[0] != len(self.classes):
            raise DataError(f'{path}: shape {arr.shape}, expected ({len(self.classes)}, H, W)')
        return arr != 0

    def _load_png(self, path: str) -> np.ndarray:
        label = read_label_map(path)
        if len(self.classes) == 1:
            return (label != 0)[None]
        return label[None] == np.arange(len(self.classes))[:, None, None]
