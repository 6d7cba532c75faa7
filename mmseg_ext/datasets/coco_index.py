"""Read a COCO annotation file into per-image records ready for semantic masks.

One record per image, in the file's image order::

    {'image_id': int, 'file_name': str, 'height': int, 'width': int,
     'coco_anns': [{'id': int, 'label': int, 'spans': ndarray}, ...]}  # drawing order

``label`` is the class index (by category *name* through the class list; background
is index 0) or the ignore index for crowd regions with ``iscrowd='ignore'``; ``spans``
is the annotation's foreground as ``(P, 3)`` int16 (int32 past 32766 px) vertical runs
``(column, row_start, row_stop)``, decoded from pycocotools' run-length encoding at the
image's full size (:mod:`mmseg_ext.datasets.coco_rle`): a few hundred bytes each.
Records are plain and picklable, so mmengine's ``serialize_data`` packs them, and masks
are painted per sample.

Drawing orders (where annotations overlap, the one painted later wins):

``'file'``
    the annotations' order in the file.
``'area_desc'``
    largest first, so smaller objects stay on top. The area is the annotation's
    ``'area'`` field; when it is absent, the pixel count of its mask.
``'polygon_length'``
    the recycling-trash baseline: ascending ``len(segmentation[0])``, the number of
    *coordinates* (2 per point) of the annotation's *first* polygon, so annotations
    whose first polygon has more points are painted later (on top). An RLE
    segmentation has no polygon and gets length 0 (painted first).

All sorts are stable: ties keep the file order.
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from ..io.images import check_label_capacity
from ..utils.class_names import class_name_problem
from ..utils.errors import DataError, DataFileError
from ..utils.readers import read_json, read_lines
from ..utils.tally import Tally
from .coco_rle import DegeneratePolygonError, check_image_size, encode_segmentation, rle_to_spans

DRAW_ORDERS = ('file', 'area_desc', 'polygon_length')
ISCROWD_MODES = ('paint', 'ignore', 'skip')
ON_BAD = ('raise', 'skip')


class CocoFormatError(DataError):
    """A COCO file, image or annotation the data set cannot use.

    The message names the file, the image and the annotation id in one line. It is a
    :class:`~mmseg_ext.utils.errors.DataError`, so the tools print it without a traceback.
    """


class SkipReport(Tally):
    """Counts of what ``on_bad='skip'`` dropped, by reason, with the first message."""

    def __init__(self) -> None:
        self.counts: Counter = Counter()
        self.first: Dict[str, str] = {}

    def add(self, reason: str, message: str) -> None:
        self.counts[reason] += 1
        self.first.setdefault(reason, message)

    def summary(self) -> str:
        """One line, e.g. ``skipped 3: 2 x unknown class, 1 x degenerate polygon``."""
        if not self.counts:
            return 'skipped nothing'
        parts = self.listing(lambda reason, n: f'{n} x {reason}')
        first = '; '.join(f'first {reason}: {msg}' for reason, msg in
                          sorted(self.first.items()))
        return f'skipped {self.total}: {parts} ({first})'


def check_option(name: str, value: Any, allowed: Sequence[str]) -> None:
    """Raise a :class:`DataError` naming ``name`` when ``value`` is not in ``allowed``."""
    if value not in allowed:
        raise DataError(f'{name} must be one of {list(allowed)}, got {value!r}')


def _is_id(value: Any) -> bool:
    """A COCO id: a whole number or a text (never a bool, a float, a list...)."""
    return (isinstance(value, int) and not isinstance(value, bool)) or isinstance(value, str)


def check_coco_structure(coco: Any, path: str) -> None:
    """The shape every reader of a COCO dict relies on, checked once where it is loaded:
    ``images``, ``annotations`` and ``categories`` are lists of objects; an image has an
    ``id`` and a text ``file_name``; an annotation names an ``image_id`` and a
    ``category_id``; a category has an ``id`` and a text ``name``. Ids are whole numbers
    or text.

    Raises:
        CocoFormatError: naming the file and the first entry that is not so.
    """
    if not isinstance(coco, dict) or not isinstance(coco.get('images'), list):
        raise CocoFormatError(f'{path}: not a COCO file (no "images" list)')
    for key in ('annotations', 'categories'):
        if not isinstance(coco.get(key, []), list):
            raise CocoFormatError(f'{path}: "{key}" is not a list')
    for i, img in enumerate(coco['images']):
        if not isinstance(img, dict):
            raise CocoFormatError(f'{path}: images[{i}] is {str(img)[:40]!r}, not an object')
        if not _is_id(img.get('id')):
            raise CocoFormatError(f'{path}: images[{i}]: "id" is {img.get("id")!r}; an id is '
                                  'a whole number or text')
        if not isinstance(img.get('file_name'), str):
            raise CocoFormatError(f'{path}: image id {img["id"]}: "file_name" is '
                                  f'{img.get("file_name")!r}, not text')
    for i, ann in enumerate(coco.get('annotations', [])):
        if not isinstance(ann, dict):
            raise CocoFormatError(f'{path}: annotations[{i}] is {str(ann)[:40]!r}, not an '
                                  'object')
        for key in ('image_id', 'category_id'):
            if not _is_id(ann.get(key)):
                raise CocoFormatError(f'{path}: annotation {ann.get("id", f"[{i}]")}: '
                                      f'"{key}" is {ann.get(key)!r}; an id is a whole '
                                      'number or text')
    for i, cat in enumerate(coco.get('categories', [])):
        if not isinstance(cat, dict) or not _is_id(cat.get('id')) \
                or not isinstance(cat.get('name'), str):
            raise CocoFormatError(f'{path}: categories[{i}] is {str(cat)[:60]!r}; a '
                                  'category has an "id" (a whole number or text) and a '
                                  'text "name"')


def load_coco_json(path: str) -> dict:
    """Load a COCO annotation file (:func:`check_coco_structure`); one-line
    :class:`CocoFormatError` when unusable."""
    try:
        coco = read_json(path, 'annotation file')
    except DataFileError as exc:
        raise CocoFormatError(str(exc)) from None
    check_coco_structure(coco, path)
    return coco


def check_categories(coco: dict, source: str, background_name: Optional[str]) -> Dict[int, str]:
    """The file's categories as ``{id: name}``, refused unless each has a whole-number
    id and a usable name, ids and names are distinct, and no category takes the
    background's name.

    The one rule for category names (``CocoSemanticDataset`` and ``coco_to_masks``):
    a name follows :func:`~mmseg_ext.utils.class_names.class_name_problem` (non-empty,
    no control characters, no white space at either end); two categories of one name
    would silently join one class; a category named ``background_name`` would be
    painted as class 0, the "no annotation" value, while counted as painted.

    Raises:
        CocoFormatError: naming ``source``, the category id and name.
    """
    name_of: Dict[int, str] = {}
    id_of: Dict[str, int] = {}
    for cat in coco.get('categories', []):
        if not isinstance(cat, dict) or 'id' not in cat or 'name' not in cat:
            raise CocoFormatError(f'{source}: category without "id" and "name": {cat!r}')
        if isinstance(cat['id'], bool) or not isinstance(cat['id'], int) \
                or not isinstance(cat['name'], str):
            raise CocoFormatError(f'{source}: category {cat!r}: "id" must be a whole number '
                                  'and "name" text')
        cat_id, name = cat['id'], cat['name']
        if cat_id in name_of:
            raise CocoFormatError(f'{source}: category id {cat_id} appears twice')
        problem = class_name_problem(name)
        if problem:
            raise CocoFormatError(f'{source}: category {cat_id}: {problem}')
        if name in id_of:  # its annotations would silently join one class
            raise CocoFormatError(f'{source}: categories {id_of[name]} and {cat_id} are both '
                                  f'named {name!r}')
        if name == background_name:
            raise CocoFormatError(
                f'{source}: category {cat_id} is named {name!r}, the name of the background '
                '(class 0, where no annotation is): its annotations would be painted as '
                'background; rename the category or choose another background name')
        id_of[name] = cat_id
        name_of[cat_id] = name
    return name_of


def class_index_of_categories(coco: dict, classes: Sequence[str],
                              source: str) -> Tuple[Dict[int, int], Dict[int, str]]:
    """Map category id -> class index by category name (the categories checked by
    :func:`check_categories`, ``classes[0]`` being the background).

    Returns ``(index_of, name_of)``: ``index_of`` holds only the categories whose
    name is in ``classes``; ``name_of`` every category. Category ids are never taken as
    class indices (real files have id 0 and gaps).
    """
    position = {name: i for i, name in enumerate(classes)}
    name_of = check_categories(coco, source, classes[0])
    index_of = {cat_id: position[name] for cat_id, name in name_of.items()
                if name in position}
    return index_of, name_of


def _size(value: Any) -> Optional[int]:
    """A positive integer size (``454`` or ``454.0``), else ``None``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value):
        return None
    if value != int(value) or value <= 0:
        return None
    return int(value)


def _image_records(coco: dict, source: str) -> Tuple[List[dict], Dict[Any, dict]]:
    records: List[dict] = []
    by_id: Dict[Any, dict] = {}
    for img in coco['images']:
        if not isinstance(img, dict) or not {'id', 'file_name'} <= set(img):
            raise CocoFormatError(f'{source}: image entry without "id" and "file_name": '
                                  f'{str(img)[:80]}')
        if img['id'] in by_id:
            raise CocoFormatError(f"{source}: image id {img['id']} appears twice "
                                  f"('{by_id[img['id']]['file_name']}', "
                                  f"'{img['file_name']}')")
        height, width = _size(img.get('height')), _size(img.get('width'))
        if height is None or width is None:
            raise CocoFormatError(f"{source}: image '{img['file_name']}' (id {img['id']}) "
                                  'has no positive integer "height" and "width"')
        try:
            check_image_size(height, width)
        except DataError as exc:
            raise CocoFormatError(f"{source}: image '{img['file_name']}' (id {img['id']}): "
                                  f'{exc}') from None
        record = dict(image_id=img['id'], file_name=img['file_name'], height=height,
                      width=width, coco_anns=[])
        records.append(record)
        by_id[img['id']] = record
    return records, by_id


def check_recorded_size(path: str, record: dict) -> None:
    """The image file ``path`` has the size its COCO record says.

    Raises:
        CocoFormatError: the file is missing, or its size (upright, as the loader decodes
            it) is not the record's ``width`` x ``height``.
    """
    import os.path as osp

    from ..io.images import image_size
    if not osp.lexists(path):
        raise CocoFormatError(f"{path}: image file not found (image id {record['image_id']})")
    height, width = image_size(path)
    if (height, width) != (record['height'], record['width']):
        raise CocoFormatError(f"{path}: image is {width}x{height} (width x height, "
                              "after its EXIF orientation if any) but the "
                              f"annotation file says {record['width']}x{record['height']} "
                              f"(image id {record['image_id']})")


def recorded_size_check(img_dir: str, source: str) -> Callable[[dict], None]:
    """``check_file`` for :func:`index_coco`: the file of a record under ``img_dir`` has
    the size the record says (:func:`check_recorded_size`); a missing file is left to
    whoever lists the images."""
    import os.path as osp

    from ..io.paths import data_relpath

    def check(record: dict) -> None:
        rel = data_relpath(record['file_name'], f"{source}: image id "
                           f"{record.get('image_id')} file_name", img_dir)
        path = osp.join(img_dir, rel)
        if osp.lexists(path):
            check_recorded_size(path, record)
    return check


def index_coco(coco: dict, classes: Sequence[str], source: str = '<coco>', *,
               draw_order: str = 'area_desc', iscrowd: str = 'paint',
               on_bad: str = 'raise',
               ignore_index: int = 255,
               check_file: Optional[Callable[[dict], None]] = None
               ) -> Tuple[List[dict], SkipReport]:
    """Validate a loaded COCO dict and turn it into per-image records (module doc).

    Args:
        coco: the parsed annotation file (``images``, optional ``annotations`` and
            ``categories``); a file with images only gives records without annotations.
        classes: class names, index = pixel value; index 0 is the background.
        source: the file name, used in messages.
        draw_order: ``'file'``, ``'area_desc'`` or ``'polygon_length'`` (module doc).
        iscrowd: annotations with ``iscrowd=1`` are ``'paint'``-ed as their class,
            painted as ``ignore_index`` (``'ignore'``), or dropped (``'skip'``). An
            ignored crowd region takes its place in the drawing order like any other
            annotation (an object drawn later covers it).
        on_bad: ``'raise'`` stops at the first bad annotation with a
            :class:`CocoFormatError` naming file, image and annotation id; ``'skip'``
            drops it (degenerate polygons alone are dropped from a multi-polygon
            annotation) and counts it in the returned :class:`SkipReport`.
        ignore_index: pixel value of ignored crowd regions.
        check_file: called with an image's record before one of its annotations is
            reported as covering no pixel of it; raises when the image file's size is
            not the one the file records (:func:`check_recorded_size`), the real cause
            then (a wrong ``width`` puts every polygon outside the image).

    Returns:
        ``(records, report)``.
    """
    check_option('draw_order', draw_order, DRAW_ORDERS)
    check_option('iscrowd', iscrowd, ISCROWD_MODES)
    check_option('on_bad', on_bad, ON_BAD)
    records, by_id = _image_records(coco, source)
    check_label_capacity(classes, ignore_index, source)
    index_of, name_of = class_index_of_categories(coco, classes, source)
    report = SkipReport()
    keys: Dict[Any, List[Tuple[float, int]]] = {r['image_id']: [] for r in records}

    def bad(reason: str, message: str) -> None:
        if on_bad == 'raise':
            raise CocoFormatError(message)
        report.add(reason, message)

    for ann in coco.get('annotations', []):
        ann_id = ann.get('id') if isinstance(ann, dict) else None
        if not isinstance(ann, dict) or ann.get('image_id') not in by_id:
            image_id = ann.get('image_id') if isinstance(ann, dict) else None
            bad('unknown image', f'{source}: annotation {ann_id}: image_id {image_id!r} is '
                f'not in "images"{id_type_hint(image_id, by_id, "image")}')
            continue
        record = by_id[ann['image_id']]
        where = (f"{source}: image '{record['file_name']}' (id {record['image_id']}), "
                 f'annotation {ann_id}')
        crowd = ann.get('iscrowd', 0)
        if type(crowd) is not int or crowd not in (0, 1):  # noqa: E721 (True is no 1)
            bad('bad iscrowd', f'{where}: iscrowd is {crowd!r}, expected 0 or 1')
            continue
        if crowd and iscrowd == 'skip':
            continue
        category = ann.get('category_id')
        problem = _category_problem(category, index_of, name_of, classes, where)
        if problem:
            bad(*problem)
            continue
        segmentation = ann.get('segmentation')
        try:
            rle, dropped = encode_segmentation(segmentation, record['height'], record['width'],
                                               drop_degenerate=on_bad == 'skip')
        except ValueError as exc:
            reason = 'degenerate polygon' if isinstance(exc, DegeneratePolygonError) \
                else 'bad segmentation'
            bad(reason, f'{where}: {exc}')
            continue
        for _ in range(dropped):
            report.add('degenerate polygon', f'{where}: polygon with fewer than 3 points')
        if not rle:
            continue
        label = ignore_index if crowd and iscrowd == 'ignore' else index_of[category]
        spans = rle_to_spans(rle, record['height'])
        if not len(spans):  # e.g. a polygon outside the image: it would paint nothing
            if check_file is not None:
                check_file(record)
            bad('no pixel', f"{where}: covers no pixel of the {record['width']}x"
                f"{record['height']} image{_extent(segmentation)}")
            continue
        record['coco_anns'].append(dict(id=ann_id, label=label, spans=spans))
        keys[record['image_id']].append(
            (_order_key(draw_order, ann, segmentation, spans), len(keys[record['image_id']])))
    _sort_in_draw_order(records, keys)
    return records, report


def _extent(segmentation: Any) -> str:
    """`` (points x a..b, y c..d)`` of a polygon segmentation, else empty."""
    try:
        points = np.concatenate([np.asarray(p, float).reshape(-1, 2) for p in segmentation])
    except (TypeError, ValueError):
        return ''
    if not points.size:
        return ''
    (x0, y0), (x1, y1) = points.min(0), points.max(0)
    return f' (points x {x0:g}..{x1:g}, y {y0:g}..{y1:g})'


def id_type_hint(value: Any, known: Iterable[Any], what: str) -> str:
    """`` (the <what> id 1 there is a number, this one text)`` when ``value``, an id
    that is not among ``known``, reads as one of them but is of another JSON type (the
    text ``"1"`` for the number 1, or the reverse); ``''`` otherwise. Every COCO id
    reference that misses (an annotation's ``image_id`` and ``category_id``) says so,
    rather than "not in" beside an id that the reader sees there."""
    if isinstance(value, bool):
        return ''
    alike = [k for k in known if not isinstance(k, bool) and str(k) == str(value)]
    if not alike:
        return ''
    kind = {int: 'a number', str: 'text'}
    return (f' (the {what} id {alike[0]!r} there is '
            f'{kind.get(type(alike[0]), type(alike[0]).__name__)}, this one '
            f'{kind.get(type(value), type(value).__name__)})')


def _category_problem(category: Any, index_of: Dict[Any, int], name_of: Dict[Any, str],
                      classes: Sequence[str], where: str) -> Optional[Tuple[str, str]]:
    """``(reason, message)`` when an annotation's ``category`` id is not in the file's
    ``categories`` or its name is not in ``classes``; None when it names a class."""
    if category not in name_of:
        return 'unknown category', (f'{where}: category_id {category!r} is not in '
                                    f'"categories"{id_type_hint(category, name_of, "category")}')
    if category not in index_of:
        return ('category not in classes', f"{where}: category '{name_of[category]}' "
                f'(id {category}) is not in the class list {list(classes)}')
    return None


def _sort_in_draw_order(records: List[dict], keys: Dict[Any, List[Tuple[float, int]]]
                        ) -> None:
    """Sort each record's ``coco_anns`` (in place) by their ``(order key, file
    position)`` in ``keys[image_id]``: stable, ties keep the file order."""
    for record in records:
        order = sorted(range(len(record['coco_anns'])),
                       key=lambda i, k=keys[record['image_id']]: k[i])
        record['coco_anns'] = [record['coco_anns'][i] for i in order]


def _order_key(draw_order: str, ann: dict, segmentation: Any, spans: np.ndarray) -> float:
    if draw_order == 'file':
        return 0.0
    if draw_order == 'area_desc':
        area = ann.get('area')
        if not isinstance(area, (int, float)) or isinstance(area, bool):
            area = int((spans[:, 2] - spans[:, 1]).sum())       # pixel count
        return -float(area)
    # polygon_length: len(segmentation[0]) as the baseline sorted; RLE -> 0
    return float(len(segmentation[0])) if isinstance(segmentation, list) else 0.0


def read_name_list(path: str) -> List[str]:
    """Non-empty, stripped lines of a text file (an image-list / split file)."""
    try:
        return [line for _, line in read_lines(path, 'split file')]
    except DataFileError as exc:
        raise CocoFormatError(str(exc)) from None


def select_records(records: List[dict], names: Sequence[str], source: str,
                   list_file: str) -> List[dict]:
    """Records of the listed file names, in the list's order."""
    by_name: Dict[str, dict] = {r['file_name']: r for r in records}
    chosen = []
    for i, name in enumerate(names, 1):
        if name not in by_name:
            raise CocoFormatError(f"{list_file}: line {i}: '{name}' is not an image of "
                                  f'{source}')
        chosen.append(by_name[name])
    return chosen


def image_only_records(names: Sequence[str]) -> List[dict]:
    """Records for images without an annotation file (a test split): size unknown."""
    return [dict(image_id=None, file_name=name, height=None, width=None, coco_anns=[])
            for name in names]
