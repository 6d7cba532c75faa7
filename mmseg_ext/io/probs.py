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
    softmax probabilities that sum to 1 over classes), ``dtype``, ``source``
    (provenance: config/checkpoint/tta, or the ensemble members and weights) and
    ``img_sha256`` (hex SHA-256 of the image file predicted; absent in older files).

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
tools match images across folders by key, never by order (:func:`~mmseg_ext.io.paths.image_key`).

This module holds the folder level: :class:`ProbFolder` reads a folder by image key and
:class:`ProbFolderWriter` writes one atomically; one file is read and written by
:mod:`mmseg_ext.io.prob_file`, and its metadata is :mod:`mmseg_ext.io.prob_meta`.
"""
from __future__ import annotations

import json
import os
import os.path as osp
import sys
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Deque, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..utils.class_names import check_class_names
from ..utils.errors import DataError, InvalidArgumentError
from ..utils.readers import check_folder, read_json
from .paths import data_relpath, image_key, resolve_under
from .prob_file import CroppedProbs, read_cropped, write_probs
from .prob_meta import (
    DTYPES,
    PROBS_VERSION,
    TASKS,
    ProbFileError,
    ProbMeta,
    check_version,
    checked_classes,
    checked_dtype,
    checked_size,
    content_mismatch,
    whole_number,
)
from .staged_dir import StagedDir

INDEX_FORMAT = 'mmseg_ext.probs-index'
INDEX_NAME = 'index.json'
SUFFIX = '.npz'


def check_thresholds_apply(folder: ProbFolder, path: str,
                           thresholds: Dict[str, float], default: float = 0.5) -> None:
    """Refuse thresholds other than 0.5 on a folder that is already calibrated: the fold
    vote of ``tools/cv.py`` moved each fold model's own threshold to 0.5 (its source
    records ``fold_thresholds``), so thresholding it again applies them twice.

    The source is searched at any depth: an ensemble of two fold votes, or of a fold
    vote and another model, holds calibrated probabilities too (its source nests the
    vote's).

    Raises:
        DataError: naming the folder.
    """
    if not _holds_calibrated(folder.source):
        return
    used = [t for t in thresholds.values()] + [default]
    if any(abs(float(t) - 0.5) > 1e-12 for t in used):
        raise DataError(f'{path}: holds a calibrated fold vote (each fold model\'s own '
                        'thresholds already moved to 0.5; index.json source '
                        'fold_thresholds): decide it at 0.5, without thresholds (cv\'s '
                        'tuned/thresholds.json is for one model\'s probabilities)')


def _holds_calibrated(source: object) -> bool:
    """Whether a probability folder's ``source`` (JSON) records ``fold_thresholds``
    anywhere in it (a calibrated fold vote, or something made from one)."""
    stack = [source]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get('fold_thresholds'):
                return True
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


class ProbFolder:
    """Read access to a probability folder, by image key.

    Uses ``index.json`` when present; otherwise scans for ``*.npz`` recursively and takes
    classes and task from the first file. Every file read is checked against the folder's
    classes and task.
    """

    def __init__(self, root: str):
        check_folder(root, 'probability folder', ProbFileError)
        self.root = root
        index_path = osp.join(root, INDEX_NAME)
        # key -> (file, or None for "<key>.npz"; img_path, or only its extension when it
        # is key + extension; ori_shape): compact, as there is one entry per image
        self._entries: Dict[str, Tuple[Optional[str], Optional[Tuple[bool, str]],
                                       Optional[Tuple[int, int]]]] = {}
        self.source: Dict = {}
        # key -> the stored (C, h, w) the index records, where it does
        self._stored_shapes: Dict[str, Tuple[int, int, int]] = {}
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
            if not images:  # nothing any tool could do with it; a wrong folder, likely
                raise ProbFileError(f'{index_path}: lists no images')
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
        stored = e.get('shape')
        if stored is not None:
            if not (isinstance(stored, list) and len(stored) == 3
                    and all(whole_number(v) and v >= 1 for v in stored)):
                raise ProbFileError(f'{where}.shape: {stored!r} is not a stored shape '
                                    '[C, h, w] of whole numbers >= 1')
            self._stored_shapes[key] = tuple(int(v) for v in stored)

    @staticmethod
    def _check_count(index_path: str, num_images, listed: int) -> None:
        """``num_images`` of the index, when present, must count its entries."""
        if num_images is not None and not (whole_number(num_images) and num_images == listed):
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
        problem = content_mismatch(meta.classes, meta.task, self.classes, self.task,
                                   'the folder\'s index')
        if problem:
            raise ProbFileError(f'{path}: {problem}')
        if meta.key != key:
            raise ProbFileError(f'{path}: holds image {meta.img_path}, expected {key}')
        self._check_agreement(key, path, meta, probs.shape, probs.dtype)
        return (probs if cropped else probs.dense()), meta

    def _check_agreement(self, key: str, path: str, meta: ProbMeta, probs_shape,
                         probs_dtype) -> None:
        """The image path and size, the stored shape and the dtype are stored twice, in
        ``index.json`` and in the file;
        every read through the folder requires both copies to agree, so no reader can
        use one copy while a check used the other."""
        _, name, ori_shape = self._entries[key]
        stored = self._stored_shapes.get(key)
        if stored is not None and stored != tuple(probs_shape):
            raise ProbFileError(
                f'{path}: holds probabilities of shape {list(probs_shape)} (C, h, w), but '
                f'{osp.join(self.root, INDEX_NAME)} says {list(stored)} for {key}')
        if self.dtype is not None and probs_dtype != np.dtype(self.dtype):
            raise ProbFileError(f'{path}: stores {probs_dtype} values, but '
                                f'{osp.join(self.root, INDEX_NAME)} says {self.dtype}')
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
        force: replace an existing probability folder that ``tool`` wrote (see
            :class:`~mmseg_ext.io.staged_dir.StagedDir`).
        compresslevel: zlib level of the files.
        background: quantise, compress and write each file in one background thread
            (zlib and file I/O release the GIL), overlapping with the caller's next
            image; at most two files are pending, so memory stays bounded. Arrays passed
            to :meth:`write` must not be modified afterwards.
        tool: the writing tool's name, recorded in the folder's manifest.
    """

    def __init__(self, out_dir: str, classes: Sequence[str], task: str,
                 dtype: str = 'uint8', source: Optional[Dict] = None, force: bool = False,
                 compresslevel: int = 1, background: bool = True,
                 tool: Optional[str] = None):
        if dtype not in DTYPES:
            raise InvalidArgumentError('dtype', f'must be one of {DTYPES}, got {dtype!r}')
        if task not in TASKS:
            raise InvalidArgumentError('task', f'must be one of {TASKS}, got {task!r}')
        self.classes = check_class_names(tuple(classes), f'{out_dir}: classes')
        self.stage = StagedDir(out_dir, force=force, marker=INDEX_NAME, tool=tool)
        self.out_dir = out_dir
        self.task = task
        self.dtype = dtype
        self.source = source or {}
        self.compresslevel = compresslevel
        self.images: Dict[str, Tuple[str, Tuple[int, int], Tuple[int, ...]]] = {}
        self._pool = ThreadPoolExecutor(max_workers=1) if background else None
        self._pending: Deque[Future] = deque()

    def write(self, probs: Union[np.ndarray, CroppedProbs], img_path: str,
              ori_shape: Tuple[int, int], source: Optional[Dict] = None,
              img_sha256: Optional[str] = None) -> str:
        """Write one image's ``(C, h, w)`` probabilities (float in [0, 1], stored dtype, or
        :class:`CroppedProbs`); return the file's final path. ``img_sha256``: the hex
        SHA-256 of the image file they were predicted from."""
        meta = ProbMeta(img_path=img_path.replace('\\', '/'), ori_shape=ori_shape,
                        classes=self.classes, task=self.task,
                        source=source if source is not None else self.source,
                        img_sha256=img_sha256)
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
