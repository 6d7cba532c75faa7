"""Per-image ground truth by probability key: a hand-bone data root or a mask folder.

Read by the threshold tuner and the overlay drawings; the masks are what training sees
(polygons through :func:`mmseg_ext.io.hand_bone_json.read_masks`).
"""
from __future__ import annotations

import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..utils.errors import DataError, InvalidArgumentError
from ..utils.readers import check_folder, check_regular_file, reading
from .hand_bone_json import read_masks
from .images import read_label_map
from .pseudo_report import REPORT, pseudo_folder_above

#: The label value of pixels that belong to no class (not scored, not drawn).
IGNORE_INDEX = 255

#: more distinct values than this in a refused label map: the message asks whether the
#: file is an image (a re-encoded X-ray given as ``--gt`` reads as a label map of
#: hundreds of values; a label map of more classes than the model's has a few)
_IMAGE_LIKE_VALUES = 64


def check_label_values(label: np.ndarray, num_classes: int, path: str,
                       ignore_index: Optional[int] = IGNORE_INDEX) -> None:
    """Refuse a label map ``(H, W)`` holding a value that is neither a class index
    ``0 <= v < num_classes`` nor ``ignore_index``. One class counts as two values (0
    background, 1 foreground; a 0/255 mask is also foreground where non-zero)."""
    if label.dtype.kind not in 'biu':
        raise DataError(f'{path}: label values are {label.dtype}, expected whole numbers')
    allowed = max(num_classes, 2)
    bad = (label >= allowed) | (label < 0)
    if ignore_index is not None:
        bad &= label != ignore_index
    if bad.any():
        value = int(label[bad].flat[0])
        extra = f' or the ignore index {ignore_index}' if ignore_index is not None else ''
        distinct = len(np.unique(label))
        looks = (f'; it holds {distinct} distinct values, as a picture does: an image '
                 'given as the labels?') if distinct > _IMAGE_LIKE_VALUES else ''
        raise DataError(f'{path}: holds the label value {value}, but there are '
                        f'{num_classes} classes (values 0..{allowed - 1}{extra}){looks}')


def check_ignore_index(ignore_index: Optional[int], classes: Sequence[str]) -> None:
    """Refuse an ignore index that is a class index (``0 <= i < len(classes)``): the
    pixels of that class would be left out of every count without a word."""
    if ignore_index is not None and 0 <= ignore_index < len(classes):
        raise InvalidArgumentError('ignore_index', f'{ignore_index} is the class '
                                   f'{classes[ignore_index]!r}; the ignore index marks '
                                   f'pixels of no class: give one >= {len(classes)} (the '
                                   'default is 255)')


def check_mask_values(arr: np.ndarray, path: str) -> None:
    """Refuse a mask array that is not ``bool`` or 0/1: integers, or floats that are
    exactly 0.0 or 1.0 (a float ``.npy`` of a 0/1 mask); any other value, NaN included,
    is named."""
    if arr.dtype.kind not in 'biuf':
        raise DataError(f'{path}: mask values are {arr.dtype}, expected bool or the '
                        'numbers 0/1')
    if arr.dtype.kind != 'b':
        bad = ~((arr == 0) | (arr == 1))  # NaN equals neither
        if bad.any():
            value = arr[bad].flat[0].item()
            raise DataError(f'{path}: holds the mask value {value!r}, expected 0 or 1')


def _same_tail(rel: str, key: str) -> bool:
    """Whether the ``/``-separated keys ``rel`` and ``key`` agree on their common
    trailing parts (one is the other with leading folders added)."""
    a, b = rel.split('/'), key.split('/')
    n = min(len(a), len(b))
    return a[-n:] == b[-n:]


class GroundTruth:
    """Per-image ``(C, H, W)`` bool ground truth, by probability key.

    ``root`` is either a hand-bone data root (it has ``outputs_json/``: polygons are
    rasterised by :func:`mmseg_ext.io.hand_bone_json.read_masks`) or a folder of per-image
    masks named like the images
    (``<key>.npy`` holding ``(C, H, W)``, or for one class ``(H, W)``; ``<key>.png`` holding
    an ``(H, W)`` label map: value ``c`` is class ``c``, or for one class non-zero =
    foreground). Files are matched by relative key first, then by file stem where the
    file's folders and the image's agree as far as both go (``gt/a`` or
    ``gt/train/ID1/a`` for the image ``ID1/a``, never ``gt/ID2/a``).
    ``json_dir`` names the polygon folder of a hand-bone root when it is not
    ``root/outputs_json``.
    """

    def __init__(self, root: str, classes: Sequence[str], json_dir: Optional[str] = None):
        check_folder(root, 'ground-truth folder')
        pseudo = pseudo_folder_above(root)
        if pseudo is not None:  # a model's own output would score it against itself
            raise DataError(f'{root}: lies in the pseudo-label folder {pseudo[0]} (a '
                            "model's predictions, not ground truth); give the labels "
                            'the images were annotated with')
        self.root = root
        self.classes = tuple(classes)
        json_dir = json_dir or osp.join(root, 'outputs_json')
        if osp.isdir(json_dir):
            self.kind, base, exts = 'json', json_dir, ('.json',)
        elif osp.isdir(osp.join(root, 'DCM')):  # its images would be read as label maps
            shown = 'outputs_json' if json_dir == osp.join(root, 'outputs_json') \
                else json_dir
            raise DataError(f'{root}: a hand-bone data root (it has DCM/) without '
                            f'{shown}/: no labels to compare with (give a root with its polygons, or '
                            'a folder of <key>.png / <key>.npy masks)')
        else:
            self.kind, base, exts = 'mask', root, ('.npy', '.png')
        self.by_key: Dict[str, List[str]] = {}
        self._by_stem_for: Dict[str, str] = {}  # a file matched by stem -> its image
        self.by_stem: Dict[str, List[str]] = {}
        for dirpath, dirs, files in os.walk(base):
            dirs[:] = sorted(dirs)
            if REPORT in files:  # a pseudo-label folder inside: predictions, not labels
                raise DataError(f'{root}: holds the pseudo-label folder {dirpath} (a '
                                "model's predictions, not ground truth); give the labels "
                                'the images were annotated with')
            for name in sorted(files):
                stem, ext = osp.splitext(name)
                if ext.lower() not in exts:
                    continue
                path = osp.join(dirpath, name)
                key = osp.splitext(osp.relpath(path, base))[0].replace(os.sep, '/')
                self.by_key.setdefault(key, []).append(path)
                self.by_stem.setdefault(stem, []).append((key, path))
        if not self.by_key:
            raise DataError(f'{root}: no ground truth found ({"/".join(exts)} files'
                            f'{" under outputs_json/" if self.kind == "json" else ""})')

    def find(self, key: str) -> Optional[str]:
        for k in (key, key[4:] if key.startswith('DCM/') else None):
            if k is not None and k in self.by_key:
                paths = self.by_key[k]
                if len(paths) > 1:  # k.npy beside k.png: which one is meant is unknown
                    raise DataError(f'{self.root}: several ground-truth files for {key}: '
                                    f'{paths[0]}, {paths[1]} (keep one)')
                return paths[0]
        # by file stem: only a file whose relative key and the image's key end alike
        # (gt/a for ID1/a, or gt/train/ID1/a): gt/ID2/a is another image's, never ID1/a's
        paths = [path for rel, path in self.by_stem.get(osp.basename(key), [])
                 if _same_tail(rel, key)]
        if len(paths) > 1:
            raise DataError(f'{self.root}: several ground-truth files for {key}: '
                            f'{paths[0]}, {paths[1]}')
        if not paths:
            return None
        other = self._by_stem_for.setdefault(paths[0], key)
        if other != key:  # gt/a.npy would be the mask of ID1/a and of ID2/a
            raise DataError(f'{paths[0]}: the ground truth of both {other} and {key} by file '
                            'name: put each image\'s file in its folder (as the images)')
        return paths[0]

    def load(self, key: str, shape: Tuple[int, int],
             image_sha256: Optional[str] = None) -> np.ndarray:
        """The ``(C, H, W)`` bool ground truth of image ``key`` at ``shape``.

        Args:
            image_sha256: the SHA-256 of the image's file, where its probabilities
                record it: a mask file with that content is the image itself (a folder
                of images given as the labels), and is refused.

        Raises:
            DataError: no or several files for ``key``, a file that cannot be read or
                holds values outside the classes, another size than ``shape``, or the
                image itself.
        """
        path = self.find(key)
        if path is None:
            raise DataError(f'{self.root}: no ground truth for image {key}')
        if self.kind == 'mask':
            self.check_not_image(path, key, image_sha256)
        if self.kind == 'json':
            gt = read_masks(path, self.classes, shape, image_name=key).astype(np.bool_)
        elif path.endswith('.npy'):
            gt = self._load_npy(path)
        else:
            gt = self._load_png(path)
        if gt.shape[1:] != tuple(shape):
            raise DataError(f'{path}: ground truth is {gt.shape[1]}x{gt.shape[2]}, the '
                            f'image is {shape[0]}x{shape[1]}')
        return gt

    def check_not_image(self, path: str, key: str, image_sha256: Optional[str]) -> None:
        """Refuse the mask file ``path`` when its content is the image of ``key``
        (``image_sha256``, where the probabilities record it): a folder of images given
        as the labels.

        Raises:
            DataError: naming the file.
        """
        if image_sha256 is None:
            return
        from .paths import file_sha256
        if file_sha256(path) == image_sha256:
            raise DataError(f'{path}: the image {key} itself, not its labels (is '
                            f'{self.root} the image folder?)')

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
        check_mask_values(arr, path)
        return arr != 0

    def read_label(self, path: str, ignore_index: Optional[int] = IGNORE_INDEX
                   ) -> np.ndarray:
        """A label PNG ``(H, W)``, its values checked against the classes
        (:func:`check_label_values`)."""
        label = read_label_map(path)
        check_label_values(label, len(self.classes), path, ignore_index)
        return label

    def _load_png(self, path: str) -> np.ndarray:
        label = self.read_label(path)
        if len(self.classes) == 1:
            return (label != 0)[None]
        return label[None] == np.arange(len(self.classes))[:, None, None]
