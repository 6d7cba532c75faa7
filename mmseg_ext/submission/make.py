"""Probability folder -> competition CSV (``tools/make_submission.py``).

One image at a time: read its stored probabilities, resize each class to the original
size, threshold (multi-label) or take the argmax (multi-class), optionally clean up small
components, encode, write the rows. Memory stays at one image; the CSV is written under a
temporary name and renamed at the end.

Which rows a CSV has is decided by the format's layout, not its name
(:mod:`mmseg_ext.io.submission`): a format with a label-string column gets one row per
image (:func:`_label_rows`, in ``test_json`` order when given); an RLE format gets one
row per (image, class) in folder order (:func:`_rle_rows_by_image`), or, for a format
whose rows come from a sample submission (port), in that file's order
(:func:`_rle_rows_by_sample`). Every input is read and checked before the output is
opened.
"""
from __future__ import annotations

import os.path as osp
import posixpath
import time
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
from tqdm import tqdm

from ..inference.probmaps import cropped_class_mask, label_map
from ..io.images import image_size, list_images
from ..io.paths import check_output_apart, check_output_format, data_relpath, image_key
from ..io.prob_file import read_meta
from ..io.prob_meta import check_same_image, check_same_size
from ..io.probs import ProbFolder, check_thresholds_apply
from ..io.submission import (
    SubmissionFormat,
    SubmissionWriter,
    check_class_list,
    check_row_sources,
    class_from_sample,
    get_format,
    label_string_row,
    read_sample_pairs,
    read_test_json_sizes,
    rle_row,
)
from ..postprocessing.components import ComponentFilter
from ..utils.errors import DataError
from ..utils.per_class import PerClassSpec, per_class_option
from ..utils.readers import stat_problem

#: ``(CSV fields, image name, the row's mask is empty, it is not but reads as empty)``.
Row = Tuple[Tuple[str, ...], str, bool, bool]


@dataclass
class SubmissionSummary:
    out: str
    images: int
    rows: int
    empty: int
    seconds: float
    #: rows whose mask covers the whole image but whose RLE is the format's empty token
    full_read_as_empty: int = 0


@dataclass
class _Job:
    """What a row producer needs: the opened folder and the resolved options."""
    folder: ProbFolder
    fmt: SubmissionFormat
    thresholds: Dict[str, float]
    default_threshold: float
    components: ComponentFilter
    test_json: Optional[str]
    sample: Optional[str]
    progress: bool


#: the owner recorded beside a submission this module writes
OWNER = 'make_submission'


def make_submission(probs_dir: str, fmt_name: str, out: str,
                    thresholds: PerClassSpec = None,
                    default_threshold: float = 0.5, img_dir: Optional[str] = None,
                    test_json: Optional[str] = None, sample: Optional[str] = None,
                    min_area: PerClassSpec = None, keep_largest: PerClassSpec = None,
                    connectivity: int = 8, force: bool = False, progress: bool = True,
                    classes: Optional[Sequence[str]] = None,
                    owner: Optional[str] = OWNER) -> SubmissionSummary:
    """Write the competition CSV ``out`` from the probability folder ``probs_dir``.

    The hand-bone layout (``image_name,class,rle``) is written for the classes the
    probability folder carries, in its order; trash and port have fixed class lists.

    Args:
        fmt_name: ``handbone`` | ``trash`` | ``port`` (:data:`mmseg_ext.io.submission.FORMATS`).
        thresholds: multi-label per-class thresholds (a number, ``{class: t}`` or a JSON
            file of it, :func:`~mmseg_ext.utils.per_class.per_class_option`); classes
            not named use ``default_threshold``. Foreground is ``p > t``.
        img_dir: the test images; when given, every image there must have probabilities
            and vice versa (matched as the format names images).
        test_json: the COCO ``test.json`` giving the row order of a label-string format
            (trash, by ``file_name``).
        sample: a sample submission giving the (file_name, class) rows and their order
            of an RLE format (port).
        min_area, keep_largest, connectivity: component clean-up of every class mask
            before encoding (:class:`~mmseg_ext.postprocessing.components.ComponentFilter`), each
            per class like ``thresholds``.
        force: replace ``out`` when it is ``owner``'s own unchanged file.
        owner: who owns ``out`` (its ownership record beside it,
            :mod:`mmseg_ext.io.owned_file`); None for a file inside a work directory
            whose manifest lists it instead (``tools/cv.py``).
        classes: require exactly this class list (e.g. the 29 competition classes)
            instead of accepting the folder's.
    """
    start = time.perf_counter()
    fmt = get_format(fmt_name)
    check_row_sources(fmt, test_json, sample)
    per_class_files = [v for v in (thresholds, min_area, keep_largest)
                       if isinstance(v, str) and osp.isfile(v)]
    check_output_format(out, 'CSV', ('.csv', '.txt'))
    check_output_apart(out, [probs_dir, img_dir, test_json, sample, *per_class_files],
                       'out')
    folder = ProbFolder(probs_dir)
    if folder.task != fmt.task:
        raise DataError(f'{probs_dir}: {folder.task} probabilities; the {fmt.name} format '
                        f'needs {fmt.task}')
    fmt = _format_for(fmt, folder, classes)
    thresholds = per_class_option(thresholds, folder.classes, 'thresholds', float, 0.0, 1.0)
    if thresholds and folder.task != 'multi-label':
        raise DataError(f'{probs_dir}: thresholds apply to multi-label probabilities only')
    check_thresholds_apply(folder, probs_dir, thresholds, default_threshold)
    components = ComponentFilter(
        per_class_option(min_area, folder.classes, 'min_area', int, 0),
        per_class_option(keep_largest, folder.classes, 'keep_largest', int, 0),
        connectivity)
    if img_dir is not None:
        _match_img_dir(folder, img_dir, fmt.image_by)
    job = _Job(folder, fmt, thresholds, default_threshold, components, test_json, sample,
               progress)
    rows = _rows(job)  # reads and checks test_json / sample before any output
    writer = SubmissionWriter(out, fmt, force=force, owner=owner)
    images, empty, ambiguous = set(), 0, 0
    with writer:
        for fields, image, is_empty, reads_empty in rows:
            writer.row(*fields)
            images.add(image)
            empty += is_empty
            ambiguous += reads_empty
    return SubmissionSummary(writer.path, len(images), writer.rows, empty,
                             time.perf_counter() - start, ambiguous)


def _format_for(fmt: SubmissionFormat, folder: ProbFolder,
                classes: Optional[Sequence[str]]) -> SubmissionFormat:
    """The format for the folder's classes (or the required ``classes``), checked."""
    if classes is not None:
        fmt = fmt.with_classes(classes) if fmt.any_classes else fmt
        check_class_list(folder.classes, fmt, folder.root)
    elif fmt.any_classes:
        fmt = fmt.with_classes(folder.classes)
    else:
        check_class_list(folder.classes, fmt, folder.root)
    return fmt


def _rows(job: _Job) -> Iterator[Row]:
    """The rows of the job's layout; the producer checks its inputs at once and returns
    the rows as an iterator."""
    if job.fmt.rle is None:
        return _label_rows(job)
    return (_rle_rows_by_sample if job.sample is not None else _rle_rows_by_image)(job)


# ------------------------------------------------------------------ row producers
def _class_masks(job: _Job, key: str) -> Iterator[Tuple[str, str, np.ndarray]]:
    """``(img_path, class name, (H, W) bool mask)`` for the format's row classes, one
    class at a time (one full-size mask in memory), cleaned up."""
    probs, meta = job.folder.read(key, cropped=True)
    size = meta.ori_shape
    if meta.task == 'multi-label':
        for c, name in enumerate(meta.classes):
            if name in job.fmt.row_classes:
                m = cropped_class_mask(probs, c, size,
                                       job.thresholds.get(name, job.default_threshold))
                yield meta.img_path, name, job.components(m, name)
    else:
        labels = label_map(probs.dense(), size)
        for c, name in enumerate(meta.classes):
            if name in job.fmt.row_classes:
                yield meta.img_path, name, job.components(labels == c, name)


def _rle_rows_by_image(job: _Job) -> Iterator[Row]:
    """Every image of the folder (sorted by path), its row classes in class order."""
    folder = job.folder
    keys = sorted(folder.keys(), key=lambda k: folder.info(k)[0])
    names: Dict[str, str] = {}
    for k in keys:
        name = osp.basename(folder.info(k)[0])
        if name in names:
            raise DataError(f'{folder.root}: two images are named {name} ({names[name]}, '
                            f'{k}); the submission identifies images by base name')
        names[name] = k
    return _rows_by_image(job, keys)


def _rows_by_image(job: _Job, keys) -> Iterator[Row]:
    for key in tqdm(keys, desc=f'{job.fmt.name} csv', unit='img', disable=not job.progress):
        for img_path, cls, mask in _class_masks(job, key):
            name = osp.basename(img_path)
            fields, is_empty, reads_empty = rle_row(job.fmt, name, cls, mask)
            yield fields, name, is_empty, reads_empty


def _rle_rows_by_sample(job: _Job) -> Iterator[Row]:
    """The (file_name, class) rows of the sample submission, in its order."""
    folder, sample = job.folder, job.sample
    pairs = read_sample_pairs(sample, job.fmt)
    by_path: Dict[str, str] = {}
    by_base: Dict[str, List[str]] = {}
    for k in folder.keys():
        img_path = folder.info(k)[0]
        by_path[img_path] = k
        by_base.setdefault(osp.basename(img_path), []).append(k)
    by_name: Dict[str, str] = {}
    for line, name, _ in pairs:
        if name in by_path:
            by_name[name] = by_path[name]
            continue
        keys = by_base.get(name, [])
        if not keys:
            raise DataError(f'{sample}:{line}: no probabilities for image {name} in '
                            f'{folder.root}')
        if len(keys) > 1:
            raise DataError(f'{sample}:{line}: {folder.root}: two images are named {name} '
                            f'({keys[0]}, {keys[1]}); the sample names images by base name')
        by_name[name] = keys[0]
    extra = sorted(set(folder.keys()) - set(by_name.values()))
    if extra:  # the sample decides the rows: an image it leaves out would be dropped
        raise DataError(f'{folder.root}: {len(extra)} image(s) with probabilities are not '
                        f'in {sample}, e.g. {folder.info(extra[0])[0]} (is it the sample '
                        'of this test set?)')
    classes = [class_from_sample(c, folder.classes, f'{sample}:{line}') for line, _, c in pairs]
    row_classes = set(job.fmt.row_classes)
    for (line, _, field), c in zip(pairs, classes):
        if not job.fmt.any_classes and folder.classes[c] not in row_classes:
            raise DataError(f'{sample}:{line}: class {field!r} ({folder.classes[c]}) has no '
                            f'rows in a {job.fmt.name} submission (its classes: '
                            f'{list(job.fmt.row_classes)})')
    return _rows_by_sample(job, pairs, classes, by_name)


def _rows_by_sample(job: _Job, pairs, classes, by_name) -> Iterator[Row]:
    folder = job.folder
    cache_key, cache = None, None
    for (_line, name, cls_field), c in tqdm(list(zip(pairs, classes)),
                                           desc=f'{job.fmt.name} csv', unit='row',
                                           disable=not job.progress):
        key = by_name[name]
        if key != cache_key:
            probs, meta = folder.read(key, cropped=True)
            cache_key, cache = key, (label_map(probs.dense(), meta.ori_shape)
                                     if meta.task == 'multi-class' else (probs, meta))
        if isinstance(cache, tuple):
            probs, meta = cache
            cname = meta.classes[c]
            mask = cropped_class_mask(probs, c, meta.ori_shape,
                                      job.thresholds.get(cname, job.default_threshold))
        else:
            cname = folder.classes[c]
            mask = cache == c
        fields, is_empty, reads_empty = rle_row(job.fmt, name, cls_field,
                                                job.components(mask, cname))
        yield fields, name, is_empty, reads_empty


def _label_rows(job: _Job) -> Iterator[Row]:
    """One class-index map per image, in ``test_json`` order (else sorted by path)."""
    folder = job.folder
    by_path = {folder.info(k)[0]: k for k in folder.keys()}
    if job.test_json is not None:
        sizes = read_test_json_sizes(job.test_json)
        order = list(sizes)
        keys = _test_json_keys(folder, order, job.test_json)
        extra = sorted(set(folder.keys()) - set(keys))
        if extra:
            raise DataError(f'{folder.root}: {len(extra)} image(s) with probabilities are '
                            f'not in {job.test_json}, e.g. {folder.info(extra[0])[0]} (is '
                            'it the test set of this file?)')
        for name, key in zip(order, keys):
            ori_shape = tuple(folder.info(key)[1])
            if sizes[name] is not None and sizes[name] != ori_shape:
                raise DataError(f'{job.test_json}: image {name} is {sizes[name][0]}x'
                                f'{sizes[name][1]} (H x W), but its probabilities in '
                                f'{folder.root} are for a {ori_shape[0]}x{ori_shape[1]} '
                                'image (made from another copy of the image?)')
    else:
        order = sorted(by_path)
        keys = [by_path[f] for f in order]
    return _rows_of_labels(job, order, keys)


def _test_json_keys(folder: ProbFolder, order: Sequence[str], test_json: str) -> List[str]:
    """The probability key of each ``file_name`` of ``test_json`` (in its order), matched
    by the normalised relative path (``\\`` read as ``/``, ``./`` dropped:
    :func:`~mmseg_ext.io.paths.data_relpath`), extension included.

    Raises:
        DataError: an entry whose image was predicted under another extension; entries
            without probabilities. (Two entries that name one image are refused when the
            file is read: :func:`~mmseg_ext.io.submission.read_test_json_sizes`.)
    """
    wanted = [data_relpath(name, f'{test_json}: images[{i}] file_name')
              for i, name in enumerate(order)]
    by_path = {posixpath.normpath(folder.info(k)[0].replace('\\', '/')): k
               for k in folder.keys()}
    by_stem = {image_key(path): path for path in by_path}
    missing = []
    for i, path in enumerate(wanted):
        if path in by_path:
            continue
        other = by_stem.get(image_key(path))
        if other is not None:
            raise DataError(f'{test_json}: images[{i}] {order[i]!r}: {folder.root} holds the '
                            f'probabilities of {other}, an image of another extension; '
                            'predict the images the test set names')
        missing.append(order[i])
    if missing:
        raise DataError(f'{folder.root}: no probabilities for {len(missing)} image(s) '
                        f'of {test_json}, e.g. {missing[0]}')
    return [by_path[path] for path in wanted]


def _rows_of_labels(job: _Job, order, keys) -> Iterator[Row]:
    folder = job.folder
    for file_name, key in tqdm(list(zip(order, keys)), desc=f'{job.fmt.name} csv',
                               unit='img', disable=not job.progress):
        probs, meta = folder.read(key)
        labels = label_map(probs, meta.ori_shape)
        if job.components.active:
            for c, name in enumerate(meta.classes[1:], start=1):
                keep = job.components(labels == c, name)
                labels[(labels == c) & ~keep] = 0
        fields, is_empty = label_string_row(file_name, labels)
        yield fields, file_name, is_empty, False


# ------------------------------------------------------------------ test images
def _images_in_dir(img_dir: str, by: str) -> Dict[str, str]:
    """Name -> relative path of every image under ``img_dir``; names are base names
    (``by='basename'``, must be unique) or relative paths (``by='relpath'``)."""
    out: Dict[str, str] = {}
    for rel in list_images(img_dir):
        name = osp.basename(rel) if by == 'basename' else rel
        if name in out:
            raise DataError(f'{img_dir}: two images are named {name} ({out[name]}, {rel})')
        out[name] = rel
    return out


def _match_img_dir(folder: ProbFolder, img_dir: str, by: str) -> None:
    """Every image under ``img_dir`` has probabilities and vice versa, and each image's
    size (read from its header) is the original size its probabilities record."""
    images = _images_in_dir(img_dir, by)
    names = {}
    for k in folder.keys():
        img_path = folder.info(k)[0]
        names[osp.basename(img_path) if by == 'basename' else img_path] = k
    missing = sorted(set(images) - set(names))
    extra = sorted(set(names) - set(images))
    if missing:
        raise DataError(f'{folder.root}: no probabilities for {len(missing)} image(s) of '
                        f'{img_dir}, e.g. {images[missing[0]]}')
    if extra:
        where = osp.join(img_dir, folder.info(names[extra[0]])[0])
        problem = stat_problem(where)
        if problem and problem != 'file not found':
            raise DataError(f'{where}: {problem}, expected the image that '
                            f'{folder.path(names[extra[0]])} is for')
        raise DataError(f'{folder.root}: holds {len(extra)} image(s) that are not in '
                        f'{img_dir}, e.g. {extra[0]}')
    for name, key in names.items():
        path = osp.join(img_dir, images[name])
        check_same_size(folder.path(key), folder.info(key)[1], path, image_size(path))
        check_same_image(folder.path(key), read_meta(folder.path(key)), path)
