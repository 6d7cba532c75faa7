"""COCO annotation file -> label PNGs, with the data set's drawing order (offline)."""
from __future__ import annotations

import json
import os.path as osp
from dataclasses import dataclass
from typing import List, Optional, Sequence

from tqdm import tqdm

from ..datasets.coco_index import (
    CocoFormatError,
    SkipReport,
    check_categories,
    check_recorded_size,
    index_coco,
    load_coco_json,
    recorded_size_check,
)
from ..datasets.coco_rle import rasterize
from ..io.atomic import atomic_write_text
from ..io.image_write import write_image
from ..io.paths import check_output_apart, data_relpath
from ..io.staged_dir import StagedDir
from ..utils.class_names import check_class_names_argument, class_name_problem
from ..utils.errors import DataError, InvalidArgumentError

#: Written last into the mask folder: what it was made from.
MARKER = 'masks.json'


@dataclass
class ConversionSummary:
    """What :func:`coco_to_masks` wrote."""

    images: int
    annotations: int
    empty_images: int
    skipped: SkipReport
    out_dir: str

    def line(self) -> str:
        skipped = f', {self.skipped.summary()}' if self.skipped.total else ''
        return (f'wrote {self.images} label maps ({self.annotations} annotations painted, '
                f'{self.empty_images} images without annotations{skipped}) to '
                f'{self.out_dir}')


def default_classes(coco: dict, background_name: str = 'Background',
                    source: str = '<coco>') -> List[str]:
    """``[background_name] + category names in category-id order``, the categories
    checked first (:func:`~mmseg_ext.datasets.coco_index.check_categories`: a category
    named ``background_name`` is refused, never merged into the background)."""
    name_of = check_categories(coco, source, background_name)
    return [background_name] + [name_of[cat_id] for cat_id in sorted(name_of)]


def mask_path(out_dir: str, file_name: str) -> str:
    """``out_dir/<file_name without extension>.png`` (sub-folders kept)."""
    return osp.join(out_dir, osp.splitext(file_name)[0] + '.png')


def coco_to_masks(ann_file: str, out_dir: str, classes: Optional[Sequence[str]] = None,
                  background_name: str = 'Background', draw_order: str = 'area_desc',
                  iscrowd: str = 'paint', on_bad: str = 'raise',
                  img_root: Optional[str] = None, force: bool = False,
                  progress: bool = True) -> ConversionSummary:
    """Write one uint8 label PNG per image of ``ann_file``.

    The PNG of image ``file_name`` is ``out_dir/<file_name stem>.png``: class indices
    (by category name through ``classes``; 0 background), 255 for crowd regions with
    ``iscrowd='ignore'``, painted exactly as ``CocoSemanticDataset`` +
    ``LoadCocoAnnotations`` paint them. The output is a pure function of the inputs, so
    rerunning with ``force=True`` rewrites identical files.

    Args:
        ann_file: COCO JSON.
        out_dir: output folder (created).
        classes: class names, background first (distinct, non-empty:
            :func:`~mmseg_ext.utils.class_names.check_class_names`); default:
            ``background_name`` then the category names in id order. A category named
            ``background_name`` is refused (it would be painted as background).
        background_name, draw_order, iscrowd, on_bad: as ``CocoSemanticDataset``.
        img_root: when given, each image is opened (header only) and its size checked
            against the JSON.
        force: replace an ``out_dir`` this function wrote before (it holds
            ``masks.json``); without it, a non-empty ``out_dir`` is an error. The
            masks are written into a hidden folder beside ``out_dir`` that becomes
            ``out_dir`` only when every mask is written.
        progress: show a progress bar.
    """
    check_output_apart(out_dir, [ann_file, img_root], 'out_dir')
    problem = class_name_problem(background_name)
    if problem:
        raise InvalidArgumentError('background_name', problem)
    if classes is not None:
        classes = list(check_class_names_argument(list(classes), 'classes'))
        if classes[0] != background_name:
            raise InvalidArgumentError('classes', f'the first class must be the background '
                                       f'{background_name!r}, got {classes[0]!r}')
    coco = load_coco_json(ann_file)
    if classes is None:
        classes = default_classes(coco, background_name, ann_file)
    records, report = index_coco(coco, classes, ann_file, draw_order=draw_order,
                                 iscrowd=iscrowd, on_bad=on_bad,
                                 check_file=recorded_size_check(img_root, ann_file)
                                 if img_root is not None else None)
    if not records:
        raise CocoFormatError(f'{ann_file}: lists no images; nothing to convert')
    for r in records:  # file names come from data: relative, inside the image root
        r['file_name'] = data_relpath(r['file_name'], f"{ann_file}: image id "
                                      f"{r.get('image_id')} file_name", img_root)
    targets = [mask_path('', r['file_name']) for r in records]
    first: dict = {}
    for r, target in zip(records, targets):
        if target in first:
            other = first[target]
            same = other['file_name'] == r['file_name']
            raise DataError(
                f"{ann_file}: images {other.get('image_id')} ({other['file_name']}) and "
                f"{r.get('image_id')} ({r['file_name']}) "
                + ('have the same file_name' if same else
                   f'map to the same mask file {target} (same name, other extension)'))
        first[target] = r
    painted = empty = 0
    with StagedDir(out_dir, force=force, marker=MARKER) as staged:
        for record, target in tqdm(list(zip(records, targets)), desc='coco -> masks',
                                   unit='img', disable=not progress):
            if img_root is not None:
                check_recorded_size(osp.join(img_root, record['file_name']), record)
            label = rasterize(record['coco_anns'], record['height'], record['width'])
            write_image(staged.file(target), label)
            painted += len(record['coco_anns'])
            empty += not record['coco_anns']
        atomic_write_text(staged.file(MARKER), json.dumps(dict(
            ann_file=ann_file, classes=list(classes), draw_order=draw_order,
            iscrowd=iscrowd, images=len(records)), indent=1))
        staged.commit()
    return ConversionSummary(len(records), painted, empty, report, out_dir)
