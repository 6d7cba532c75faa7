"""Finding images in a folder tree and reading their sizes without decoding them."""
from __future__ import annotations

import os
import os.path as osp
from typing import Dict, List, Sequence, Tuple

import numpy as np

from ..utils.errors import DataError

IMG_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')


def list_images(img_dir: str, suffixes: Sequence[str] = IMG_SUFFIXES) -> List[str]:
    """Relative paths (``/``-separated, sorted) of the images under ``img_dir``, recursively.

    Hidden files and folders (name starting with ``.``) are skipped.
    """
    if not osp.isdir(img_dir):
        raise DataError(f'{img_dir}: image folder not found')
    suffixes = tuple(s.lower() for s in suffixes)
    found = []
    for root, dirs, files in os.walk(img_dir, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith('.'))
        rel_root = osp.relpath(root, img_dir)
        for name in files:
            if name.startswith('.') or not name.lower().endswith(suffixes):
                continue
            rel = name if rel_root == '.' else osp.join(rel_root, name)
            found.append(rel.replace(os.sep, '/'))
    return sorted(found)


def image_size(path: str) -> Tuple[int, int]:
    """``(H, W)`` of an image file, read from its header (Pillow), or decoded (cv2)."""
    try:
        from PIL import Image
        with Image.open(path) as img:
            w, h = img.size
            return int(h), int(w)
    except Exception:  # noqa: BLE001  (not an image Pillow knows: let cv2 try)
        pass
    import cv2
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise DataError(f'{path}: cannot read the image')
    return int(img.shape[0]), int(img.shape[1])


def read_label_map(path: str) -> np.ndarray:
    """A label PNG as an ``(H, W)`` integer map (its stored dtype, ``uint8`` usually).

    Raises:
        DataError: the file is missing, cannot be decoded, or has several channels.
    """
    import cv2
    if not osp.isfile(path):
        raise DataError(f'{path}: label file not found')
    label = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if label is None:
        raise DataError(f'{path}: cannot read the label file')
    if label.ndim != 2:
        raise DataError(f'{path}: not a single-channel label map (shape {label.shape})')
    return label


def image_sizes_by_name(img_dir: str, key: str = 'basename'
                        ) -> Dict[str, Tuple[int, int]]:
    """Map each image under ``img_dir`` to its ``(H, W)``.

    Args:
        key: ``'basename'`` (file name only; duplicates are an error) or ``'relpath'``.
    """
    sizes: Dict[str, Tuple[int, int]] = {}
    where: Dict[str, str] = {}
    for rel in list_images(img_dir):
        name = osp.basename(rel) if key == 'basename' else rel
        if name in sizes:
            raise DataError(f'{img_dir}: two images are named {name} '
                            f'({where[name]} and {rel})')
        where[name] = rel
        sizes[name] = image_size(osp.join(img_dir, rel))
    if not sizes:
        raise DataError(f'{img_dir}: no images found')
    return sizes
