"""Run-length encoding of binary masks, with every convention the competitions use.

A mask is a 2-D array ``(H, W)``; any non-zero value is foreground. It is flattened in
row-major (``order='C'``) or column-major (``order='F'``) order and written as
``"start length start length ..."`` where ``start`` is the flat index of a run's first
pixel counted from ``index_base`` (0 or 1) and ``length`` its number of pixels. An empty
mask is written as the ``empty`` token, which may contain ``{size}`` (``H * W``),
``{h}`` and ``{w}``.

==================  =========  ==========  ==============
convention          order      index_base  empty
==================  =========  ==========  ==============
``HANDBONE_RLE``    ``'C'``    1           ``''``
``PORT_RLE``        ``'C'``    0           ``'0 {size}'``
``COLUMN_RLE``      ``'F'``    1           ``''``
==================  =========  ==========  ==============

pycocotools' RLE is different (column-major counts of alternating zero- and one-runs,
starting with a zero-run); :func:`mask_to_coco` / :func:`coco_to_mask` convert, and
:func:`coco_counts_to_string` / :func:`coco_string_to_counts` implement its compressed
``counts`` string.

The encoder is fast on large sparse masks: it finds the bounding box of the foreground
with a few vectorised reductions and looks for run boundaries only inside it, so a
2048x2048 mask holding one small bone costs little more than one pass over 4 MB.
Output is byte-identical to the straightforward ``np.where(pixels[1:] != pixels[:-1])``
encoder (``tools/benchmark/bench_rle.py`` checks it).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np

from ..utils.errors import DataError, InvalidArgumentError

__all__ = [
    'RLEConvention', 'RLEError', 'HANDBONE_RLE', 'PORT_RLE', 'COLUMN_RLE',
    'mask_runs', 'mask_bbox', 'runs_to_string', 'encode_rle', 'parse_rle',
    'runs_to_mask', 'decode_rle', 'mask_to_coco', 'coco_to_mask',
    'coco_counts_to_string', 'coco_string_to_counts', 'runs_to_coco_counts',
]

Runs = Tuple[np.ndarray, np.ndarray]

#: Digits an RLE value may have: 18 keep every start + length inside int64.
_MAX_DIGITS = 18
#: 5-bit groups a compressed COCO count may have: 12 (60 bits) stay inside int64.
_MAX_GROUPS = 12


class RLEError(DataError):
    """An RLE string that is not valid under the requested convention."""


@dataclass(frozen=True)
class RLEConvention:
    """How a mask becomes a string (see the module docstring).

    Attributes:
        order: ``'C'`` (row-major) or ``'F'`` (column-major) flattening.
        index_base: the index of the first pixel, 0 or 1.
        empty: the string written for an empty mask; ``{size}``, ``{h}``, ``{w}`` are
            replaced by ``H * W``, ``H`` and ``W``.
    """
    order: str = 'C'
    index_base: int = 1
    empty: str = ''

    def __post_init__(self):
        if self.order not in ('C', 'F'):
            raise InvalidArgumentError('order', f"must be 'C' or 'F', got {self.order!r}")
        if self.index_base not in (0, 1):
            raise InvalidArgumentError('index_base', f'must be 0 or 1, got {self.index_base!r}')

    def empty_token(self, shape: Tuple[int, int]) -> str:
        h, w = int(shape[0]), int(shape[1])
        return self.empty.format(size=h * w, h=h, w=w)

    def encode(self, mask: np.ndarray) -> str:
        return encode_rle(mask, order=self.order, index_base=self.index_base,
                          empty=self.empty)

    def decode(self, text: str, shape: Tuple[int, int]) -> np.ndarray:
        return decode_rle(text, shape, order=self.order, index_base=self.index_base,
                          empty=self.empty)


HANDBONE_RLE = RLEConvention('C', 1, '')
PORT_RLE = RLEConvention('C', 0, '0 {size}')
COLUMN_RLE = RLEConvention('F', 1, '')

_BLOCK = 512  # bytes per block in the coarse foreground search (a multiple of 8)


def _as_u8(mask: np.ndarray) -> np.ndarray:
    """A C-contiguous 2-D ``uint8`` view (or copy) whose non-zero bytes are foreground."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise DataError(f'expected a 2-D (H, W) mask, got shape {mask.shape}')
    if mask.dtype == np.bool_ or mask.dtype == np.uint8 or mask.dtype == np.int8:
        mask = np.ascontiguousarray(mask)
        return mask.view(np.uint8)
    return (mask != 0).view(np.uint8)


def mask_bbox(mask: np.ndarray) -> Optional[Tuple[int, int, int, int]]:
    """Bounding box ``(r0, r1, c0, c1)`` (inclusive) of the non-zero pixels, or None.

    Cost: one coarse pass over the mask as 64-bit words, then work proportional to the
    rows that hold foreground.
    """
    m = _as_u8(mask)
    h, w = m.shape
    if m.size <= 1 << 16:  # small: two reductions beat the block search
        rows = np.flatnonzero(m.max(axis=1)) if m.size else np.zeros(0, np.int64)
        if rows.size == 0:
            return None
        cols = np.flatnonzero(m[rows[0]:rows[-1] + 1].max(axis=0))
        return int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])
    flat = m.reshape(-1)
    n = flat.size
    nb = n // _BLOCK
    first = last = None
    if nb:
        blocks = flat[:nb * _BLOCK].view(np.uint64).reshape(nb, _BLOCK // 8).max(axis=1)
        hit = np.flatnonzero(blocks)
        if hit.size:
            first, last = int(hit[0]) * _BLOCK, int(hit[-1]) * _BLOCK + _BLOCK - 1
    tail = np.flatnonzero(flat[nb * _BLOCK:])
    if tail.size:
        if first is None:
            first = nb * _BLOCK + int(tail[0])
        last = nb * _BLOCK + int(tail[-1])
    if first is None:
        return None
    r0, r1 = first // w, min(h - 1, last // w)
    band = m[r0:r1 + 1]
    rows = np.flatnonzero(band.max(axis=1))
    cols = np.flatnonzero(band.max(axis=0))
    return r0 + int(rows[0]), r0 + int(rows[-1]), int(cols[0]), int(cols[-1])


def _band_runs(band: np.ndarray, offset: int) -> Runs:
    """Runs of a flattened band of full-width rows; ``offset`` = flat index of its start."""
    flat = band.reshape(-1)
    padded = np.zeros(flat.size + 2, np.bool_)
    np.not_equal(flat, 0, out=padded[1:-1])
    change = np.flatnonzero(padded[1:] != padded[:-1])
    starts = change[0::2] + offset
    return starts, change[1::2] + offset - starts


def _window_runs(win: np.ndarray, top: int, left: int, full_w: int) -> Runs:
    """Runs of a window at (top, left) of a ``full_w``-wide array, one row at a time.

    Each window row is padded with a zero column on both sides, so runs never join
    across rows (the caller guarantees they cannot join in the full array either).
    """
    h, w = win.shape
    padded = np.zeros((h, w + 2), np.bool_)
    np.not_equal(win, 0, out=padded[:, 1:-1])
    flat = padded.reshape(-1)
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    row, col = np.divmod(change, w + 2)
    pos = (row + top) * full_w + (col + (left - 1))
    starts = pos[0::2]
    return starts, pos[1::2] - starts


def mask_runs(mask: np.ndarray, order: str = 'C') -> Runs:
    """0-indexed run starts and lengths (``int64``) of a 2-D mask's non-zero pixels.

    Args:
        mask: ``(H, W)`` array; non-zero = foreground.
        order: ``'C'`` row-major or ``'F'`` column-major flattening.

    Returns:
        ``(starts, lengths)``, sorted, non-overlapping and never touching (adjacent
        runs are one run).
    """
    m = _as_u8(mask)
    h, w = m.shape
    box = mask_bbox(m)
    if box is None:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    r0, r1, c0, c1 = box
    if order == 'C':
        if c0 == 0 and c1 == w - 1:  # a run may wrap from one row's end to the next row
            return _band_runs(m[r0:r1 + 1], r0 * w)
        return _window_runs(m[r0:r1 + 1, c0:c1 + 1], r0, c0, w)
    if order == 'F':
        if r0 == 0 and r1 == h - 1:
            return _band_runs(np.ascontiguousarray(m[:, c0:c1 + 1].T), c0 * h)
        return _window_runs(m[r0:r1 + 1, c0:c1 + 1].T, c0, r0, h)
    raise InvalidArgumentError('order', f"must be 'C' or 'F', got {order!r}")


def runs_to_string(starts: np.ndarray, lengths: np.ndarray, index_base: int = 1) -> str:
    """``"start length ..."`` with ``starts`` (0-indexed) shifted to ``index_base``."""
    out = np.empty(2 * len(starts), np.int64)
    out[0::2] = starts
    out[0::2] += index_base
    out[1::2] = lengths
    return ' '.join(map(str, out.tolist()))


def encode_rle(mask: np.ndarray, *, order: str = 'C', index_base: int = 1,
               empty: str = '') -> str:
    """Encode a 2-D mask (non-zero = foreground) as an RLE string.

    Defaults are the hand-bone convention (row-major, 1-indexed, empty string).
    """
    starts, lengths = mask_runs(mask, order)
    if starts.size == 0:
        h, w = np.shape(mask)
        return empty.format(size=h * w, h=h, w=w)
    return runs_to_string(starts, lengths, index_base)


def parse_rle(text: str, size: Optional[int] = None, *, index_base: int = 1,
              empty: Union[str, None] = '', shape: Optional[Tuple[int, int]] = None
              ) -> Runs:
    """Parse and validate an RLE string; return 0-indexed ``(starts, lengths)``.

    Args:
        text: the RLE string.
        size: number of pixels ``H * W`` for the bounds check (None: no check).
        index_base: 0 or 1.
        empty: the empty-mask token (``{size}`` etc. need ``shape``); a string equal to
            it decodes to no runs. None: no token.
        shape: ``(H, W)``; fills ``size`` and the token's placeholders.

    Raises:
        RLEError: with a one-line reason: not integers, odd count, a start before the
            first pixel, a length < 1, runs not sorted or overlapping, out of bounds.
    """
    if shape is not None:
        size = int(shape[0]) * int(shape[1])
    text = text.strip()
    if empty is not None:
        if shape is None and '{' in empty:
            token = None
        else:
            h, w = (shape if shape is not None else (0, 0))
            token = empty.format(size=size, h=h, w=w)
        if token is not None and text == token.strip():
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if not text:
        raise RLEError('empty RLE string where the empty-mask token is '
                       f'{empty!r}' if empty is not None else 'empty RLE string')
    tokens = text.split()
    if not all(t.isdigit() and t.isascii() for t in tokens):
        bad = next(t for t in tokens if not (t.isdigit() and t.isascii()))
        raise RLEError(f'RLE token {bad!r} is not a non-negative integer')
    if len(tokens) % 2:
        raise RLEError(f'RLE has an odd number of values ({len(tokens)})')
    huge = next((t for t in tokens if len(t.lstrip('0')) > _MAX_DIGITS), None)
    if huge is not None:  # int64 would overflow; no image has 10**18 pixels anyway
        shown = huge if len(huge) <= 30 else huge[:12] + '...' + huge[-6:]
        raise RLEError(f'RLE value {shown} is too large (more than {_MAX_DIGITS} digits)')
    values = np.array([t.lstrip('0') or '0' for t in tokens], dtype=np.int64)
    starts = values[0::2] - index_base
    lengths = values[1::2]
    if starts.size and starts.min() < 0:
        i = int(np.flatnonzero(starts < 0)[0])
        raise RLEError(f'run {i + 1} starts at {values[2 * i]}, before the first pixel '
                       f'({index_base})')
    if lengths.size and lengths.min() < 1:
        i = int(np.flatnonzero(lengths < 1)[0])
        raise RLEError(f'run {i + 1} has length {lengths[i]} (must be >= 1)')
    ends = starts + lengths
    if starts.size > 1:
        bad = np.flatnonzero(starts[1:] < ends[:-1])
        if bad.size:
            i = int(bad[0]) + 1
            what = 'not sorted' if starts[i] < starts[i - 1] else 'overlapping'
            raise RLEError(f'runs {i} and {i + 1} are {what} (start {values[2 * i]} < '
                           f'end {ends[i - 1] + index_base} of the previous run)')
    if size is not None and ends.size and ends[-1] > size:
        raise RLEError(f'last run ends at pixel {ends[-1] - 1 + index_base} '
                       f'(index base {index_base}), beyond the {size} pixels of the image')
    return starts, lengths


def runs_to_mask(starts: np.ndarray, lengths: np.ndarray, shape: Tuple[int, int],
                 order: str = 'C') -> np.ndarray:
    """``(H, W)`` ``uint8`` {0, 1} mask from 0-indexed runs (assumed valid)."""
    h, w = int(shape[0]), int(shape[1])
    flat = np.zeros(h * w, np.uint8)
    if len(starts) <= 4096:
        for s, n in zip(np.asarray(starts).tolist(), np.asarray(lengths).tolist()):
            flat[s:s + n] = 1
    else:
        edges = np.zeros(h * w + 1, np.int32)
        np.add.at(edges, starts, 1)
        np.add.at(edges, np.asarray(starts) + np.asarray(lengths), -1)
        flat[:] = np.cumsum(edges[:-1]) > 0
    if order == 'C':
        return flat.reshape(h, w)
    return np.ascontiguousarray(flat.reshape(w, h).T)


def decode_rle(text: str, shape: Tuple[int, int], *, order: str = 'C',
               index_base: int = 1, empty: str = '') -> np.ndarray:
    """Decode an RLE string into an ``(H, W)`` ``uint8`` {0, 1} mask (validated)."""
    starts, lengths = parse_rle(text, index_base=index_base, empty=empty, shape=shape)
    return runs_to_mask(starts, lengths, shape, order)


# ----------------------------------------------------------------- pycocotools RLE
def runs_to_coco_counts(starts: np.ndarray, lengths: np.ndarray, size: int) -> list:
    """Column-major 0-indexed runs -> pycocotools ``counts`` (zero-run first)."""
    counts = []
    pos = 0
    for s, n in zip(np.asarray(starts).tolist(), np.asarray(lengths).tolist()):
        counts.append(s - pos)
        counts.append(n)
        pos = s + n
    if pos < size or not counts:
        counts.append(size - pos)
    return counts


def coco_counts_to_string(counts: Sequence[int]) -> bytes:
    """pycocotools' compressed ``counts`` string (LEB128-like, 5 bits a character)."""
    out = bytearray()
    counts = [int(c) for c in counts]
    for i, x in enumerate(counts):
        if i > 2:
            x -= counts[i - 2]
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = (x != -1) if (c & 0x10) else (x != 0)
            if more:
                c |= 0x20
            out.append(c + 48)
    return bytes(out)


def coco_string_to_counts(counts: Union[bytes, str]) -> np.ndarray:
    """Run lengths of a pycocotools compressed RLE string (inverse of
    :func:`coco_counts_to_string`), decoded for all characters at once.

    The string stores each count in 5-bit groups, one ASCII character (48 + value) per
    group, with bit ``0x20`` marking "more groups follow" and bit ``0x10`` of the last
    group the sign; counts after the third are stored as differences to the count two
    places earlier.

    Args:
        counts: the ``'counts'`` field of a compressed RLE (``bytes`` or ``str``).

    Returns:
        ``(M,)`` int64 run lengths, alternating zeros/ones, starting with zeros.
    """
    if isinstance(counts, str):
        if not counts.isascii():
            raise RLEError('COCO RLE counts string holds characters that are not ASCII')
        counts = counts.encode('ascii')
    if not counts:
        return np.zeros(0, np.int64)
    chars = np.frombuffer(counts, np.uint8).astype(np.int64) - 48
    if chars.min() < 0 or chars.max() > 63:
        raise RLEError('COCO RLE counts string holds characters outside "0".."o"')
    last = (chars & 0x20) == 0                       # last 5-bit group of a number
    first = np.concatenate(([True], last[:-1]))
    starts = np.flatnonzero(first)
    if np.diff(np.append(starts, len(chars))).max() > _MAX_GROUPS:
        raise RLEError(f'COCO RLE counts string holds a number of more than {_MAX_GROUPS} '
                       '5-bit groups (beyond int64)')
    group = np.cumsum(first) - 1                     # number index of every character
    shift = 5 * (np.arange(len(chars)) - starts[group])
    values = np.bincount(group, weights=(chars & 0x1f) << shift).astype(np.int64)
    lengths = np.diff(np.append(starts, len(chars)))
    negative = (chars[last] & 0x10) != 0
    values[negative] -= np.left_shift(1, 5 * lengths[negative])
    runs = values.copy()
    if len(runs) > 3:  # counts[i] += counts[i - 2] for i > 2, per parity
        runs[3::2] = np.cumsum(values[3::2]) + runs[1]
    if len(runs) > 4:
        runs[4::2] = np.cumsum(values[4::2]) + runs[2]
    return runs


def mask_to_coco(mask: np.ndarray, compressed: bool = True) -> Dict:
    """``{'size': [H, W], 'counts': ...}`` as ``pycocotools.mask.encode`` returns it.

    ``compressed=True`` gives ``counts`` as ``bytes`` (pycocotools' encode output),
    False a list of ints (the "uncompressed RLE" of COCO json files).
    """
    h, w = np.shape(mask)
    starts, lengths = mask_runs(mask, 'F')
    counts = runs_to_coco_counts(starts, lengths, h * w)
    return {'size': [h, w], 'counts': coco_counts_to_string(counts) if compressed
            else counts}


def coco_to_mask(rle: Dict) -> np.ndarray:
    """``(H, W)`` ``uint8`` mask from a pycocotools RLE (compressed or list counts)."""
    h, w = (int(v) for v in rle['size'])
    counts = rle['counts']
    if isinstance(counts, (bytes, str)):
        counts = coco_string_to_counts(counts)
    counts = np.asarray(counts, np.int64)
    if counts.sum() != h * w:
        raise RLEError(f'COCO RLE counts sum to {int(counts.sum())}, expected {h * w}')
    ends = np.cumsum(counts)
    starts = ends - counts
    return runs_to_mask(starts[1::2], counts[1::2], (h, w), order='F')
