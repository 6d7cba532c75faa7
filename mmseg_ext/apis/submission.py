"""Probability folder -> competition CSV (``tools/make_submission.py``).

One image at a time: read its stored probabilities, resize each class to the original
size, threshold (multi-label) or take the argmax (multi-class), optionally clean up small
components, encode, write the rows. Memory stays at one image; the CSV is written under a
temporary name and renamed at the end.
"""
from __future__ import annotations

import json
import os.path as osp
import time
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from tqdm import tqdm

from ..io.images import image_size, list_images
from ..io.paths import check_output_apart
from ..io.probs import ProbFolder, image_key
from ..io.rle import encode_rle
from ..io.submission import (
    TRASH_OUT_SIZE,
    SubmissionFormat,
    SubmissionWriter,
    check_class_list,
    get_format,
    iter_csv,
)
from ..utils.errors import DataError, InvalidArgumentError
from ..utils.per_class import per_class_values
from .postprocess import filter_components
from .probmaps import cropped_class_mask, label_map


def load_per_class(spec: Optional[str], classes: Sequence[str], what: str,
                   cast: Callable = float, lo: float = 0.0,
                   hi: float = float('inf'), argument: Optional[str] = None
                   ) -> Dict[str, float]:
    """Per-class values from a command-line option.

    ``spec`` is a number (same value for every class) or a JSON file ``{class: value}``
    (classes not named keep no entry). Unknown class names and values outside
    ``[lo, hi]`` are a :class:`DataError` naming the file; a number outside the range
    is an :class:`InvalidArgumentError` of ``argument`` (default: ``what``).
    """
    if spec is None:
        return {}
    try:
        value = cast(spec)
    except ValueError:
        value = None
    if value is not None:
        if not lo <= value <= hi:
            raise InvalidArgumentError((argument or what).replace('-', '_'),
                                       f'{spec} is outside [{lo:g}, {hi:g}]')
        return {c: value for c in classes}
    if not osp.isfile(spec):
        raise DataError(f'{spec}: {what} file not found (expected a number or a JSON file)')
    try:
        with open(spec) as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f'{spec}: not a JSON file ({exc})') from None
    if not isinstance(data, dict):
        raise DataError(f'{spec}: expected a JSON object {{class name: {what}}}')
    return per_class_values(data, classes, spec, what, lo, hi, cast, error=DataError)


def read_class_list(spec: str) -> Tuple[str, ...]:
    """A class list from a probability folder (its classes), a file (one name a line, or
    a JSON list of names) or comma-separated names."""
    if osp.isdir(spec):
        return ProbFolder(spec).classes
    if osp.isfile(spec):
        try:
            with open(spec, encoding='utf-8') as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f'{spec}: cannot read the class list ({exc})') from None
        try:
            names = json.loads(text)
        except json.JSONDecodeError:
            names = [line.strip() for line in text.splitlines() if line.strip()]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise DataError(f'{spec}: expected one class name a line or a JSON list of names')
    else:
        names = [n.strip() for n in spec.split(',') if n.strip()]
    if not names or len(set(names)) != len(names):
        raise DataError(f'{spec}: the class list must be non-empty without duplicates, got '
                        f'{names}')
    return tuple(names)


@dataclass
class PostProcess:
    """Per-class component clean-up (:func:`filter_components`)."""
    min_area: Dict[str, int]
    keep_largest: Dict[str, int]
    connectivity: int = 8

    def __call__(self, mask: np.ndarray, cls: str) -> np.ndarray:
        a, k = self.min_area.get(cls, 0), self.keep_largest.get(cls, 0)
        if a <= 0 and k <= 0:
            return mask
        return filter_components(mask, a, k, self.connectivity)

    @property
    def active(self) -> bool:
        return any(v > 0 for v in self.min_area.values()) or \
            any(v > 0 for v in self.keep_largest.values())


@dataclass
class SubmissionSummary:
    out: str
    images: int
    rows: int
    empty: int
    seconds: float


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
        raise DataError(f'{folder.root}: holds {len(extra)} image(s) that are not in '
                        f'{img_dir}, e.g. {extra[0]}')
    for name, key in names.items():
        path = osp.join(img_dir, images[name])
        actual = image_size(path)
        recorded = tuple(folder.info(key)[1])
        if actual != recorded:
            raise DataError(f'{folder.path(key)}: probabilities are for a {recorded[0]}x'
                            f'{recorded[1]} image (H x W), but {path} is {actual[0]}x'
                            f'{actual[1]}; were they made from other copies of the images?')


def _rle_masks(folder: ProbFolder, key: str, fmt: SubmissionFormat,
               thresholds: Dict[str, float], default_t: float,
               post: PostProcess) -> Iterator[Tuple[str, str, np.ndarray]]:
    """``(img_path, class name, (H, W) bool mask)`` for the format's row classes, one
    class at a time (one full-size mask in memory)."""
    probs, meta = folder.read(key, cropped=True)
    size = meta.ori_shape
    if meta.task == 'multi-label':
        for c, name in enumerate(meta.classes):
            if name in fmt.row_classes:
                m = cropped_class_mask(probs, c, size, thresholds.get(name, default_t))
                yield meta.img_path, name, post(m, name)
    else:
        labels = label_map(probs.dense(), size)
        for c, name in enumerate(meta.classes):
            if name in fmt.row_classes:
                yield meta.img_path, name, post(labels == c, name)


def make_submission(probs_dir: str, fmt_name: str, out: str,
                    thresholds: Optional[Dict[str, float]] = None,
                    default_threshold: float = 0.5, img_dir: Optional[str] = None,
                    test_json: Optional[str] = None, sample: Optional[str] = None,
                    post: Optional[PostProcess] = None, force: bool = False,
                    progress: bool = True,
                    classes: Optional[Sequence[str]] = None) -> SubmissionSummary:
    """Write the competition CSV ``out`` from the probability folder ``probs_dir``.

    The hand-bone layout (``image_name,class,rle``) is written for the classes the
    probability folder carries, in its order; trash and port have fixed class lists.

    Args:
        fmt_name: ``handbone`` | ``trash`` | ``port`` (:data:`mmseg_ext.io.submission.FORMATS`).
        thresholds: multi-label per-class thresholds ``{class: t}``; others use
            ``default_threshold``. Foreground is ``p > t``.
        img_dir: the test images; when given, every image there must have probabilities
            and vice versa (matched by base name; trash: by relative path).
        test_json: trash: COCO ``test.json`` giving the row order (``file_name``).
        sample: port: sample submission giving the (file_name, class) rows and order.
        post: component clean-up applied to every class mask before encoding.
        force: overwrite ``out``.
        classes: require exactly this class list (e.g. the 29 competition classes)
            instead of accepting the folder's.
    """
    start = time.perf_counter()
    fmt = get_format(fmt_name)
    check_output_apart(out, [probs_dir, img_dir, test_json, sample], 'out')
    folder = ProbFolder(probs_dir)
    if folder.task != fmt.task:
        raise DataError(f'{probs_dir}: {folder.task} probabilities; the {fmt.name} format '
                        f'needs {fmt.task}')
    if classes is not None:
        fmt = fmt.with_classes(classes) if fmt.any_classes else fmt
        check_class_list(folder.classes, fmt, probs_dir)
    elif fmt.any_classes:
        fmt = fmt.with_classes(folder.classes)
    else:
        check_class_list(folder.classes, fmt, probs_dir)
    thresholds = dict(thresholds or {})
    if thresholds and folder.task != 'multi-label':
        raise DataError(f'{probs_dir}: thresholds apply to multi-label probabilities only')
    post = post or PostProcess({}, {})
    if img_dir is not None:  # trash names images by relative path, the others by name
        _match_img_dir(folder, img_dir, 'relpath' if fmt.name == 'trash' else 'basename')
    writer = SubmissionWriter(out, fmt, force=force)
    if fmt.name == 'trash':
        return _write_trash(folder, writer, test_json, post, progress, start)
    if fmt.name == 'port' and sample is not None:
        return _write_rle_from_sample(folder, fmt, writer, sample, thresholds,
                                      default_threshold, post, progress, start)
    keys = sorted(folder.keys(), key=lambda k: folder.info(k)[0])
    names: Dict[str, str] = {}
    for k in keys:
        name = osp.basename(folder.info(k)[0])
        if name in names:
            raise DataError(f'{probs_dir}: two images are named {name} ({names[name]}, '
                            f'{k}); the submission identifies images by base name')
        names[name] = k
    empty = 0
    with writer:
        for key in tqdm(keys, desc=f'{fmt.name} csv', unit='img', disable=not progress):
            for img_path, cls, mask in _rle_masks(folder, key, fmt, thresholds,
                                                  default_threshold, post):
                name = osp.basename(img_path)
                rle = fmt.rle.encode(mask)
                empty += rle == fmt.rle.empty_token(mask.shape)
                writer.row(name, cls, rle)
    return SubmissionSummary(out, len(keys), writer.rows, empty,
                             time.perf_counter() - start)


def _write_trash(folder: ProbFolder, writer: SubmissionWriter, test_json: Optional[str],
                 post: PostProcess, progress: bool, start: float) -> SubmissionSummary:
    by_path = {folder.info(k)[0]: k for k in folder.keys()}
    if test_json is not None:
        order = read_test_json(test_json)
        missing = [f for f in order if f not in by_path and image_key(f) not in folder]
        if missing:
            raise DataError(f'{folder.root}: no probabilities for {len(missing)} image(s) '
                            f'of {test_json}, e.g. {missing[0]}')
        keys = [by_path[f] if f in by_path else image_key(f) for f in order]
    else:
        order = sorted(by_path)
        keys = [by_path[f] for f in order]
    h, w = TRASH_OUT_SIZE
    with writer:
        for file_name, key in tqdm(list(zip(order, keys)), desc='trash csv', unit='img',
                                   disable=not progress):
            probs, meta = folder.read(key)
            labels = label_map(probs, meta.ori_shape)
            if post.active:
                for c, name in enumerate(meta.classes[1:], start=1):
                    keep = post(labels == c, name)
                    labels[(labels == c) & ~keep] = 0
            small = cv2.resize(labels, (w, h), interpolation=cv2.INTER_NEAREST)
            writer.row(file_name, ' '.join(map(str, small.ravel().tolist())))
    return SubmissionSummary(writer.path, len(keys), writer.rows, 0,
                             time.perf_counter() - start)


def read_test_json(path: str) -> List[str]:
    """``file_name`` of every image of a COCO json, in file order."""
    try:
        with open(path) as f:
            data = json.load(f)
        names = [img['file_name'] for img in data['images']]
    except FileNotFoundError:
        raise DataError(f'{path}: file not found') from None
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DataError(f'{path}: not a COCO json with images[].file_name ({exc})') from None
    if len(set(names)) != len(names):
        raise DataError(f'{path}: duplicated file_name in images')
    return names


def read_sample_pairs(path: str, fmt: SubmissionFormat) -> List[Tuple[int, str, str]]:
    """``(line, file_name, class)`` rows of a sample submission (first two columns)."""
    pairs = []
    for line, fields in iter_csv(path):
        if line == 1 and fields and fields[0] == fmt.header[0]:
            continue
        if len(fields) < 2:
            raise DataError(f'{path}:{line}: {len(fields)} field(s), expected at least 2')
        pairs.append((line, fields[0], fields[1]))
    if not pairs:
        raise DataError(f'{path}: no rows')
    return pairs


def class_from_sample(value: str, classes: Sequence[str], where: str) -> int:
    """Class index of a sample file's class field (a class name or an index)."""
    if value in classes:
        return classes.index(value)
    if value.isdigit() and int(value) < len(classes):
        return int(value)
    raise DataError(f'{where}: unknown class {value!r} (classes: {list(classes)})')


def _write_rle_from_sample(folder: ProbFolder, fmt: SubmissionFormat,
                           writer: SubmissionWriter, sample: str,
                           thresholds: Dict[str, float], default_t: float,
                           post: PostProcess, progress: bool, start: float
                           ) -> SubmissionSummary:
    pairs = read_sample_pairs(sample, fmt)
    by_name: Dict[str, str] = {}
    for k in folder.keys():
        img_path = folder.info(k)[0]
        by_name[img_path] = k
        by_name.setdefault(osp.basename(img_path), k)
    for line, name, _ in pairs:
        if name not in by_name:
            raise DataError(f'{sample}:{line}: no probabilities for image {name} in '
                            f'{folder.root}')
    cache_key, cache = None, None
    empty = 0
    with writer:
        for line, name, cls_field in tqdm(pairs, desc=f'{fmt.name} csv', unit='row',
                                          disable=not progress):
            c = class_from_sample(cls_field, folder.classes, f'{sample}:{line}')
            key = by_name[name]
            if key != cache_key:
                probs, meta = folder.read(key, cropped=True)
                cache_key, cache = key, (label_map(probs.dense(), meta.ori_shape)
                                         if meta.task == 'multi-class' else (probs, meta))
            if isinstance(cache, tuple):
                probs, meta = cache
                cname = meta.classes[c]
                mask = cropped_class_mask(probs, c, meta.ori_shape,
                                          thresholds.get(cname, default_t))
            else:
                cname = folder.classes[c]
                mask = cache == c
            mask = post(mask, cname)
            empty += not mask.any()
            writer.row(name, cls_field, encode_rle(mask, order=fmt.rle.order,
                                                   index_base=fmt.rle.index_base,
                                                   empty=fmt.rle.empty))
    return SubmissionSummary(writer.path, len({p[1] for p in pairs}), writer.rows, empty,
                             time.perf_counter() - start)
