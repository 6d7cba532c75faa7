"""Ensembling (``tools/ensemble.py``): soft voting of probability folders and hard voting
of hand-bone submission CSVs.

Soft voting streams one image at a time (the previous one is being written by the
writer's background thread), so peak memory is about two images' probabilities,
whatever the number of images. Images are matched by key
(relative path without extension), never by position.
"""
from __future__ import annotations

import os.path as osp
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from tqdm import tqdm

from ..inference.probmaps import resize_channel
from ..inference.source import compact_source, member_models, shown
from ..io.paths import check_distinct_inputs, check_output_apart, check_output_format
from ..io.prob_file import CroppedProbs, dequantize, read_meta
from ..io.prob_meta import ProbMeta, content_mismatch, same_image_sha256
from ..io.probs import ProbFolder, ProbFolderWriter
from ..io.rle import RLEError, Runs, mask_bbox, parse_rle, runs_to_string
from ..io.submission import FORMATS, SubmissionWriter, read_rle_csv
from ..utils.errors import DataError, InvalidArgumentError


@dataclass
class EnsembleSummary:
    out: str
    images: int
    models: int
    seconds: float


def _check_compatible(folders: Sequence[ProbFolder]) -> None:
    first = folders[0]
    for f in folders[1:]:
        problem = content_mismatch(f.classes, f.task, first.classes, first.task, first.root)
        if problem:
            raise DataError(f'{f.root}: {problem}; they cannot be averaged')
    keys = set(first.keys())
    for f in folders[1:]:
        other = set(f.keys())
        missing = sorted(keys - other)
        if missing:
            raise DataError(f'{f.root}: no probabilities for image {missing[0]} '
                            f'(present in {first.root}; {len(missing)} missing)')
        extra = sorted(other - keys)
        if extra:
            raise DataError(f'{first.root}: no probabilities for image {extra[0]} '
                            f'(present in {f.root}; {len(extra)} missing)')


def check_one_model_per_folder(folders: Sequence[ProbFolder]) -> None:
    """Refuse two folders that hold one model's predictions with the same views,
    whatever their storage (``out_size``, dtype), as far as the records tell
    (:class:`SameValues` then compares the pixels, at two stored sizes too). Told by the
    ``source`` records
    (:mod:`~mmseg_ext.inference.source`): the same ``checkpoint_sha256`` and ``views``;
    for folders written before those were recorded, the same config, checkpoint path
    and TTA stored at two ``out_size`` (at one size the pixels tell). An ensemble's
    folder counts as its members (its record nests theirs, followed into nested
    ensembles within :data:`~mmseg_ext.inference.source.MAX_DEPTH` levels), so an
    ensemble and one of its own members are refused too. A record whose fields have
    other types or absurd lengths names no model (:func:`~.source.model_identity`).
    Two records of one ``checkpoint_sha256`` whose ``views`` were hashed by different
    versions of the formula (``views_version``: a folder written before the formula
    changed) do not compare by hash: their pixels decide, except inside an ensemble,
    where they are refused unless the records show other views (TTA against none).

    Raises:
        InvalidArgumentError: of ``prob_dirs``, naming both folders (and the member an
            ensemble holds it through).
    """
    seen: dict = {}
    versions: dict = {}  # checkpoint sha256 -> [(index, folder, model, via)]
    for index, folder in enumerate(folders):
        for model, via in member_models(folder.source):
            if model.by_content:
                for other in versions.get(model.key[1], []):
                    if _hidden_versions(other, (index, folder, model, via)):
                        raise InvalidArgumentError('prob_dirs', _versions_in_ensemble(
                            other, (folder, model, via)))
                versions.setdefault(model.key[1], []).append((index, folder, model, via))
            earlier = seen.get(model.key)
            if earlier is None:
                seen[model.key] = (index, folder, model, via)
                continue
            if earlier[0] == index:
                continue  # within one ensemble: made earlier, not this vote's doing
            _, first, first_model, first_via = earlier
            if model.by_content or via or first_via or first_model.out_size != model.out_size:
                _check_same_images(first, folder)  # other images: that is the mistake
                raise InvalidArgumentError(
                    'prob_dirs', _one_model_twice(first, first_model, first_via, folder,
                                                  model, via))


def _checkpoint_named(first_model, model) -> str:
    paths = [p for p in (first_model.checkpoint, model.checkpoint) if p]
    if len(set(paths)) == 2:
        return f'the same checkpoint content: {shown(paths[0])}, {shown(paths[1])}'
    if paths:
        return shown(paths[0])
    return f'checkpoint sha256 {model.key[1][:16]}...'


def _held(f: ProbFolder, member: Optional[str]) -> str:
    return shown(f.root) + (f' (an ensemble holding {shown(member)})' if member else '')


def _hidden_versions(first: tuple, second: tuple) -> bool:
    """Whether two sightings ``(index, folder, model, via)`` of one checkpoint have
    views hashes of two versions (which cannot be compared) while one of them lies
    inside an ensemble (whose averaged pixels cannot tell either), and their records
    do not show other views (TTA against none)."""
    (i, _, a, a_via), (j, _, b, b_via) = first, second
    if i == j or a.views_version == b.views_version or not (a_via or b_via):
        return False
    return not (isinstance(a.tta, bool) and isinstance(b.tta, bool) and a.tta != b.tta)


def _versions_in_ensemble(first: tuple, second: tuple) -> str:
    """The refusal of :func:`_hidden_versions`, naming the older record's folder."""
    _, f1, m1, v1 = first
    f2, m2, v2 = second

    def held(f: ProbFolder, member: Optional[str]) -> str:
        return shown(f.root) + (f' (an ensemble holding {shown(member)})' if member else '')
    older = (v1 or f1.root) if (m1.views_version or 0) < (m2.views_version or 0) \
        else (v2 or f2.root)
    return (f'{held(f1, v1)} and {held(f2, v2)} hold predictions of one checkpoint '
            f'({shown(m1.checkpoint or m2.checkpoint or "")}) whose views were hashed by '
            f'two versions of tools/inference.py ({m1.views_version} and '
            f'{m2.views_version}), and an ensemble\'s averaged pixels cannot tell whether '
            'they are one model\'s predictions given twice; re-run tools/inference.py for '
            f'{shown(older)} (and ensemble again)')


def _check_same_images(first: ProbFolder, folder: ProbFolder) -> None:
    """Two folders of one model that predicted other images under one name (the same
    model run on two image folders) are refused for that, not as one folder given
    twice: the first image name both hold is compared by its recorded ``img_sha256``.

    Raises:
        ProbFileError: naming the image (:func:`~mmseg_ext.io.prob_meta.same_image_sha256`).
    """
    shared = next((key for key in first.keys() if key in folder), None)
    if shared is not None:
        same_image_sha256([read_meta(first.path(shared)), read_meta(folder.path(shared))],
                          first.path(shared))


def _one_model_twice(first: ProbFolder, first_model, first_via: Optional[str],
                     folder: ProbFolder, model, via: Optional[str]) -> str:
    """The refusal of :func:`check_one_model_per_folder`, values cut for the message."""
    named = _checkpoint_named(first_model, model)
    if not (first_via or via):
        def stored(f: ProbFolder, m) -> str:
            size = repr(shown(m.out_size)) if m.out_size is not None else 'an unrecorded'
            return f'{f.dtype} at {size} size'
        return (f'{shown(first.root)} and {shown(folder.root)} were predicted by one model '
                f'({named}) with the same views, stored as {stored(first, first_model)} '
                f'and {stored(folder, model)}: one model\'s predictions given twice; give '
                'each once')
    return (f'{_held(first, first_via)} and {_held(folder, via)} both hold the predictions '
            f'of one model ({named}) with the same views: one model\'s predictions given '
            'twice; give each once (an ensemble counts as its members)')


def _weights(weights: Optional[Sequence[float]], n: int) -> np.ndarray:
    if weights is None:
        return np.full(n, 1.0 / n)
    if len(weights) != n:
        raise InvalidArgumentError('weights', f'{len(weights)} value(s) for {n} probability '
                                   'folders')
    try:
        w = np.asarray([float(x) for x in weights], np.float64)
    except (TypeError, ValueError, OverflowError):
        w = np.array([np.nan])
    if np.any(w < 0) or not np.all(np.isfinite(w)) or w.max() <= 0:
        raise InvalidArgumentError('weights', 'must be finite, non-negative and not all '
                                   f'zero, got {list(weights)}')
    # divide by the largest first: 1e308 + 1e308 overflows, 1 + 1 does not
    w = w / w.max()
    w = w / w.sum()
    if not np.all(np.isfinite(w)):  # cannot happen after the scaling; never let it pass
        raise InvalidArgumentError('weights', f'cannot be normalised: {list(weights)}')
    return w


def _target_size(shapes: List[Tuple[int, int]], ori_shape: Tuple[int, int],
                 mixed: str) -> Tuple[int, int]:
    if all(s == shapes[0] for s in shapes):
        return shapes[0]
    if mixed == 'original':
        return ori_shape
    return max(shapes, key=lambda s: s[0] * s[1])


def soft_vote(prob_dirs: Sequence[str], out_dir: str,
              weights: Optional[Sequence[float]] = None, mixed_size: str = 'original',
              dtype: Optional[str] = None, force: bool = False, compresslevel: int = 1,
              progress: bool = True, tool: str = 'tools/ensemble.py') -> EnsembleSummary:
    """Weighted mean of the probabilities of several folders, written as a new folder.

    Args:
        prob_dirs: probability folders (same classes and task, same images).
        out_dir: output folder (same format; it can be ensembled again).
        weights: one non-negative weight per folder (normalised to sum 1); default equal.
        mixed_size: when an image's stored resolutions differ between folders, resize
            all to ``'original'`` (the image's original size) or ``'largest'`` (the
            largest stored resolution); equal resolutions are kept as they are.
        dtype: stored dtype of the output (default: the first folder's, else uint8).
        force: replace ``out_dir`` when it is ``tool``'s own unchanged output.
        tool: the writer's name, recorded in the folder's manifest.
    """
    start = time.perf_counter()
    if len(prob_dirs) < 2:
        raise InvalidArgumentError('prob_dirs', 'ensembling needs at least two probability '
                                   'folders')
    if mixed_size not in ('original', 'largest'):
        raise InvalidArgumentError('mixed_size', f'must be original or largest, got '
                                   f'{mixed_size!r}')
    check_output_apart(out_dir, prob_dirs, 'out_dir')
    folders = [ProbFolder(d) for d in prob_dirs]
    check_distinct_inputs(prob_dirs, 'probability folder', 'prob_dirs')
    _check_compatible(folders)
    check_one_model_per_folder(folders)
    w = _weights(weights, len(folders))
    first = folders[0]
    # a member's record is copied whole when it is a small JSON object (a foreign or
    # edited one is cut down to its valid model fields)
    source = dict(ensemble=[dict(probs=osp.abspath(f.root), weight=float(x),
                                 source=compact_source(f.source))
                            for f, x in zip(folders, w)], mixed_size=mixed_size)
    keys = first.keys()
    with ProbFolderWriter(out_dir, first.classes, first.task,
                          dtype=dtype or first.dtype or 'uint8', source=source,
                          force=force, compresslevel=compresslevel, tool=tool) as writer:
        alike = SameValues(len(folders))
        for key in tqdm(keys, desc='ensemble', unit='img', disable=not progress):
            loaded = [f.read(key, cropped=True) for f in folders]  # one image per model
            alike.update([p for p, _ in loaded])
            fused, meta = _mean_one(folders, key, loaded, w, mixed_size, writer.dtype)
            writer.write(fused, meta.img_path, meta.ori_shape, img_sha256=same_image_sha256(
                [m for _, m in loaded], first.path(key)))
        alike.check(folders)  # one model given twice, in any dtype: refused
        writer.commit()
    return EnsembleSummary(out_dir, len(keys), len(folders), time.perf_counter() - start)


class SameValues:
    """The pairs of member folders whose probabilities agreed on every image so far,
    within one ``uint8`` level whatever the stored dtype: one model's predictions given
    twice (one folder and a ``float16`` re-write of it, say), which byte comparison
    (:func:`~mmseg_ext.io.paths.check_distinct_inputs`) cannot see. A pair is dropped at
    its first difference, so distinct models cost one image's comparison; a pair that
    never predicted anything (every level below 2) is not called alike.

    One level of tolerance also within one dtype, on purpose: one model predicting the
    same images twice on a GPU is not bit-identical (non-deterministic kernels move a
    value across a level boundary), and that is the mistake refused here. Two distinct
    models within one level of each other on every pixel of every image add nothing
    to a vote either.
    """

    def __init__(self, count: int):
        self.pairs = {(i, j) for i in range(count) for j in range(i + 1, count)}
        self.with_content: set = set()

    def update(self, probs: Sequence[CroppedProbs]) -> None:
        """Compare one image's ``(C, h, w)`` stored probabilities of every member. Two
        members stored at other sizes are compared after bringing one to the other's
        size, as the vote itself resizes (``--out-size native`` against ``original``
        of one model agree within a level that way; another test scale does not)."""
        levels: dict = {}

        def level(i: int, c: int, shape: Optional[Tuple[int, int]] = None) -> np.ndarray:
            size = tuple(shape or probs[i].shape[1:])
            if (i, c, size) not in levels:
                channel = dequantize(probs[i].channel(c)).astype(np.float32)
                levels[i, c, size] = np.rint(resize_channel(channel, size) * 255.0
                                             ).astype(np.int16)
            return levels[i, c, size]

        def within_one(i: int, j: int) -> Optional[bool]:
            """Whether ``i`` brought to ``j``'s size agrees with ``j`` within one level
            (None: both empty everywhere)."""
            shown_any = False
            for c in range(probs[i].shape[0]):
                if probs[i].box(c) is None and probs[j].box(c) is None:
                    continue
                a, b = level(i, c, probs[j].shape[1:]), level(j, c)
                if int(np.abs(a - b).max()) > 1:
                    return False
                shown_any = shown_any or int(max(a.max(), b.max())) >= 2
            return True if shown_any else None

        for i, j in sorted(self.pairs):
            if probs[i].shape[0] != probs[j].shape[0]:
                self.pairs.discard((i, j))
                continue
            results = [within_one(i, j)]
            if probs[i].shape != probs[j].shape and results[0] is False:
                results.append(within_one(j, i))
            if all(r is False for r in results):
                self.pairs.discard((i, j))
            elif any(r for r in results):
                self.with_content.add((i, j))

    def check(self, folders: Sequence[ProbFolder]) -> None:
        """Refuse a pair alike on every image.

        Raises:
            InvalidArgumentError: of ``prob_dirs``, naming both folders.
        """
        for i, j in sorted(self.pairs & self.with_content):
            raise InvalidArgumentError(
                'prob_dirs', f'{folders[i].root} and {folders[j].root} hold the same '
                'probabilities on every image (within one uint8 level; stored as '
                f'{folders[i].dtype} and {folders[j].dtype}): one model\'s predictions '
                'given twice; give each once')


def _class_sum(loaded: List[Tuple[CroppedProbs, ProbMeta]], c: int, same: bool,
               size: Tuple[int, int], scales: Sequence[np.float32], w: np.ndarray
               ) -> Optional[Tuple[np.ndarray, int, int]]:
    """``(acc, row, column)``: the weighted mean of class ``c`` over the members, a float
    map on the union of their boxes (at ``(row, column)``), or the full ``size`` when a
    member is stored at another resolution; None when every member is 0 there."""
    member_boxes = [p.box(c) for p, _ in loaded]
    present = [b for b in member_boxes if b is not None]
    if not present:
        return None
    if same:
        r0, c0 = min(b[0] for b in present), min(b[2] for b in present)
        r1, c1 = max(b[1] for b in present), max(b[3] for b in present)
        acc = np.zeros((r1 - r0, c1 - c0), np.float32)
        for (p, _), b, scale in zip(loaded, member_boxes, scales):
            if b is not None:  # weight and dequantisation in one multiplication
                acc[b[0] - r0:b[1] - r0, b[2] - c0:b[3] - c0] += p.crops[c] * scale
        return acc, r0, c0
    acc = np.zeros(size, np.float32)
    for (p, _), b, weight in zip(loaded, member_boxes, w):
        if b is not None:
            acc += np.float32(weight) * resize_channel(dequantize(p.channel(c)), size)
    return acc, 0, 0


def _to_unit_sum(sums: List[Optional[Tuple[np.ndarray, int, int]]],
                 size: Tuple[int, int]) -> None:
    """Divide multi-class means by their class sum, in place, where it is near 1 (within
    twice the reader's tolerance): each member was rounded once when stored, and the mean would otherwise be
    rounded again when this folder is stored, beyond what a reader allows for one
    rounding (it refuses sums further from 1 as not softmax)."""
    total = np.zeros(size, np.float32)
    for found in sums:
        if found is not None:
            acc, r0, c0 = found
            total[r0:r0 + acc.shape[0], c0:c0 + acc.shape[1]] += acc
    # the members' sums are each within the reader's tolerance of 1 (C/510 + 1e-3)
    window = max(0.05, len(sums) / 255 + 2e-3)
    divisor = np.where(np.abs(total - 1.0) <= window, total, np.float32(1.0))
    for found in sums:
        if found is not None:
            acc, r0, c0 = found
            acc /= divisor[r0:r0 + acc.shape[0], c0:c0 + acc.shape[1]]
            np.minimum(acc, 1.0, out=acc)


def _mean_one(folders: Sequence[ProbFolder], key: str,
              loaded: List[Tuple[CroppedProbs, ProbMeta]], w: np.ndarray, mixed: str,
              dtype: str) -> Tuple[CroppedProbs, ProbMeta]:
    """Weighted mean of one image over all folders, quantised to ``dtype``.

    Works class by class on the union of the members' boxes (outside it every member is
    0), so compact objects cost little; members stored at another resolution are
    resized (bilinear) to the target size first.
    """
    meta = loaded[0][1]
    for f, (_, m) in zip(folders[1:], loaded[1:]):
        if m.ori_shape != meta.ori_shape:
            raise DataError(f'{f.path(key)}: original size {m.ori_shape} differs from '
                            f'{meta.ori_shape} in {folders[0].path(key)}')
    shapes = [tuple(p.shape[1:]) for p, _ in loaded]
    size = _target_size(shapes, meta.ori_shape, mixed)
    same = all(s == size for s in shapes)
    scales = [np.float32(weight / 255.0 if p.dtype == np.uint8 else weight)
              for (p, _), weight in zip(loaded, w)]
    n_cls = len(meta.classes)
    sums = [_class_sum(loaded, c, same, size, scales, w) for c in range(n_cls)]
    if meta.task == 'multi-class':
        _to_unit_sum(sums, size)
    boxes = np.zeros((n_cls, 4), np.int32)
    crops = []
    for c, found in enumerate(sums):
        if found is None:
            crops.append(np.zeros((0, 0), dtype))
            continue
        acc, r0, c0 = found
        if dtype == 'uint8':  # acc is in [0, 1]: q = round(255 p), in place
            acc *= 255.0
            q = np.rint(acc, out=acc).astype(np.uint8)
        else:
            q = acc.astype(np.float16)
        if not same:  # a full-size map: crop it to its non-zero box
            tight = mask_bbox(q)
            if tight is None:
                crops.append(np.zeros((0, 0), dtype))
                continue
            t0, t1, u0, u1 = tight
            r0, c0, q = r0 + t0, c0 + u0, q[t0:t1 + 1, u0:u1 + 1]
        # (on the union of the members' boxes the box stays that union: a box may have
        # zero margins, it only has to contain every non-zero value)
        boxes[c] = (r0, r0 + q.shape[0], c0, c0 + q.shape[1])
        crops.append(q)
    return CroppedProbs((n_cls, *size), boxes, crops), meta


# -------------------------------------------------------------------- hard voting
def _check_distinct_masks(paths: Sequence[str],
                          masks: Sequence[Dict[Tuple[str, str], Runs]]) -> None:
    """Refuse two submissions with the same mask on every row: one model's CSV given
    twice in other bytes (rows reordered, other line endings, a run split in two or
    runs listed in another order), which :func:`~mmseg_ext.io.paths.check_distinct_inputs`
    cannot see. Masks are compared as pixel sets (runs sorted and merged).

    Args:
        masks: per CSV, ``{(image, class): (starts, lengths)}`` (0-indexed runs).

    Raises:
        InvalidArgumentError: of ``csv``, naming both files.
    """
    canon = [{k: tuple(a.tobytes() for a in vote_runs([runs], 1)) for k, runs in m.items()}
             for m in masks]
    for i in range(len(canon)):
        for j in range(i + 1, len(canon)):
            if canon[i] == canon[j]:
                raise InvalidArgumentError(
                    'csv', f'{paths[i]} and {paths[j]} hold the same mask on every row '
                    '(written in other bytes: row order, line endings or runs): one '
                    'submission given twice; give each once')


def vote_runs(runs: Sequence[Tuple[np.ndarray, np.ndarray]], min_votes: int
              ) -> Tuple[np.ndarray, np.ndarray]:
    """Pixels covered by at least ``min_votes`` of the masks given as 0-indexed runs.

    Works on the runs directly (a sweep over run boundaries), so no mask is decoded and
    no image size is needed; the result is the same as decoding, summing the masks and
    re-encoding ``votes >= min_votes``.
    """
    starts = [s for s, _ in runs if len(s)]
    if not starts or min_votes > len(runs):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    s = np.concatenate(starts)
    e = np.concatenate([st + ln for st, ln in runs if len(st)])
    pos, inv = np.unique(np.concatenate([s, e]), return_inverse=True)
    delta = np.bincount(inv, weights=np.concatenate([np.ones(len(s)), -np.ones(len(e))]),
                        minlength=len(pos))
    cover = np.cumsum(delta) >= min_votes  # coverage on [pos[i], pos[i + 1])
    edges = np.flatnonzero(np.diff(np.concatenate([[False], cover])))
    begin = pos[edges[0::2]]
    end = pos[edges[1::2]]
    return begin.astype(np.int64), (end - begin).astype(np.int64)


#: the owner recorded beside a hard-voted CSV
HARD_VOTE_OWNER = 'ensemble'


def hard_vote_csv(csv_paths: Sequence[str], out: str, min_votes: Optional[int] = None,
                  force: bool = False, progress: bool = True,
                  img_dir: Optional[str] = None) -> EnsembleSummary:
    """Hard voting of hand-bone-layout submissions (any class list, the same in every
    CSV): a pixel is kept when >= ``min_votes`` CSVs mark it (default: a strict
    majority). Rows follow the first CSV's order. ``force`` replaces ``out`` only when
    it is this function's own unchanged output (:mod:`mmseg_ext.io.owned_file`).

    ``img_dir``: the test images (matched by file name); every image of the CSVs must
    be there, every test image must have rows, and every run must lie inside its
    image. Without it, a run past an image's end
    cannot be told (the CSVs carry no sizes) and goes into the vote."""
    start = time.perf_counter()
    fmt = FORMATS['handbone']
    if len(csv_paths) < 2:
        raise InvalidArgumentError('csv', 'hard voting needs at least two CSV files')
    if min_votes is None:
        min_votes = len(csv_paths) // 2 + 1
    if not 1 <= min_votes <= len(csv_paths):
        raise InvalidArgumentError('min_votes', f'must be in 1..{len(csv_paths)}, got '
                                   f'{min_votes}')
    check_output_format(out, 'CSV', ('.csv', '.txt'))
    check_output_apart(out, csv_paths, 'out')
    check_distinct_inputs(csv_paths, 'submission', 'csv')
    tables = [read_rle_csv(p, fmt, any_class=True) for p in csv_paths]
    keys = list(tables[0])
    sizes = _sizes_of(keys, img_dir, csv_paths[0]) if img_dir is not None else {}
    for path, table in zip(csv_paths[1:], tables[1:]):
        missing = [k for k in keys if k not in table]
        if missing:
            raise DataError(f'{path}: no row for ({missing[0][0]}, {missing[0][1]}) '
                            f'(present in {csv_paths[0]})')
        extra = [k for k in table if k not in tables[0]]
        if extra:
            raise DataError(f'{csv_paths[0]}: no row for ({extra[0][0]}, {extra[0][1]}) '
                            f'(present in {path})')
    conv = fmt.rle
    masks = []
    for path, table in zip(csv_paths, tables):
        masks.append({})
        for image, cls in keys:
            try:
                masks[-1][(image, cls)] = parse_rle(
                    table[(image, cls)], index_base=conv.index_base, empty=conv.empty,
                    shape=sizes.get(image))
            except RLEError as exc:
                raise DataError(f'{path}: ({image}, {cls}): {exc}') from None
    _check_distinct_masks(csv_paths, masks)
    with SubmissionWriter(out, fmt, force=force, owner=HARD_VOTE_OWNER) as writer:
        for image, cls in tqdm(keys, desc='hard vote', unit='row', disable=not progress):
            s, n = vote_runs([m[(image, cls)] for m in masks], min_votes)
            writer.row(image, cls, runs_to_string(s, n, conv.index_base) if len(s)
                       else conv.empty)
    return EnsembleSummary(out, len({k[0] for k in keys}), len(csv_paths),
                           time.perf_counter() - start)


def _sizes_of(keys: Sequence[Tuple[str, str]], img_dir: str, csv_path: str
              ) -> dict:
    """``{image name: (H, W)}`` of the CSV's images, read from ``img_dir``."""
    from ..io.images import image_sizes_by_name
    sizes = image_sizes_by_name(img_dir, 'basename')
    named = {image for image, _ in keys}
    for image in named:
        if image not in sizes:
            raise DataError(f'{csv_path}: image {image} is not in {img_dir}')
    missing = sorted(set(sizes) - named)
    if missing:  # a test image without rows: the submission would be incomplete
        raise DataError(f'{img_dir}: image {missing[0]} has no rows in {csv_path} '
                        f'({len(missing)} test image(s) without rows)')
    return sizes
