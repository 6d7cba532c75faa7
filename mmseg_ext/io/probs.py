"""Probability files: one compressed ``.npz`` per image, plus an ``index.json`` per folder.

Layout of a probability folder (written by ``tools/inference.py`` and
``tools/ensemble.py``)::

    PROBS/index.json                      folder summary, written last
    PROBS/<relative image path minus extension>.npz

Each ``.npz`` (a zip that ``numpy.load`` opens, no pickle) describes ``(C, h, w)`` class
probabilities at the resolution they were stored at (the model's input resolution by
default), not necessarily the original image size. Two arrays:

``data``
    1-D: for every class, the content of its bounding box (row-major), class after
    class; outside its box a class is exactly 0. ``uint8`` (default): ``q = round(255 *
    p)``, read back as ``q / 255``, so the quantisation error is at most
    ``1/510 ~ 0.00196``; ``float16``: relative error at most ``2**-11`` (absolute
    <= ``2.5e-4`` on [0, 1]).
``meta``
    a 0-d string array holding JSON: ``format`` (``"mmseg_ext.probs"``), ``version``
    (1), ``shape`` ``[C, h, w]``, ``boxes`` (per class the half-open box
    ``[r0, r1, c0, c1]`` of its non-zero values; ``r0 == r1``: zero everywhere),
    ``img_path`` (the image relative to the inference ``--img-dir``, ``/``-separated),
    ``ori_shape`` ``[H, W]`` of the original image, ``classes`` (names, in channel order),
    ``task`` (``"multi-label"``: independent sigmoid probabilities; ``"multi-class"``:
    softmax probabilities that sum to 1 over classes), ``dtype`` and ``source``
    (provenance: config/checkpoint/tta, or the ensemble members and weights).

Storing one box per class keeps files small and fast for compact objects (a hand bone
covers a few percent of the image; everything else is exactly 0 after quantisation) and
costs nothing for dense maps (the box is then the whole map). Dense array in plain numpy::

    z = np.load(path)
    meta = json.loads(str(z['meta']))
    probs = np.zeros(meta['shape'], z['data'].dtype)
    pos = 0
    for c, (r0, r1, c0, c1) in enumerate(meta['boxes']):
        n = (r1 - r0) * (c1 - c0)
        probs[c, r0:r1, c0:c1] = z['data'][pos:pos + n].reshape(r1 - r0, c1 - c0)
        pos += n

An image's *key* is its relative path without extension (``ID040/image1661319116107``);
tools match images across folders by key, never by order.
"""
from __future__ import annotations

import io
import json
import os
import os.path as osp
import sys
import zipfile
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Deque, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..utils.class_names import check_class_names
from ..utils.errors import DataError, InvalidArgumentError
from ..utils.readers import (
    MAX_PIXELS_ENV,
    check_regular_file,
    loads_json,
    max_pixels,
    read_json,
    reading,
)
from .atomic import StagedDir, atomic_open
from .paths import data_relpath, resolve_under
from .rle import mask_bbox

PROBS_FORMAT = 'mmseg_ext.probs'
INDEX_FORMAT = 'mmseg_ext.probs-index'
PROBS_VERSION = 1
INDEX_NAME = 'index.json'
SUFFIX = '.npz'
TASKS = ('multi-label', 'multi-class')
DTYPES = ('uint8', 'float16')


class ProbFileError(DataError):
    """A probability file or folder that cannot be used (message names the file)."""


def image_key(img_path: str) -> str:
    """Key of an image: its relative path, ``/``-separated, without the extension."""
    return osp.splitext(img_path.replace('\\', '/'))[0]


@dataclass
class ProbMeta:
    """What a probability file says about its image (see the module docstring)."""
    img_path: str
    ori_shape: Tuple[int, int]
    classes: Tuple[str, ...]
    task: str
    source: Dict = field(default_factory=dict)

    def __post_init__(self):
        self.ori_shape = (int(self.ori_shape[0]), int(self.ori_shape[1]))
        self.classes = tuple(str(c) for c in self.classes)
        if self.task not in TASKS:
            raise InvalidArgumentError('task', f'must be one of {TASKS}, got {self.task!r}')

    @property
    def key(self) -> str:
        return image_key(self.img_path)

    def to_dict(self, dtype: str) -> Dict:
        return dict(format=PROBS_FORMAT, version=PROBS_VERSION, img_path=self.img_path,
                    ori_shape=list(self.ori_shape), classes=list(self.classes),
                    task=self.task, dtype=dtype, source=self.source)

    @classmethod
    def from_dict(cls, d: Dict, where: str) -> ProbMeta:
        if d.get('format') != PROBS_FORMAT:
            raise ProbFileError(f'{where}: not a probability file (format '
                                f'{d.get("format")!r})')
        check_version(d.get('version'), where)
        try:
            if not isinstance(d['img_path'], str):
                raise TypeError('img_path must be text')
            classes = checked_classes(d['classes'], where)
            return cls(img_path=d['img_path'],
                       ori_shape=checked_size(d['ori_shape'], f'{where}: ori_shape'),
                       classes=classes, task=d['task'],
                       source=d.get('source', {}))
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            if isinstance(exc, DataError):
                raise
            raise ProbFileError(f'{where}: bad metadata ({exc})') from None


def _whole(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_version(value, where: str) -> None:
    """Refuse a ``version`` that is not the whole number :data:`PROBS_VERSION` (``true``
    and ``1.0`` compare equal to 1 in Python, but are not this format's version)."""
    if not (_whole(value) and value == PROBS_VERSION):
        raise ProbFileError(f'{where}: unsupported version {value!r} (this code reads '
                            f'{PROBS_VERSION})')


def checked_classes(value, where: str) -> Tuple[str, ...]:
    """A file's class list, by the one rule for class names
    (:func:`~mmseg_ext.utils.class_names.check_class_names`)."""
    try:
        return check_class_names(value, f'{where}: classes')
    except DataError as exc:
        raise ProbFileError(str(exc)) from None


def checked_dtype(value, where: str) -> Optional[str]:
    """An index's ``dtype``: absent (None) or one of :data:`DTYPES`."""
    if value is not None and not (isinstance(value, str) and value in DTYPES):
        raise ProbFileError(f'{where}: dtype {value!r} is not one of {DTYPES}')
    return value


def check_same_size(prob_path: str, recorded: Sequence[int], other_path: str,
                    actual: Sequence[int]) -> None:
    """Refuse probabilities recorded for an ``(H, W)`` original image other than the
    ``(H, W)`` of the image or label they are used with (the one size rule of every tool
    that puts probabilities next to images or labels)."""
    if tuple(int(v) for v in recorded) != tuple(int(v) for v in actual):
        raise ProbFileError(f'{prob_path}: probabilities are for a {recorded[0]}x'
                            f'{recorded[1]} image (H x W), but {other_path} is {actual[0]}x'
                            f'{actual[1]}; were they made from other copies of the images?')


def checked_size(value, where: str) -> Tuple[int, int]:
    """``(H, W)`` from a file's ``[H, W]``: two whole numbers >= 1 whose product is within
    the pixel cap (:func:`~mmseg_ext.utils.readers.max_pixels`)."""
    if not isinstance(value, (list, tuple)) or len(value) != 2 or \
            not all(_whole(v) and v >= 1 for v in value):
        raise ProbFileError(f'{where}: {value!r} is not a size [H, W] of whole numbers >= 1')
    h, w = int(value[0]), int(value[1])
    if h * w > max_pixels():
        raise ProbFileError(f'{where}: {h}x{w} is more than the {max_pixels()} pixels an '
                            f'image may have (set {MAX_PIXELS_ENV} to raise it)')
    return h, w


# ------------------------------------------------------------------ quantisation
def quantize(probs: np.ndarray, dtype: str = 'uint8') -> np.ndarray:
    """Float probabilities in [0, 1] -> the stored dtype (values are clipped to [0, 1])."""
    if dtype not in DTYPES:
        raise InvalidArgumentError('dtype', f'must be one of {DTYPES}, got {dtype!r}')
    probs = np.asarray(probs)
    if probs.dtype == np.dtype(dtype):
        return probs
    p = np.clip(probs, 0.0, 1.0)
    if dtype == 'uint8':
        return np.rint(p * 255.0).astype(np.uint8)
    return p.astype(np.float16)


def dequantize(stored: np.ndarray) -> np.ndarray:
    """Stored probabilities (``uint8`` or ``float16``) -> ``float32`` in [0, 1]."""
    if stored.dtype == np.uint8:
        return stored.astype(np.float32) * np.float32(1.0 / 255.0)
    return stored.astype(np.float32)


# ------------------------------------------------------------------ one box per class
class CroppedProbs:
    """``(C, h, w)`` stored probabilities kept as one bounding-box crop per class.

    Args:
        shape: ``(C, h, w)``.
        boxes: ``(C, 4)`` int ``[r0, r1, c0, c1]`` half-open boxes (``r0 == r1``: empty).
        crops: per class the ``(r1 - r0, c1 - c0)`` array inside its box (stored dtype).
    """

    def __init__(self, shape: Sequence[int], boxes: np.ndarray, crops: List[np.ndarray]):
        self.shape = tuple(int(v) for v in shape)
        self.boxes = np.asarray(boxes, np.int32).reshape(-1, 4)
        self.crops = crops
        self._boxes = [None if r0 == r1 or c0 == c1 else (r0, r1, c0, c1)
                       for r0, r1, c0, c1 in self.boxes.tolist()]
        self.dtype = crops[0].dtype if crops else np.dtype(np.uint8)

    @classmethod
    def from_dense(cls, stored: np.ndarray) -> CroppedProbs:
        """Crop a ``(C, h, w)`` stored array to each class's non-zero bounding box."""
        boxes = np.zeros((stored.shape[0], 4), np.int32)
        crops = []
        for c in range(stored.shape[0]):
            box = mask_bbox(stored[c])
            if box is None:
                crops.append(stored[c, :0, :0])
                continue
            r0, r1, c0, c1 = box
            boxes[c] = (r0, r1 + 1, c0, c1 + 1)
            crops.append(stored[c, r0:r1 + 1, c0:c1 + 1])
        return cls(stored.shape, boxes, crops)

    def __len__(self) -> int:
        return self.shape[0]

    def box(self, c: int) -> Optional[Tuple[int, int, int, int]]:
        """``(r0, r1, c0, c1)`` half-open box of class ``c``, None when it is all zero."""
        return self._boxes[c]

    def channel(self, c: int) -> np.ndarray:
        """Dense ``(h, w)`` stored values of class ``c``."""
        out = np.zeros(self.shape[1:], self.dtype)
        box = self.box(c)
        if box is not None:
            r0, r1, c0, c1 = box
            out[r0:r1, c0:c1] = self.crops[c]
        return out

    def dense(self) -> np.ndarray:
        """Dense ``(C, h, w)`` stored array."""
        out = np.zeros(self.shape, self.dtype)
        for c in range(self.shape[0]):
            box = self.box(c)
            if box is not None:
                r0, r1, c0, c1 = box
                out[c, r0:r1, c0:c1] = self.crops[c]
        return out


# ------------------------------------------------------------------ single files
def write_probs(path: str, probs: Union[np.ndarray, CroppedProbs], meta: ProbMeta,
                dtype: str = 'uint8', compresslevel: int = 1) -> None:
    """Write one probability file atomically (temporary name, then rename).

    Args:
        path: target ``.npz`` file.
        probs: ``(C, h, w)`` float in [0, 1] or already stored as ``dtype``, or a
            :class:`CroppedProbs` of that dtype.
        meta: the image's metadata; ``C`` must equal ``len(meta.classes)``.
        dtype: ``'uint8'`` or ``'float16'``.
        compresslevel: zlib level 0-9 of the zip members.
    """
    if not isinstance(probs, CroppedProbs):
        probs = np.asarray(probs)
        if probs.ndim != 3:
            raise DataError(f'{path}: expected (C, h, w) probabilities, got {probs.shape}')
        if probs.dtype.kind == 'f' and not np.isfinite(probs).all():
            # a broken checkpoint (NaN weights) or an overflow: clipping would store 0
            # (or NaN) without a word, and every later step would trust it
            raise DataError(f'{meta.img_path or path}: the model produced non-finite '
                            f'probabilities (NaN or inf) for this image; the checkpoint '
                            'or its input is broken')
        probs = CroppedProbs.from_dense(quantize(probs, dtype))
    elif probs.dtype != np.dtype(dtype):
        raise DataError(f'{path}: cropped probabilities are {probs.dtype}, not {dtype}')
    if probs.shape[0] != len(meta.classes):
        raise DataError(f'{path}: probabilities of shape {probs.shape} do not match '
                         f'{len(meta.classes)} classes')
    parts = [c.ravel() for c in probs.crops if c.size]
    data = np.concatenate(parts) if parts else np.zeros(0, np.dtype(dtype))
    info = meta.to_dict(dtype)
    info['shape'] = list(probs.shape)
    info['boxes'] = probs.boxes.tolist()
    arrays = (('data', np.ascontiguousarray(data, dtype=dtype)),
              ('meta', np.array(json.dumps(info))))
    with atomic_open(path, 'wb', force=True) as f, zipfile.ZipFile(f, 'w') as zf:
        for name, arr in arrays:
            buf = io.BytesIO()
            np.lib.format.write_array(buf, arr, allow_pickle=False)
            # the metadata is stored as it is, the crops compressed
            big = name == 'data'
            zf.writestr(zipfile.ZipInfo(name + '.npy', (1980, 1, 1, 0, 0, 0)),
                        buf.getbuffer(),
                        compress_type=zipfile.ZIP_DEFLATED if big else zipfile.ZIP_STORED,
                        compresslevel=compresslevel if big else None)


def read_cropped(path: str) -> Tuple[CroppedProbs, ProbMeta]:
    """Read one probability file as :class:`CroppedProbs` (no dense array is built).

    Everything in the file is checked where it enters: the metadata is strict JSON
    (:func:`~mmseg_ext.utils.readers.loads_json`), sizes and boxes are whole numbers inside
    the stored shape, the boxes account for every stored value, and ``float16`` values
    are finite and in [0, 1] (``uint8`` ones are by construction).

    Raises:
        ProbFileError: anything else than a valid file, naming it.
    """
    check_regular_file(path, 'probability file')  # a FIFO is never opened
    try:
        with reading(path, 'probability file'), np.load(path, allow_pickle=False) as npz:
            if 'meta' not in npz.files:
                raise ProbFileError(f'{path}: not a probability file (no meta array)')
            info = loads_json(str(npz['meta'][()]), f'{path}: metadata')
            if not isinstance(info, dict):
                raise ProbFileError(f'{path}: metadata is not a JSON object')
            meta = ProbMeta.from_dict(info, path)  # format and version first
            if 'data' not in npz.files:
                raise ProbFileError(f'{path}: not a probability file (no data array)')
            data = npz['data']
    except DataError as exc:
        raise exc if isinstance(exc, ProbFileError) else ProbFileError(str(exc)) from None
    if data.dtype.name not in DTYPES:
        raise ProbFileError(f'{path}: probabilities stored as {data.dtype}, '
                            f'expected one of {DTYPES}')
    shape, boxes = _checked_layout(path, info, len(meta.classes), data)
    crops, pos = [], 0
    for r0, r1, c0, c1 in boxes:
        n = (r1 - r0) * (c1 - c0)
        crops.append(data[pos:pos + n].reshape(r1 - r0, c1 - c0))
        pos += n
    if data.dtype == np.float16 and data.size:
        _check_probabilities(path, data)
    return CroppedProbs(shape, np.asarray(boxes, np.int64).reshape(-1, 4), crops), meta


def _checked_layout(path: str, info: Dict, num_classes: int, data: np.ndarray
                    ) -> Tuple[List[int], List[List[int]]]:
    """``shape [C, h, w]`` and ``boxes`` of a file's metadata, checked against its class
    count and its stored values (before any array is reshaped)."""
    shape, boxes = info.get('shape'), info.get('boxes')
    if (not isinstance(shape, list) or len(shape) != 3 or not all(_whole(v) for v in shape)
            or shape[0] != num_classes or data.ndim != 1):
        raise ProbFileError(f'{path}: shape {shape} does not match its {num_classes} '
                            'classes')
    checked_size(shape[1:], f'{path}: shape')
    if (not isinstance(boxes, list) or len(boxes) != num_classes
            or not all(isinstance(b, list) and len(b) == 4 and all(_whole(v) for v in b)
                       for b in boxes)):
        raise ProbFileError(f'{path}: boxes must be {num_classes} lists [r0, r1, c0, c1] '
                            'of whole numbers')
    need = 0
    for r0, r1, c0, c1 in boxes:
        if not (0 <= r0 <= r1 <= shape[1] and 0 <= c0 <= c1 <= shape[2]):
            raise ProbFileError(f'{path}: box {[r0, r1, c0, c1]} outside {shape}')
        need += (r1 - r0) * (c1 - c0)
    if need != data.size:
        raise ProbFileError(f'{path}: {data.size} stored values, the boxes need {need}')
    return shape, boxes


def _check_probabilities(path: str, data: np.ndarray) -> None:
    """Refuse stored values that are not finite or outside [0, 1]."""
    bad = ~np.isfinite(data)
    if not bad.any():
        bad = (data < 0) | (data > 1)
    if bad.any():
        value = data[int(np.flatnonzero(bad)[0])]
        raise ProbFileError(f'{path}: holds the value {float(value)!r}; probabilities '
                            'must be finite and in [0, 1]')


def read_probs(path: str) -> Tuple[np.ndarray, ProbMeta]:
    """Read one probability file: ``((C, h, w) uint8|float16 array, ProbMeta)``.

    Use :func:`dequantize` for ``float32`` probabilities.
    """
    cropped, meta = read_cropped(path)
    return cropped.dense(), meta


# ------------------------------------------------------------------ folders
def class_difference(a: Sequence[str], b: Sequence[str]) -> str:
    """Where two class lists first differ, in words (``class 1 is 'z' here, 'x' there``)."""
    if len(a) != len(b):
        return f'{len(a)} classes here, {len(b)} there'
    i = next(i for i, (x, y) in enumerate(zip(a, b)) if x != y)
    return f'class {i} is {a[i]!r} here, {b[i]!r} there'


def content_mismatch(classes: Sequence[str], task: str, ref_classes: Sequence[str],
                     ref_task: str, ref_name: str) -> Optional[str]:
    """Why probabilities of ``classes``/``task`` cannot stand for those of ``ref_name``
    (another task, or other classes), or None when they match."""
    if task != ref_task:
        return f'{task} probabilities, but {ref_name} holds {ref_task}'
    if tuple(classes) != tuple(ref_classes):
        return f'classes differ from {ref_name} ({class_difference(classes, ref_classes)})'
    return None


class ProbFolder:
    """Read access to a probability folder, by image key.

    Uses ``index.json`` when present; otherwise scans for ``*.npz`` recursively and takes
    classes and task from the first file. Every file read is checked against the folder's
    classes and task.
    """

    def __init__(self, root: str):
        if not osp.isdir(root):
            raise ProbFileError(f'{root}: probability folder not found')
        self.root = root
        index_path = osp.join(root, INDEX_NAME)
        # key -> (file, or None for "<key>.npz"; img_path, or only its extension when it
        # is key + extension; ori_shape): compact, as there is one entry per image
        self._entries: Dict[str, Tuple[Optional[str], Optional[Tuple[bool, str]],
                                       Optional[Tuple[int, int]]]] = {}
        self.source: Dict = {}
        if osp.lexists(index_path):  # a FIFO or a link loop there is refused, not skipped
            self._load_index(index_path)
        else:
            self._scan()

    def _add(self, key: str, file: str, img_path: Optional[str],
             ori_shape: Optional[Sequence[int]]) -> None:
        name = None
        if img_path is not None:
            derived = img_path.startswith(key) and image_key(img_path) == key
            name = (True, sys.intern(img_path[len(key):])) if derived else (False, img_path)
        self._entries[key] = (None if file == key + SUFFIX else file, name,
                              None if ori_shape is None else
                              (int(ori_shape[0]), int(ori_shape[1])))

    def _load_index(self, index_path: str) -> None:
        try:
            index = read_json(index_path, 'probability index')
            if not isinstance(index, dict):
                raise ValueError(f'a JSON {type(index).__name__}, expected an object')
            if index.get('format') != INDEX_FORMAT:
                raise ValueError(f'format {index.get("format")!r}')
            if 'version' in index:
                check_version(index['version'], index_path)
            self.classes = checked_classes(index['classes'], index_path)
            self.task = index['task']
            self.dtype = checked_dtype(index.get('dtype'), index_path)
            self.source = index.get('source', {})
            images = index['images']
            if not isinstance(images, list):
                raise TypeError('images is not a list')
            for i, e in enumerate(images):
                self._add_entry(index_path, i, e)
            self._check_count(index_path, index.get('num_images'), len(images))
        except DataError:
            raise
        except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
            raise ProbFileError(f'{index_path}: not a valid index ({exc})') from None
        if self.task not in TASKS:
            raise ProbFileError(f'{index_path}: unknown task {self.task!r}')

    def _add_entry(self, index_path: str, i: int, e) -> None:
        """Add ``images[i]`` of the index: a key seen before is refused (the later entry
        would hide the earlier image), and the file must stay inside the folder, links
        included (:func:`~mmseg_ext.io.paths.resolve_under`)."""
        where = f'{index_path}: images[{i}]'
        if not isinstance(e, dict):
            raise TypeError(f'images[{i}] is not an object')
        img_path, ori_shape = e.get('img_path'), e.get('ori_shape')
        if img_path is not None and not isinstance(img_path, str):
            raise TypeError(f'images[{i}].img_path is not text')
        if ori_shape is not None:
            ori_shape = checked_size(ori_shape, f'{where}.ori_shape')
        key = data_relpath(e['key'], f'{where}.key', self.root)
        if key in self._entries:
            raise ProbFileError(f'{where}: image {key} is listed twice (each image once)')
        resolve_under(self.root, e['file'], f'{where}.file')
        self._add(key, data_relpath(e['file'], f'{where}.file', self.root), img_path,
                  ori_shape)

    @staticmethod
    def _check_count(index_path: str, num_images, listed: int) -> None:
        """``num_images`` of the index, when present, must count its entries."""
        if num_images is not None and not (_whole(num_images) and num_images == listed):
            raise ProbFileError(f'{index_path}: num_images is {num_images!r}, but images '
                                f'lists {listed}')

    def _scan(self) -> None:
        for dirpath, dirs, files in os.walk(self.root):
            dirs[:] = sorted(d for d in dirs if not d.startswith('.'))
            for name in sorted(files):
                if name.endswith(SUFFIX) and not name.startswith('.'):
                    rel = osp.relpath(osp.join(dirpath, name), self.root)
                    rel = rel.replace(os.sep, '/')
                    resolve_under(self.root, rel, osp.join(dirpath, name))
                    self._add(rel[:-len(SUFFIX)], rel, None, None)
        if not self._entries:
            raise ProbFileError(f'{self.root}: no probability files (*.npz) and no '
                                f'{INDEX_NAME}')
        first = next(iter(self._entries))
        _, meta = read_cropped(self.path(first))
        self.classes, self.task, self.dtype = meta.classes, meta.task, None

    def __len__(self) -> int:
        return len(self._entries)

    def keys(self) -> List[str]:
        return sorted(self._entries)

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def path(self, key: str) -> str:
        file = self._entries[key][0]
        return osp.join(self.root, key + SUFFIX if file is None else file)

    def read(self, key: str, cropped: bool = False
             ) -> Tuple[Union[np.ndarray, CroppedProbs], ProbMeta]:
        """Stored probabilities (dense ``(C, h, w)``, or :class:`CroppedProbs`) and
        metadata of one image, checked against the folder."""
        path = self.path(key)
        probs, meta = read_cropped(path)
        if not cropped:
            probs = probs.dense()
        problem = content_mismatch(meta.classes, meta.task, self.classes, self.task,
                                   'the folder\'s index')
        if problem:
            raise ProbFileError(f'{path}: {problem}')
        if meta.key != key:
            raise ProbFileError(f'{path}: holds image {meta.img_path}, expected {key}')
        self._check_agreement(key, path, meta)
        return probs, meta

    def _check_agreement(self, key: str, path: str, meta: ProbMeta) -> None:
        """The image path and size are stored twice, in ``index.json`` and in the file;
        every read through the folder requires both copies to agree, so no reader can
        use one copy while a check used the other."""
        _, name, ori_shape = self._entries[key]
        if ori_shape is not None and tuple(ori_shape) != tuple(meta.ori_shape):
            raise ProbFileError(
                f'{path}: records a {meta.ori_shape[0]}x{meta.ori_shape[1]} image (H x W), '
                f'but {osp.join(self.root, INDEX_NAME)} says {ori_shape[0]}x'
                f'{ori_shape[1]} for {key}')
        if name is not None:
            derived, text = name
            img_path = key + text if derived else text
            if img_path != meta.img_path:
                raise ProbFileError(f'{path}: holds image {meta.img_path}, but '
                                    f'{osp.join(self.root, INDEX_NAME)} says {img_path}')

    def info(self, key: str) -> Tuple[str, Tuple[int, int]]:
        """``(img_path, ori_shape)`` of an image (from the index when it has them)."""
        file, name, ori_shape = self._entries[key]
        if name is None or ori_shape is None:
            _, meta = read_cropped(self.path(key))
            self._add(key, key + SUFFIX if file is None else file, meta.img_path,
                      meta.ori_shape)
            return meta.img_path, meta.ori_shape
        derived, text = name
        return (key + text if derived else text), ori_shape


class ProbFolderWriter:
    """Write a probability folder atomically: files go to a hidden temporary folder,
    ``index.json`` is written last, and :meth:`commit` renames the folder into place.

    Args:
        out_dir: the folder to create.
        classes, task: shared by every image.
        dtype: ``'uint8'`` or ``'float16'``.
        source: provenance stored in the index and in every file.
        force: replace an existing probability folder.
        compresslevel: zlib level of the files.
        background: quantise, compress and write each file in one background thread
            (zlib and file I/O release the GIL), overlapping with the caller's next
            image; at most two files are pending, so memory stays bounded. Arrays passed
            to :meth:`write` must not be modified afterwards.
    """

    def __init__(self, out_dir: str, classes: Sequence[str], task: str,
                 dtype: str = 'uint8', source: Optional[Dict] = None, force: bool = False,
                 compresslevel: int = 1, background: bool = True):
        if dtype not in DTYPES:
            raise InvalidArgumentError('dtype', f'must be one of {DTYPES}, got {dtype!r}')
        if task not in TASKS:
            raise InvalidArgumentError('task', f'must be one of {TASKS}, got {task!r}')
        self.classes = check_class_names(tuple(classes), f'{out_dir}: classes')
        self.stage = StagedDir(out_dir, force=force, marker=INDEX_NAME)
        self.out_dir = out_dir
        self.task = task
        self.dtype = dtype
        self.source = source or {}
        self.compresslevel = compresslevel
        self.images: Dict[str, Tuple[str, Tuple[int, int], Tuple[int, ...]]] = {}
        self._pool = ThreadPoolExecutor(max_workers=1) if background else None
        self._pending: Deque[Future] = deque()

    def write(self, probs: Union[np.ndarray, CroppedProbs], img_path: str,
              ori_shape: Tuple[int, int], source: Optional[Dict] = None) -> str:
        """Write one image's ``(C, h, w)`` probabilities (float in [0, 1], stored dtype, or
        :class:`CroppedProbs`); return the file's final path."""
        meta = ProbMeta(img_path=img_path.replace('\\', '/'), ori_shape=ori_shape,
                        classes=self.classes, task=self.task,
                        source=source if source is not None else self.source)
        key = meta.key
        if key in self.images:
            raise DataError(f'{img_path}: same output name as '
                            f'{key + self.images[key][0]} ({key}{SUFFIX})')
        shape = probs.shape if isinstance(probs, CroppedProbs) else np.shape(probs)
        if len(shape) != 3 or shape[0] != len(self.classes):
            raise DataError(f'{img_path}: probabilities of shape {tuple(shape)} for '
                             f'{len(self.classes)} classes')
        rel = key + SUFFIX
        args = (self.stage.file(rel), probs, meta, self.dtype, self.compresslevel)
        if self._pool is None:
            write_probs(*args)
        else:
            while len(self._pending) >= 2:  # back-pressure; re-raises a failed write
                self._pending.popleft().result()
            self._pending.append(self._pool.submit(write_probs, *args))
        self.images[key] = (meta.img_path[len(key):], meta.ori_shape, tuple(shape))
        return osp.join(self.out_dir, rel)

    def _drain(self) -> None:
        while self._pending:
            self._pending.popleft().result()

    def commit(self) -> str:
        """Wait for pending files, write ``index.json``, publish the folder."""
        self._drain()
        index = dict(format=INDEX_FORMAT, version=PROBS_VERSION, task=self.task,
                     classes=list(self.classes), dtype=self.dtype, source=self.source,
                     num_images=len(self.images),
                     images=[dict(key=k, file=k + SUFFIX, img_path=k + self.images[k][0],
                                  ori_shape=list(self.images[k][1]),
                                  shape=list(self.images[k][2]))
                             for k in sorted(self.images)])
        with open(self.stage.file(INDEX_NAME), 'w') as f:
            json.dump(index, f, indent=1)
        return self.stage.commit()

    def __enter__(self) -> ProbFolderWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self.stage.__exit__(exc_type, exc, tb)
