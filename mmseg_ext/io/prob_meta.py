"""What a probability file says about its image (:class:`ProbMeta`), and the checks on it.

The metadata of a probability file and of a folder's ``index.json`` (format in
:mod:`mmseg_ext.io.probs`) is checked where it enters, by one rule each: the format
version (:func:`check_version`), class names (:func:`checked_classes`), image sizes
(:func:`checked_size`, within the pixel cap), the stored dtype (:func:`checked_dtype`);
probabilities are used only with an image or label of the size they were made for
(:func:`check_same_size`) and only in place of others of the same classes and task
(:func:`content_mismatch`). Every refusal is a :class:`ProbFileError` naming the file.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from ..utils.class_names import check_class_names
from ..utils.errors import DataError, InvalidArgumentError
from ..utils.readers import MAX_PIXELS_ENV, max_pixels
from .paths import image_key

PROBS_FORMAT = 'mmseg_ext.probs'
PROBS_VERSION = 1
TASKS = ('multi-label', 'multi-class')
DTYPES = ('uint8', 'float16')


class ProbFileError(DataError):
    """A probability file or folder that cannot be used (message names the file)."""


@dataclass
class ProbMeta:
    """What a probability file says about its image (format in :mod:`mmseg_ext.io.probs`)."""
    img_path: str
    ori_shape: Tuple[int, int]
    classes: Tuple[str, ...]
    task: str
    source: Dict = field(default_factory=dict)
    #: hex SHA-256 of the image file the probabilities were predicted from (None:
    #: not recorded, a file of an older version)
    img_sha256: Optional[str] = None

    def __post_init__(self):
        self.ori_shape = (int(self.ori_shape[0]), int(self.ori_shape[1]))
        self.classes = tuple(str(c) for c in self.classes)
        if self.task not in TASKS:
            raise InvalidArgumentError('task', f'must be one of {TASKS}, got {self.task!r}')

    @property
    def key(self) -> str:
        return image_key(self.img_path)

    def to_dict(self, dtype: str) -> Dict:
        out = dict(format=PROBS_FORMAT, version=PROBS_VERSION, img_path=self.img_path,
                   ori_shape=list(self.ori_shape), classes=list(self.classes),
                   task=self.task, dtype=dtype, source=self.source)
        if self.img_sha256 is not None:
            out['img_sha256'] = self.img_sha256
        return out

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
            digest = d.get('img_sha256')
            if digest is not None and not (isinstance(digest, str)
                                           and re.fullmatch('[0-9a-f]{64}', digest)):
                raise ProbFileError(f'{where}: img_sha256 {str(digest)[:80]!r} is not a '
                                    'hex SHA-256')
            return cls(img_path=d['img_path'],
                       ori_shape=checked_size(d['ori_shape'], f'{where}: ori_shape'),
                       classes=classes, task=d['task'],
                       source=d.get('source', {}), img_sha256=digest)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            if isinstance(exc, DataError):
                raise
            raise ProbFileError(f'{where}: bad metadata ({exc})') from None


def whole_number(value) -> bool:
    """Whether ``value`` is a whole number (an int, not a bool, not a float)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_version(value, where: str) -> None:
    """Refuse a ``version`` that is not the whole number :data:`PROBS_VERSION` (``true``
    and ``1.0`` compare equal to 1 in Python, but are not this format's version)."""
    if not (whole_number(value) and value == PROBS_VERSION):
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


def check_same_image(prob_path: str, meta: ProbMeta, image_path: str) -> None:
    """Refuse to use the probabilities of ``prob_path`` with the image ``image_path``
    when the file records the content of the image it was predicted from
    (``img_sha256``) and this image's differs: another split's image of the same name
    and size would otherwise get its predictions (drawn over it, written as its
    submission rows)."""
    if meta.img_sha256 is None:
        return
    from .paths import file_sha256
    if file_sha256(image_path) != meta.img_sha256:
        raise ProbFileError(f'{image_path}: not the image {prob_path} was predicted from '
                            '(same name, other content: another split or an edited '
                            'copy?); use the images the probabilities were made for')


def same_image_sha256(metas: Sequence[ProbMeta], where: str) -> Optional[str]:
    """The one ``img_sha256`` of the probabilities of one image from several folders
    (an ensemble's members): None when one does not record it.

    Raises:
        ProbFileError: two record different images under the image's name.
    """
    digests = [m.img_sha256 for m in metas]
    if any(d is None for d in digests):
        return None
    if len(set(digests)) > 1:
        raise ProbFileError(f'{where}: the folders predicted different images under the '
                            f'name {metas[0].img_path} (their img_sha256 differ)')
    return digests[0]


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
            not all(whole_number(v) and v >= 1 for v in value):
        raise ProbFileError(f'{where}: {value!r} is not a size [H, W] of whole numbers >= 1')
    h, w = int(value[0]), int(value[1])
    if h * w > max_pixels():
        raise ProbFileError(f'{where}: {h}x{w} is more than the {max_pixels()} pixels an '
                            f'image may have (set {MAX_PIXELS_ENV} to raise it)')
    return h, w



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

