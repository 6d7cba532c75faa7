"""Validate a submission CSV before upload (``tools/make_submission.py --check``).

Every problem is reported as ``FILE:LINE: what`` (``FILE: what`` for file-level
problems). Errors are what a grader would reject or score wrongly; warnings are
deviations from the baselines' output that graders are not known to reject (row order
within an image, touching RLE runs).

Checks, by format:

* all: the header; the number of fields per row; every expected (image, class) exactly
  once; the row count; images that are not in the test set.
* ``handbone`` / ``port``: class names; RLE syntax (non-negative integers, an even
  count), runs sorted and non-overlapping, starts >= the index base, lengths >= 1, and
  the last run inside the image (sizes read from the image headers in ``--img-dir``).
* ``trash``: 65,536 integers per row, each a class id in 0..10; rows in ``test.json``
  order when it is given.
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from ..io.images import image_sizes_by_name, list_images
from ..io.rle import RLEError, parse_rle
from ..io.submission import (
    TRASH_OUT_SIZE,
    SubmissionFormat,
    check_row_sources,
    get_format,
    iter_csv,
    read_sample_pairs,
    read_test_json,
)
from ..utils.class_names import class_name_problem
from ..utils.errors import InvalidArgumentError
from ..utils.readers import check_regular_file

_INT_LIST = re.compile(r'\d+(?: \d+)*')


@dataclass
class CheckReport:
    """Problems found in one submission file."""
    path: str
    rows: int = 0
    has_header: bool = False
    errors: List[str] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)
    #: the class list the rows were checked against, in words (hand-bone layout)
    classes_used: str = ''

    def error(self, line: Optional[int], what: str) -> None:
        self.errors.append(f'{self.path}:{line}: {what}' if line else f'{self.path}: {what}')

    def warn(self, line: Optional[int], what: str) -> None:
        self.warnings.append(f'{self.path}:{line}: {what}' if line
                             else f'{self.path}: {what}')

    @property
    def ok(self) -> bool:
        return not self.errors


def check_submission(path: str, fmt_name: str, img_dir: Optional[str] = None,
                     test_json: Optional[str] = None, sample: Optional[str] = None,
                     classes: Optional[Sequence[str]] = None,
                     progress: bool = False) -> CheckReport:
    """Check ``path`` against the ``fmt_name`` format; see the module docstring.

    Args:
        img_dir: the test images (recursive). Needed for ``handbone`` and ``port`` (the
            image list and sizes); for ``trash`` it gives the image list when
            ``test_json`` is absent.
        test_json: trash: COCO json whose ``images`` give the expected rows and order.
        sample: port: sample submission whose (file_name, class) rows are expected.
        classes: hand-bone layout: the expected classes, in row order (the 29
            competition classes, those of a probability folder, or another list);
            default: the classes the CSV itself carries (:func:`carried_classes`),
            which every image must then have, as the writer writes the probability
            folder's classes for every image. When that list is not the format's own
            but shares at least half of its classes (a competition CSV with a class
            misspelt or rows reordered in every image, rather than a CSV of another
            class list), a name that is not a class of the format is an error
            (on the first line that has it) and a row-order difference a warning
            naming the first line that differs from the format's list.
        progress: show a progress bar over the rows.
    """
    fmt = get_format(fmt_name)
    check_row_sources(fmt, test_json, sample)
    check_regular_file(path, 'CSV file')  # a folder or FIFO is named as what it is
    if fmt.rle is None:
        if test_json is not None:
            expected = read_test_json(test_json)
        elif img_dir is not None:
            expected = list_images(img_dir)
        else:
            raise InvalidArgumentError('test_json', 'checking a trash submission needs the '
                                       'test COCO json or the test image folder')
        report = _check_trash(path, fmt, expected, ordered=test_json is not None,
                              progress=progress)
        _file_form_warnings(report, path)
        return report
    if img_dir is None:
        raise InvalidArgumentError('img_dir', f'checking a {fmt.name} submission needs the '
                                   'test images (their names and sizes)')
    used = ''
    own_list_warning: Optional[Tuple[Optional[int], str]] = None
    if fmt.any_classes:
        if classes is None:
            classes = carried_classes(path, prefer=fmt.row_classes)
            used = (f'the {len(classes)} classes the CSV carries' if classes else
                    f'the {len(fmt.row_classes)} {fmt.name} classes (the CSV has no rows to '
                    'carry its own)')
            own_list_warning = _own_list_difference(path, fmt, classes)
        else:
            used = f'{len(classes)} given classes'
        if classes:
            fmt = fmt.with_classes(classes)
    sizes = image_sizes_by_name(img_dir, 'basename')
    pairs = None
    if sample is not None:
        pairs = [(name, cls) for _, name, cls in read_sample_pairs(sample, fmt)]
    if fmt.any_classes and used.endswith('given classes'):
        per_image = image_class_lists(path)
        expected = set(fmt.row_classes)
        # another class list altogether (no image has even half of the expected
        # classes): one line, not an error on every row
        other_list = all(2 * len(set(c) & expected) < len(expected)
                         for c in per_image.values())
        mismatch = class_list_mismatch(carried_classes(path), fmt.row_classes) \
            if per_image and other_list else ''
        if mismatch:
            report = CheckReport(path, rows=sum(1 for line, _ in iter_csv(path) if line > 1),
                                 has_header=True, classes_used=used)
            report.error(None, mismatch)
            return report
    report = _check_rle(path, fmt, sizes, pairs, progress)
    report.classes_used = used
    _file_form_warnings(report, path)
    if own_list_warning is not None and report.has_header:
        line, what, is_error = own_list_warning
        (report.error if is_error else report.warn)(line, what)
    return report


def _own_list_difference(path: str, fmt: SubmissionFormat, carried: Sequence[str]
                         ) -> Optional[Tuple[Optional[int], str, bool]]:
    """``(line, problem, is_error)`` when the classes a hand-bone layout CSV carries
    are not the format's own list but share at least half of it (so the CSV is meant
    for the format's list: a CSV of another class list altogether is checked quietly
    against its own); ``None`` otherwise.

    A carried name that is not a class of the format (``ulna`` for ``Ulna``) is an
    error on the first row that has it: a grader expecting the format's list would
    score that class as missing on every image. Otherwise (the format's classes in
    another row order, or some of them left out) a warning names the first row whose
    class differs from the format's class at that row's place within its image."""
    own = tuple(fmt.row_classes)
    if not carried or tuple(carried) == own or 2 * len(set(carried) & set(own)) < len(own):
        return None
    unknown = [c for c in carried if c not in set(own)]
    if unknown:
        return _not_a_format_class(path, fmt, unknown[0])
    tail = (f'(the CSV carries {len(carried)} classes that are not the {len(own)} '
            f'{fmt.name} classes in order; its rows were checked against its own list)')
    place: Dict[str, int] = defaultdict(int)
    last: Dict[str, int] = {}
    for line, fields in iter_csv(path):
        if line == 1 or len(fields) < 2:
            continue
        k = place[fields[0]]
        place[fields[0]] += 1
        last[fields[0]] = line
        if k >= len(own):
            return line, (f'image {fields[0]} has more than the {len(own)} {fmt.name} '
                          f'classes {tail}'), False
        if fields[1] != own[k]:
            return line, (f'class {fields[1]!r} where the {fmt.name} format has {own[k]!r} '
                          f'{tail}'), False
    # every row agrees with the format's list: the images end early; name the last row
    # of the first image that does
    image = next((img for img, n in place.items() if n < len(own)), None)
    if image is None:
        return None, f'the rows differ from the {fmt.name} classes {tail}', False
    return last[image], (f'image {image} ends after {place[image]} classes, the '
                         f'{fmt.name} format has {len(own)} {tail}'), False


def _not_a_format_class(path: str, fmt: SubmissionFormat, name: str
                        ) -> Tuple[Optional[int], str, bool]:
    """The error of a carried class ``name`` that is not a class of ``fmt``, on the
    first row that has it, with the format's class it most likely means."""
    import difflib
    own = tuple(fmt.row_classes)
    near = [c for c in own if c.lower() == name.lower()] or \
        difflib.get_close_matches(name, own, n=1)
    hint = f' (the format has {near[0]!r})' if near else ''
    line = next((ln for ln, fields in iter_csv(path)
                 if ln > 1 and len(fields) >= 2 and fields[1] == name), None)
    return line, (f'class {name!r} is not a {fmt.name} class{hint}: a grader expecting '
                  f'the {len(own)} {fmt.name} classes would score that class as missing '
                  'on every image'), True


def class_list_mismatch(carried: Sequence[str], expected: Sequence[str]) -> str:
    """One line saying how the classes a CSV carries differ from the expected list
    (``''`` when they are the same set; order is checked row by row)."""
    missing = [c for c in expected if c not in set(carried)]
    unknown = [c for c in carried if c not in set(expected)]
    if not carried or (not missing and not unknown):
        return ''

    def some(names: Sequence[str]) -> str:
        return ', '.join(names[:3]) + (', ...' if len(names) > 3 else '')

    parts = []
    if missing:
        parts.append(f'{len(missing)} missing ({some(missing)})')
    if unknown:
        parts.append(f'{len(unknown)} not expected ({some(unknown)})')
    return (f'the CSV carries {len(carried)} classes, not the {len(expected)} expected: '
            f'{"; ".join(parts)}')


def image_class_lists(path: str) -> Dict[str, List[str]]:
    """Each image of a hand-bone layout CSV -> its classes in row order."""
    per_image: Dict[str, List[str]] = {}
    for line, fields in iter_csv(path):
        if line == 1 or len(fields) < 2:
            continue
        classes = per_image.setdefault(fields[0], [])
        if fields[1] not in classes:
            classes.append(fields[1])
    return per_image


def carried_classes(path: str, prefer: Sequence[str] = ()) -> Tuple[str, ...]:
    """The class list a hand-bone layout CSV carries: the list of classes (in row order)
    that most of its images have; ``()`` for a CSV without rows. One image with a
    misspelt or missing class then shows as that image's error.

    A tie (two images, each with its own list) is broken by evidence outside the
    image order, never by which image comes first, since a bad first image would
    otherwise become the reference and the good images be blamed: first the list that
    is ``prefer`` (the format's own classes in order), then the list with the most
    classes of ``prefer``, then the one with the fewest names that break the
    class-name rule, then the longest (a row left out is likelier than a row made up),
    and only then the earliest image's.

    Names that break the class-name rule (white space at an end, a control character,
    an empty name) are left out of the list: each row that holds one is an error on
    its own line, not a list that every other row is measured against."""
    from collections import Counter
    per_image = image_class_lists(path)
    if not per_image:
        return ()
    counts = Counter(tuple(c) for c in per_image.values())  # in order of first image
    prefer = tuple(prefer)
    known = set(prefer)
    chosen = max(counts, key=lambda lst: (
        counts[lst], lst == prefer, len(known.intersection(lst)),
        -sum(1 for c in lst if class_name_problem(c)), len(lst)))
    return tuple(c for c in chosen if not class_name_problem(c))


def _check_header(report: CheckReport, fields: List[str], fmt: SubmissionFormat) -> None:
    if tuple(fields) != fmt.header:
        report.error(1, f'header is {",".join(fields)!r}, expected {",".join(fmt.header)!r}')


def _file_form_warnings(report: CheckReport, path: str) -> None:
    """Warn about a file form that the reader accepts but the writers never produce and
    a grader may not: a UTF-8 byte-order mark, and line ends that are a lone CR."""
    with open(path, 'rb') as f:
        head = f.read(3)
        f.seek(0)
        lone_cr = False
        previous = b''
        for block in iter(lambda: f.read(1 << 20), b''):
            text = previous + block
            # a CR at the end of a block is judged with the next block's first byte
            body = text[:-1] if text.endswith(b'\r') else text
            if b'\r' in body.replace(b'\r\n', b''):
                lone_cr = True
                break
            previous = text[-1:] if text.endswith(b'\r') else b''
        if previous == b'\r':
            lone_cr = True
    if head == b'\xef\xbb\xbf':
        report.warn(1, 'the file starts with a UTF-8 byte-order mark (read the same, but '
                    'the writers write none and a grader may not accept it)')
    if lone_cr:
        report.warn(None, 'lines end with a lone CR (old Mac line ends; read the same, but '
                    'the writers end lines with LF and a grader may not accept it)')


def _data_rows(report: CheckReport, fmt: SubmissionFormat, total: int,
               progress: bool) -> Iterator[Tuple[int, List[str]]]:
    """The rows after the header that have the format's field count. The header, the
    row count, wrong field counts and an empty file are recorded in ``report``."""
    from tqdm import tqdm
    with tqdm(total=total, desc='check', unit='row', disable=not progress) as bar:
        for line, fields in iter_csv(report.path):
            if line == 1:
                report.has_header = True
                _check_header(report, fields, fmt)
                continue
            report.rows += 1
            bar.update(1)
            if len(fields) != len(fmt.header):
                report.error(line, f'{len(fields)} fields, expected {len(fmt.header)}')
                continue
            yield line, fields
    if not report.has_header:
        report.error(None, 'empty file (no header)')


def _check_rle(path: str, fmt: SubmissionFormat, sizes: Dict[str, Tuple[int, int]],
               pairs: Optional[List[Tuple[str, str]]], progress: bool) -> CheckReport:
    report = CheckReport(path)
    conv = fmt.rle
    if pairs is None:
        expected = [(img, c) for img in sorted(sizes) for c in fmt.row_classes]
        known_classes = set(fmt.row_classes)
    else:
        expected = pairs
        known_classes = {c for _, c in pairs}
    expected_set = set(expected)
    seen: Dict[Tuple[str, str], int] = {}
    order: Dict[str, List[Tuple[int, str]]] = defaultdict(list)
    for line, (image, cls, rle) in _data_rows(report, fmt, len(expected), progress):
        known = True
        problem = class_name_problem(cls)
        if problem:
            report.error(line, 'the class field is empty' if not cls else f'class {problem}')
            known = False
        elif cls not in known_classes:
            index = pairs is None and cls.isascii() and cls.isdigit() and len(cls) < 10 \
                and int(cls) < len(fmt.classes)
            report.error(line, f'unknown class {cls!r}' + (
                f' (the index of {fmt.classes[int(cls)]!r}, as a sample submission may '
                'spell it: check the file against its sample)' if index else ''))
            known = False
        if image not in sizes:
            report.error(line, f'image {image!r} is not a test image')
            known = False
        key = (image, cls)
        if key in seen:
            report.error(line, f'({image}, {cls}) already on line {seen[key]}')
            continue
        seen[key] = line
        if known and pairs is not None and key not in expected_set:
            report.error(line, f'({image}, {cls}) is not a row of the sample file')
        order[image].append((line, cls))
        h, w = sizes.get(image, (None, None))
        try:
            starts, lengths = parse_rle(rle, index_base=conv.index_base, empty=conv.empty,
                                        shape=(h, w) if h is not None else None)
        except RLEError as exc:
            report.error(line, f'rle: {exc}')
            continue
        if starts.size > 1 and np.any(starts[1:] == starts[:-1] + lengths[:-1]):
            report.warn(line, 'rle has touching runs (valid, but not what an encoder writes)')
        if rle != ' '.join(rle.split()):
            report.warn(line, 'rle has white space other than single spaces between '
                        'numbers (read the same, but not what an encoder writes)')
    if not report.has_header:
        return report
    missing_by_image: Dict[str, List[str]] = defaultdict(list)
    for image, cls in expected:
        if (image, cls) not in seen:
            missing_by_image[image].append(cls)
    per_image = defaultdict(int)
    for image, _ in expected:
        per_image[image] += 1
    for image, classes in missing_by_image.items():
        if len(classes) == per_image[image]:
            report.error(None, f'image {image}: no rows')
        else:
            report.error(None, f'image {image}: missing classes {classes}')
    if report.rows != len(expected):
        report.error(None, f'{report.rows} rows, expected {len(expected)}')
    if pairs is None:
        rank = {c: i for i, c in enumerate(fmt.row_classes)}
        for image, rows in order.items():
            lines = [ln for ln, _ in rows]
            # an unknown class is an error of its own line, not a row out of order
            ranks = [rank[c] for _, c in rows if c in rank]
            if lines != list(range(lines[0], lines[0] + len(lines))):
                report.warn(lines[0], f'rows of image {image} are not consecutive')
            elif ranks != sorted(ranks):
                report.warn(lines[0], f'rows of image {image} are not in class order')
    else:
        got = [k for k, _ in sorted(seen.items(), key=lambda kv: kv[1])]
        if [k for k in got if k in expected_set] != [k for k in expected if k in seen]:
            report.warn(None, 'rows are not in the sample file\'s order')
    return report


def _check_trash(path: str, fmt: SubmissionFormat, expected: List[str],
                 ordered: bool, progress: bool) -> CheckReport:
    report = CheckReport(path)
    n_pixels = TRASH_OUT_SIZE[0] * TRASH_OUT_SIZE[1]
    n_classes = len(fmt.classes)
    expected_set = set(expected)
    seen: Dict[str, int] = {}
    for line, (image, pred) in _data_rows(report, fmt, len(expected), progress):
        if image in seen:
            report.error(line, f'image {image} already on line {seen[image]}')
            continue
        seen[image] = line
        if image not in expected_set:
            report.error(line, f'image {image!r} is not a test image')
        if not _INT_LIST.fullmatch(pred):
            report.error(line, 'PredictionString is not space-separated non-negative '
                         'integers')
            continue
        count = pred.count(' ') + 1
        if count != n_pixels:
            report.error(line, f'PredictionString has {count} values, expected {n_pixels} '
                         f'({TRASH_OUT_SIZE[0]}x{TRASH_OUT_SIZE[1]})')
        # the widest token is the largest id: compared as text, never built as an int64
        # (a 30-digit id overflowed it)
        widest = max((t.lstrip('0') or '0' for t in pred.split()), key=lambda t: (len(t), t))
        if len(widest) > len(str(n_classes - 1)):
            report.error(line, f'class id {widest[:20]}{"..." if len(widest) > 20 else ""} '
                         f'in PredictionString (ids are 0..{n_classes - 1})')
            continue
        top = int(widest)
        if top >= n_classes:
            report.error(line, f'class id {top} in PredictionString (ids are 0..'
                         f'{n_classes - 1})')
    if not report.has_header:
        return report
    missing = [f for f in expected if f not in seen]
    for f in missing:
        report.error(None, f'image {f}: no row')
    if report.rows != len(expected):
        report.error(None, f'{report.rows} rows, expected {len(expected)}')
    if ordered and not missing:
        got = sorted(seen, key=seen.get)
        got = [g for g in got if g in expected_set]
        for i, (a, b) in enumerate(zip(got, expected)):
            if a != b:
                report.error(seen[a], f'row order differs from the test json: image {b} '
                             f'expected here (position {i + 1})')
                break
    return report
