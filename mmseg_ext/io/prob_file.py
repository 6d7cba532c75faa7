"""One probability file (``.npz``): quantisation, the box per class, writing and reading.

The format (two arrays, ``data`` and ``meta``) is documented in :mod:`mmseg_ext.io.probs`.
:func:`quantize` / :func:`dequantize` convert between float probabilities and the stored
dtype; :class:`CroppedProbs` keeps ``(C, h, w)`` stored values as one bounding-box crop
per class, the layout of ``data``; :func:`write_probs` writes a file atomically and
:func:`read_cropped` / :func:`read_probs` read one back, checking everything in it.
"""
from __future__ import annotations

import io
import json
import zipfile
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..utils.errors import DataError, InvalidArgumentError
from ..utils.readers import check_regular_file, loads_json, reading
from .atomic import atomic_open
from .prob_meta import DTYPES, ProbFileError, ProbMeta, checked_size, whole_number
from .rle import mask_bbox


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
        return cls.from_channels(stored.shape, iter(stored))

    @classmethod
    def from_channels(cls, shape: Tuple[int, int, int], channels) -> CroppedProbs:
        """Crop ``C`` stored ``(h, w)`` channels, given one at a time (an iterable), to
        each one's non-zero bounding box: the memory of one dense channel, not ``C``."""
        boxes = np.zeros((shape[0], 4), np.int32)
        crops = []
        for c, channel in enumerate(channels):
            box = mask_bbox(channel)
            if box is None:
                crops.append(channel[:0, :0])
                continue
            r0, r1, c0, c1 = box
            boxes[c] = (r0, r1 + 1, c0, c1 + 1)
            crops.append(channel[r0:r1 + 1, c0:c1 + 1].copy())
        return cls(tuple(shape), boxes, crops)

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
    the stored shape, the boxes account for every stored value, ``float16`` values
    are finite and in [0, 1] (``uint8`` ones are by construction), and multi-class
    probabilities sum to 1 over the classes (:func:`check_class_sums`).

    Raises:
        ProbFileError: anything else than a valid file, naming it.
    """
    check_regular_file(path, 'probability file')  # a FIFO is never opened
    try:
        with reading(path, 'probability file'), np.load(path, allow_pickle=False) as npz:
            info, meta = _meta_of(npz, path)  # format and version first
            if 'data' not in npz.files:
                raise ProbFileError(f'{path}: not a probability file (no data array)')
            extra = sorted(set(npz.files) - {'meta', 'data'})
            if extra:
                raise ProbFileError(f'{path}: holds the array(s) {", ".join(extra)} besides '
                                    'data and meta: not a file this writer made (re-saved '
                                    'by another tool?)')
            data = npz['data']
    except DataError as exc:
        raise exc if isinstance(exc, ProbFileError) else ProbFileError(str(exc)) from None
    if data.dtype.name not in DTYPES:
        raise ProbFileError(f'{path}: probabilities stored as {data.dtype}, '
                            f'expected one of {DTYPES}')
    if info.get('dtype') is not None and info['dtype'] != data.dtype.name:
        raise ProbFileError(f'{path}: its metadata says dtype {info["dtype"]!r}, but the '
                            f'values are stored as {data.dtype.name}')
    shape, boxes = _checked_layout(path, info, len(meta.classes), data)
    crops, pos = [], 0
    for r0, r1, c0, c1 in boxes:
        n = (r1 - r0) * (c1 - c0)
        crops.append(data[pos:pos + n].reshape(r1 - r0, c1 - c0))
        pos += n
    if data.dtype == np.float16 and data.size:
        _check_probabilities(path, data)
    probs = CroppedProbs(shape, np.asarray(boxes, np.int64).reshape(-1, 4), crops)
    if meta.task == 'multi-class':  # every reader: a softmax output or refused
        check_class_sums(path, probs)
    return probs, meta


def _checked_layout(path: str, info: Dict, num_classes: int, data: np.ndarray
                    ) -> Tuple[List[int], List[List[int]]]:
    """``shape [C, h, w]`` and ``boxes`` of a file's metadata, checked against its class
    count and its stored values (before any array is reshaped)."""
    shape, boxes = info.get('shape'), info.get('boxes')
    # each of the three problems in its own words: a dense (C, h, w) array under a
    # matching shape is not a class-count problem, nor a shape that is no [C, h, w]
    if data.ndim != 1:
        raise ProbFileError(f'{path}: data is a {data.ndim}-D array '
                            f'{list(data.shape)}; the format stores the crops as one flat '
                            'vector')
    if (not isinstance(shape, list) or len(shape) != 3
            or not all(whole_number(v) for v in shape)):
        raise ProbFileError(f'{path}: shape {shape!r} is not three whole numbers [C, h, w]')
    if shape[0] != num_classes:
        raise ProbFileError(f'{path}: shape {shape} does not match its {num_classes} '
                            'classes')
    checked_size(shape[1:], f'{path}: shape')
    if (not isinstance(boxes, list) or len(boxes) != num_classes
            or not all(isinstance(b, list) and len(b) == 4 and all(whole_number(v) for v in b)
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


#: the largest error of one stored value, by stored dtype (``uint8``: half a level;
#: ``float16``: 2**-11 relative, at most 2.5e-4 on [0, 1])
STORED_ERROR = {'uint8': 1 / 510, 'float16': 2.5e-4}


def check_class_sums(path: str, probs: CroppedProbs) -> None:
    """Refuse multi-class (softmax) probabilities whose classes do not sum to 1 at some
    pixel, beyond what storing each value can change (``C`` times :data:`STORED_ERROR`,
    plus 1e-3): a folder of 0.9 in every class, or of zeros, is not a softmax output,
    and its argmax and confidence would mean nothing."""
    c, h, w = probs.shape
    total = np.zeros((h, w), np.float32)
    scale = 255.0 if probs.dtype == np.uint8 else 1.0
    for crop, box in zip(probs.crops, probs._boxes):
        if box is not None:
            r0, r1, c0, c1 = box
            total[r0:r1, c0:c1] += crop.astype(np.float32) / scale
    tolerance = c * STORED_ERROR.get(probs.dtype.name, 1 / 510) + 1e-3
    off = np.abs(total - 1.0) > tolerance
    if off.any():
        r, col = (int(v) for v in np.argwhere(off)[0])
        raise ProbFileError(f'{path}: multi-class probabilities sum to '
                            f'{float(total[r, col]):.4f} over the classes at pixel ({r}, '
                            f'{col}) (row, column), not 1: not a softmax output (store '
                            'independent per-class probabilities as multi-label)')


def _meta_of(npz, path: str) -> Tuple[dict, ProbMeta]:
    """The metadata of an open probability file: its JSON and :class:`ProbMeta`."""
    if 'meta' not in npz.files:
        raise ProbFileError(f'{path}: not a probability file (no meta array)')
    info = loads_json(str(npz['meta'][()]), f'{path}: metadata')
    if not isinstance(info, dict):
        raise ProbFileError(f'{path}: metadata is not a JSON object')
    return info, ProbMeta.from_dict(info, path)


def read_meta(path: str) -> ProbMeta:
    """The metadata of one probability file alone (its probabilities are not read).

    Raises:
        ProbFileError: not a valid file's metadata, naming it.
    """
    check_regular_file(path, 'probability file')
    try:
        with reading(path, 'probability file'), np.load(path, allow_pickle=False) as npz:
            return _meta_of(npz, path)[1]
    except DataError as exc:
        raise exc if isinstance(exc, ProbFileError) else ProbFileError(str(exc)) from None


def read_probs(path: str) -> Tuple[np.ndarray, ProbMeta]:
    """Read one probability file: ``((C, h, w) uint8|float16 array, ProbMeta)``.

    Use :func:`dequantize` for ``float32`` probabilities.
    """
    cropped, meta = read_cropped(path)
    return cropped.dense(), meta

