"""Competition submission CSVs: formats, a streaming writer and readers.

=============  ===================================  ==========================================
format         header                               rows
=============  ===================================  ==========================================
``handbone``   ``image_name,class,rle``             one per (image, class): 29 per image in
                                                    class order; row-major 1-indexed RLE,
                                                    empty mask = empty field
``trash``      ``image_id,PredictionString``        one per image (``test.json`` order): 65,536
                                                    class ids of the 256x256 argmax map
``port``       ``file_name,class,prediction``       one per (image, foreground class);
                                                    row-major 0-indexed RLE, empty = ``0 H*W``
=============  ===================================  ==========================================

CSV text is written as pandas' ``to_csv(index=False)`` writes it (the baselines' writer):
``\\n`` line ends, fields quoted only when they contain a comma, quote or line break.
"""
from __future__ import annotations

import csv
import dataclasses
import os
import os.path as osp
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..utils.class_names import (
    HAND_BONE_CLASSES,
    PORT_CLASSES,
    TRASH_CLASSES,
    check_class_names,
    check_class_names_argument,
    class_name_problem,
)
from ..utils.errors import DataError, InvalidArgumentError
from ..utils.readers import check_regular_file, loads_json, read_json, read_lines, read_text
from .atomic import atomic_open
from .paths import data_relpath
from .probs import ProbFolder
from .rle import HANDBONE_RLE, PORT_RLE, RLEConvention

#: (H, W) of the trash PredictionString map.
TRASH_OUT_SIZE = (256, 256)


@dataclass(frozen=True)
class SubmissionFormat:
    """A competition's CSV layout.

    Attributes:
        name: ``handbone`` | ``trash`` | ``port``.
        header: column names of the first line.
        classes: the class list the probabilities must have (channel order).
        task: the task of the competition's probabilities.
        rle: RLE convention of the mask column, None for the trash label string.
        row_classes: classes that get a row of their own (RLE formats).
        any_classes: the layout is not tied to ``classes`` (hand-bone: any multi-label
            class list); :meth:`with_classes` gives the format for another list.
        image_by: how a row names its image: ``'basename'`` (the file name) or
            ``'relpath'`` (the path relative to the test folder).
        rows_from_sample: the competition gives a sample submission whose (image,
            class) rows and order the CSV follows.
    """
    name: str
    header: Tuple[str, ...]
    classes: Tuple[str, ...]
    task: str
    rle: Optional[RLEConvention]
    row_classes: Tuple[str, ...] = ()
    any_classes: bool = False
    image_by: str = 'basename'
    rows_from_sample: bool = False

    def with_classes(self, classes: Sequence[str]) -> SubmissionFormat:
        """The same layout for another class list (every class gets its rows)."""
        if not self.any_classes:
            raise DataError(f'the {self.name} format has a fixed class list')
        classes = check_class_names(tuple(classes), f'{self.name} format')
        return dataclasses.replace(self, classes=classes, row_classes=classes)


FORMATS: Dict[str, SubmissionFormat] = {
    'handbone': SubmissionFormat('handbone', ('image_name', 'class', 'rle'),
                                 HAND_BONE_CLASSES, 'multi-label', HANDBONE_RLE,
                                 HAND_BONE_CLASSES, any_classes=True),
    'trash': SubmissionFormat('trash', ('image_id', 'PredictionString'), TRASH_CLASSES,
                              'multi-class', None, image_by='relpath'),
    'port': SubmissionFormat('port', ('file_name', 'class', 'prediction'), PORT_CLASSES,
                             'multi-class', PORT_RLE, PORT_CLASSES[1:], rows_from_sample=True),
}


def check_row_sources(fmt: SubmissionFormat, test_json: Optional[str],
                      sample: Optional[str]) -> None:
    """Refuse a sample submission or a ``test.json`` that ``fmt`` does not take its rows
    from (rather than ignoring it)."""
    def formats(test) -> str:
        return ', '.join(name for name, f in FORMATS.items() if test(f))
    if sample is not None and not fmt.rows_from_sample:
        raise InvalidArgumentError('sample', f'the {fmt.name} format takes its rows from the '
                                   'probabilities; a sample submission is for '
                                   + formats(lambda f: f.rows_from_sample))
    if test_json is not None and fmt.rle is not None:
        raise InvalidArgumentError('test_json', f'the {fmt.name} format takes no test.json '
                                   '(it gives the row order of '
                                   + formats(lambda f: f.rle is None) + ')')


def get_format(name: str) -> SubmissionFormat:
    if name not in FORMATS:
        raise InvalidArgumentError('format', f'unknown submission format {name!r} (one of '
                                   f'{sorted(FORMATS)})')
    return FORMATS[name]


class SubmissionWriter:
    """Write a submission CSV row by row to a temporary file, renamed on success.

    Example::

        with SubmissionWriter('sub.csv', FORMATS['handbone']) as w:
            w.row('a.png', 'finger-1', '2 2 5 1')
    """

    def __init__(self, path: str, fmt: SubmissionFormat, force: bool = False,
                 owner: Optional[str] = None):
        """``owner``: the tool whose user-facing output ``path`` is, so that ``force``
        replaces only its own file (:func:`~mmseg_ext.io.atomic.atomic_open`)."""
        self.path = path
        self.fmt = fmt
        self.force = force
        self.owner = owner
        self.rows = 0

    def __enter__(self) -> SubmissionWriter:
        self._ctx = atomic_open(self.path, 'w', force=self.force, owner=self.owner,
                                newline='',
                                encoding='utf-8')
        self._file = self._ctx.__enter__()
        self._csv = csv.writer(self._file, lineterminator='\n')
        self._csv.writerow(self.fmt.header)
        return self

    def row(self, *fields: str) -> None:
        if len(fields) != len(self.fmt.header):
            raise ValueError(f'{len(fields)} fields for header {self.fmt.header}')  # a bug
        self._csv.writerow(fields)
        self.rows += 1

    def __exit__(self, exc_type, exc, tb):
        return self._ctx.__exit__(exc_type, exc, tb)


def rle_row(fmt: SubmissionFormat, image: str, cls: str, mask: np.ndarray
            ) -> Tuple[Tuple[str, str, str], bool, bool]:
    """The ``(image, class, RLE)`` row of an ``(H, W)`` bool mask, whether the mask is
    empty, and whether it is not but reads as empty: a mask covering the whole image in
    a format whose empty token is the run of every pixel (port: ``0 H*W``)."""
    rle = fmt.rle.encode(mask)
    is_empty = not mask.any()
    return (image, cls, rle), is_empty, not is_empty and rle == fmt.rle.empty_token(mask.shape)


def label_string_row(image: str, labels: np.ndarray) -> Tuple[Tuple[str, str], bool]:
    """The trash row of an ``(H, W)`` class-index map: resized (nearest) to
    :data:`TRASH_OUT_SIZE` and written as space-separated class ids, row-major."""
    h, w = TRASH_OUT_SIZE
    small = cv2.resize(labels, (w, h), interpolation=cv2.INTER_NEAREST)
    return (image, ' '.join(map(str, small.ravel().tolist()))), not small.any()


# ------------------------------------------------------------------ readers
def iter_csv(path: str) -> Iterator[Tuple[int, List[str]]]:
    """``(line number, fields)`` of every row of a CSV file, header included.

    Fields may be long (a trash row is about 130 kB, a large RLE more): the csv module's
    field size limit is raised to 2**31 - 1 for the process.
    """
    csv.field_size_limit(2 ** 31 - 1)
    check_regular_file(path, 'CSV file')  # a FIFO is never opened
    try:
        # utf-8-sig: a byte-order mark (spreadsheet programs write one) is not text
        with open(path, newline='', encoding='utf-8-sig') as f:
            reader = csv.reader(f)
            for fields in reader:
                yield reader.line_num, fields
    except FileNotFoundError:
        raise DataError(f'{path}: file not found') from None
    except UnicodeDecodeError as exc:
        raise DataError(f'{path}: not UTF-8 text ({exc.reason} at byte {exc.start})'
                        ) from None
    except csv.Error as exc:
        raise DataError(f'{path}: not a readable CSV ({exc})') from None
    except OSError as exc:
        raise DataError(f'{path}: cannot read the CSV ({exc.strerror})') from None


def read_rle_csv(path: str, fmt: SubmissionFormat,
                 any_class: bool = False) -> Dict[Tuple[str, str], str]:
    """Read a (image, class, rle) submission into ``{(image, class): rle}`` in file order.

    ``any_class`` accepts every class name (a hand-bone-layout CSV of another class
    list); otherwise only ``fmt.row_classes``.

    Raises:
        DataError: bad header, wrong field count, a class field that breaks the
            class-name rule (white space at an end, a control character, empty),
            unknown class or a duplicated (image, class), naming the file and line.
    """
    if fmt.rle is None:
        raise ValueError(f'{fmt.name} has no RLE column')  # a bug of the caller
    rows: Dict[Tuple[str, str], str] = {}
    lines: Dict[Tuple[str, str], int] = {}
    header_seen = False
    for line, fields in iter_csv(path):
        if not header_seen:
            if tuple(fields) != fmt.header:
                raise DataError(f'{path}:{line}: header {",".join(fields)!r}, expected '
                                f'{",".join(fmt.header)!r}')
            header_seen = True
            continue
        if len(fields) != 3:
            raise DataError(f'{path}:{line}: {len(fields)} fields, expected 3')
        image, cls, rle = fields
        problem = class_name_problem(cls)
        if problem:  # named on its line, not later as a row missing for the good name
            raise DataError(f'{path}:{line}: the class field is empty' if not cls else
                            f'{path}:{line}: class {problem}')
        if not any_class and cls not in fmt.row_classes:
            raise DataError(f'{path}:{line}: unknown class {cls!r}')
        key = (image, cls)
        if key in rows:
            raise DataError(f'{path}:{line}: ({image}, {cls}) already on line {lines[key]}')
        rows[key] = rle
        lines[key] = line
    if not header_seen:
        raise DataError(f'{path}: empty file (no header)')
    return rows


def check_class_list(classes: Sequence[str], fmt: SubmissionFormat, where: str) -> None:
    """Raise when probabilities' ``classes`` are not the format's class list."""
    if tuple(classes) == fmt.classes:
        return
    missing = [c for c in fmt.classes if c not in classes]
    extra = [c for c in classes if c not in fmt.classes]
    if not missing and not extra:
        raise DataError(f'{where}: classes are in a different order than the {fmt.name} '
                        f'format expects ({list(fmt.classes)})')
    raise DataError(f'{where}: classes do not match the {fmt.name} format '
                    f'({len(missing)} missing: {_few(missing)}; {len(extra)} unexpected: '
                    f'{_few(extra)})')


def _few(names: Sequence[str], n: int = 4) -> str:
    return ', '.join(names[:n]) + (', ...' if len(names) > n else '') if names else '-'



def read_test_json(path: str) -> List[str]:
    """``file_name`` of every image of a COCO json, in file order."""
    return list(read_test_json_sizes(path))


def read_test_json_sizes(path: str) -> Dict[str, Optional[Tuple[int, int]]]:
    """``{file_name: (height, width)}`` of every image of a COCO json, in file order
    (``None`` where an image states no size; a stated size must be two integers >= 1)."""
    data = read_json(path, 'COCO json')
    names = _test_json_names(path, data)
    sizes: Dict[str, Optional[Tuple[int, int]]] = {}
    for i, (img, name) in enumerate(zip(data['images'], names)):
        h, w = img.get('height'), img.get('width')
        if h is None and w is None:
            sizes[name] = None
            continue
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in (h, w)):
            raise DataError(f'{path}: images[{i}] ({name}): height and width must be '
                            f'integers >= 1, got {h!r} and {w!r}')
        sizes[name] = (h, w)
    return sizes


def _test_json_names(path: str, data) -> List[str]:
    try:
        names = [img['file_name'] for img in data['images']]
        if not all(isinstance(n, str) for n in names):
            raise TypeError('a file_name is not text')
    except (KeyError, TypeError) as exc:
        raise DataError(f'{path}: not a COCO json with images[].file_name ({exc})') from None
    seen: Dict[str, Tuple[int, str]] = {}
    for i, name in enumerate(names):  # one image however spelt (b\\a.jpg, ./b/a.jpg)
        norm = data_relpath(name, f'{path}: images[{i}] file_name')
        if norm in seen:
            j, first = seen[norm]
            raise DataError(f'{path}: images[{j}] {first!r} and images[{i}] {name!r} name '
                            f'one image ({norm}); list each test image once')
        seen[norm] = (i, name)
    return names


def read_sample_pairs(path: str, fmt: SubmissionFormat) -> List[Tuple[int, str, str]]:
    """``(line, file_name, class)`` rows of a sample submission (first two columns).

    A row twice is refused, judged by the class it means: in a format with a fixed class
    list, ``1``, ``01`` and ``container_truck`` are one class
    (:func:`class_from_sample`)."""
    pairs = []
    seen: Dict[Tuple[str, object], Tuple[int, str]] = {}
    for line, fields in iter_csv(path):
        named = [f.strip() for f in fields]
        if line == 1 and named and named[0] != fmt.header[0] and \
                set(named[:len(fmt.header)]) == set(fmt.header[:len(named)]) and \
                len(named) >= 2:
            raise DataError(f'{path}:1: the header is {",".join(fields)!r}: the columns '
                            f'of {",".join(fmt.header)!r} in another order (the columns '
                            'are read by position)')
        if line == 1 and fields and fields[0] == fmt.header[0]:
            if list(fields[:2]) != list(fmt.header[:2]):
                raise DataError(f'{path}:1: the header starts {",".join(fields[:2])}, '
                                f'expected {",".join(fmt.header[:2])} (the columns are read '
                                'by position)')
            continue
        if len(fields) < 2:
            raise DataError(f'{path}:{line}: {len(fields)} field(s), expected at least 2')
        cls: object = fields[1]
        if not fmt.any_classes:
            cls = class_from_sample(fields[1], fmt.classes, f'{path}:{line}')
        key = (fields[0], cls)
        if key in seen:
            first, text = seen[key]
            same = '' if text == fields[1] else f', there as {text!r}'
            raise DataError(f'{path}:{line}: ({fields[0]}, {fields[1]}) already on line '
                            f'{first}{same}; a submission has one row per image and class')
        seen[key] = (line, fields[1])
        pairs.append((line, fields[0], fields[1]))
    if not pairs:
        raise DataError(f'{path}: no rows')
    return pairs


def class_from_sample(value: str, classes: Sequence[str], where: str) -> int:
    """Class index of a sample file's class field (a class name or an index)."""
    if value in classes:
        return classes.index(value)
    if value.isascii() and value.isdigit() and len(value) < 10 and int(value) < len(classes):
        return int(value)
    raise DataError(f'{where}: unknown class {value!r} (classes: {list(classes)})')


#: the suffixes of a class-list file: a value ending so names a file, never a class
CLASS_FILE_SUFFIXES = ('.txt', '.json', '.csv', '.lst')


def read_class_list(spec: str, argument: str = 'classes') -> Tuple[str, ...]:
    """A class list from a probability folder (its classes), a file (one name a line,
    ``#`` lines being comments as in every list file, or a JSON list of names) or
    comma-separated names.

    A value without a comma that names no file but reads as a path (it holds a ``/`` or
    ends like a list file) is refused as not found rather than taken for one class; a
    value with a comma that names no file is a comma list, so class names may hold
    ``/`` (``lung/left,lung/right``). A comma list that breaks the class-name rule is an
    :class:`InvalidArgumentError` of ``argument``.
    """
    if osp.isdir(spec):
        return ProbFolder(spec).classes
    if osp.lexists(spec):
        names = [line for _, line in read_lines(spec, 'class list', comments=True)]
        text = '\n'.join(names)
        if text.startswith('['):
            names = loads_json(read_text(spec, 'class list'), spec)
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise DataError(f'{spec}: expected one class name a line or a JSON list of names')
        return check_class_names(names, spec)
    if ',' not in spec and ('/' in spec or os.sep in spec or
                            spec.lower().endswith(CLASS_FILE_SUFFIXES)):
        raise InvalidArgumentError(argument, f'{spec}: no such file or folder (a class '
                                   'list is a probability folder, a file, or a,b,c)')
    names = [n.strip() for n in spec.split(',')]  # an empty name is refused, not dropped
    return check_class_names_argument(names, argument)
