"""Semantic segmentation straight from a COCO annotation file (no offline PNG step)."""
from __future__ import annotations

import logging
import os.path as osp
from typing import List

from mmengine import fileio
from mmengine.logging import print_log
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from ..io.paths import data_relpath
from ..utils.class_names import class_list_problem
from ..utils.errors import ConfigError
from .coco_index import (
    DRAW_ORDERS,
    ISCROWD_MODES,
    ON_BAD,
    CocoFormatError,
    SkipReport,
    check_option,
    image_only_records,
    index_coco,
    load_coco_json,
    read_name_list,
    recorded_size_check,
    select_records,
)
from .image_named_failures import ImageNamedFailuresMixin


@DATASETS.register_module()
class CocoSemanticDataset(ImageNamedFailuresMixin, BaseSegDataset):
    """Images + a COCO annotation file (polygons or RLE) as a semantic data set.

    The data list holds, per image, its annotations as small arrays of pixel spans,
    decoded once from pycocotools' run-length encoding, in drawing order
    (:func:`~mmseg_ext.datasets.coco_index.index_coco`); the label map is painted per
    sample by the ``LoadCocoAnnotations`` transform, so memory does not grow with the
    number of masks. Layout (recycling-trash style)::

        data_root/train.json                 COCO: images, annotations, categories
        data_root/<img_path>/<file_name>     e.g. batch_01_vt/0024.jpg

    Classes are matched by category **name** against ``metainfo['classes']``, whose
    first entry is the background (``background_name``, pixel value 0); category ids
    are never used as pixel values. Pixels outside every annotation are background.

    Splits:

    - ``ann_file`` only: every image of the COCO file, in file order (a COCO file with
      images and no annotations is a valid test split: all-background masks).
    - ``ann_file`` + ``split_file``: only the images listed (one COCO ``file_name`` per
      line, e.g. written by ``tools/kfold.py``), in the list's order.
    - no ``ann_file`` (test split without annotations): the images listed in
      ``split_file``, or else every ``*img_suffix`` file under ``data_prefix.img_path``
      (sorted). Their size is taken from the image itself.

    Args:
        ann_file: COCO JSON, relative to ``data_root``; ``''`` for an image-only split.
        split_file: optional image list (see above), relative to ``data_root``.
        background_name: name of class 0; must equal ``metainfo['classes'][0]``.
        draw_order: ``'area_desc'`` (default: large objects first, small ones stay on
            top), ``'file'`` or ``'polygon_length'`` (the trash baseline); see
            :mod:`mmseg_ext.datasets.coco_index`.
        iscrowd: ``'paint'`` (default, as pycocotools' ``annToMask`` users did),
            ``'ignore'`` (paint ``ignore_index``) or ``'skip'``.
        on_bad: ``'raise'`` (default): the first bad annotation or missing image stops
            with one line naming file, image and annotation id. ``'skip'``: drop them,
            count them, and log one summary line (also in ``self.skip_report``).
        check_files: check at start-up that every image file exists.
        img_suffix: suffix of the images when a folder is listed.
        **kwargs: :class:`mmseg.datasets.BaseSegDataset` arguments (``metainfo``,
            ``data_root``, ``data_prefix=dict(img_path=...)``, ``pipeline``,
            ``test_mode``, ``indices``, ``filter_cfg=dict(filter_empty_gt=True)`` to
            drop training images without annotations, ...).

    Data info keys: ``img_path``, ``image_id``, ``file_name``, ``height``, ``width``
    (``None`` without an annotation file), ``coco_anns``, ``seg_map_path=None``,
    ``label_map``, ``reduce_zero_label``, ``seg_fields``.
    """

    METAINFO: dict = dict()

    def __init__(self, ann_file: str = '', split_file: str = '', *,
                 background_name: str = 'Background', draw_order: str = 'area_desc',
                 iscrowd: str = 'paint', on_bad: str = 'raise', check_files: bool = True,
                 img_suffix: str = '.jpg', **kwargs) -> None:
        check_option('draw_order', draw_order, DRAW_ORDERS)
        check_option('iscrowd', iscrowd, ISCROWD_MODES)
        check_option('on_bad', on_bad, ON_BAD)
        if kwargs.get('reduce_zero_label'):
            raise ConfigError('CocoSemanticDataset: reduce_zero_label must be False (the '
                             'background is class 0, painted where no annotation is)')
        self.split_file = split_file
        self.background_name = background_name
        self.draw_order = draw_order
        self.iscrowd = iscrowd
        self.on_bad = on_bad
        self.check_files = check_files
        self.skip_report = SkipReport()
        kwargs.setdefault('data_prefix', dict(img_path=''))
        super().__init__(ann_file=ann_file, img_suffix=img_suffix, **kwargs)

    def _join_prefix(self) -> None:
        super()._join_prefix()
        if self.split_file and not osp.isabs(self.split_file) and self.data_root:
            self.split_file = osp.join(self.data_root, self.split_file)

    def _classes(self) -> List[str]:
        classes = self._metainfo.get('classes')
        if not classes:
            raise ConfigError('CocoSemanticDataset needs metainfo=dict(classes=(...)) with '
                             f"the background first, e.g. ('{self.background_name}', ...)")
        problem = class_list_problem(list(classes))
        if problem:
            raise ConfigError(f'CocoSemanticDataset: metainfo classes: {problem}')
        if classes[0] != self.background_name:
            raise ConfigError(f'CocoSemanticDataset: classes[0] is {classes[0]!r}, but '
                             f'background_name is {self.background_name!r}; class 0 must '
                             'be the background')
        return list(classes)

    def load_data_list(self) -> List[dict]:
        """Index the COCO file (or the image list) into one data info per image."""
        classes = self._classes()
        img_dir = self.data_prefix.get('img_path', '') or ''
        if self.ann_file:
            coco = load_coco_json(self.ann_file)
            records, report = index_coco(
                coco, classes, self.ann_file, draw_order=self.draw_order,
                iscrowd=self.iscrowd, on_bad=self.on_bad, ignore_index=self.ignore_index,
                check_file=recorded_size_check(img_dir, self.ann_file)
                if self.check_files else None)
            if self.split_file:
                records = select_records(records, read_name_list(self.split_file),
                                         self.ann_file, self.split_file)
        else:
            report = SkipReport()
            if self.split_file:
                names = read_name_list(self.split_file)
            else:
                names = sorted(fileio.list_dir_or_file(
                    img_dir, list_dir=False, suffix=self.img_suffix, recursive=True,
                    backend_args=self.backend_args))
            records = image_only_records(names)
        data_list = []
        for record in records:
            img_path = osp.join(img_dir, data_relpath(
                record['file_name'], f"{self.ann_file or img_dir}: image id "
                f"{record['image_id']} file_name", img_dir))
            if self.check_files and not osp.isfile(img_path):
                message = (f"{img_path}: image file not found (image id "
                           f"{record['image_id']}"
                           f"{' in ' + self.ann_file if self.ann_file else ''})")
                if self.on_bad == 'raise':
                    raise CocoFormatError(message)
                report.add('missing image', message)
                continue
            data_list.append(dict(
                img_path=img_path, seg_map_path=None, label_map=self.label_map,
                reduce_zero_label=False, seg_fields=[], **record))
        if not data_list:
            source = self.ann_file or self.split_file or img_dir
            raise CocoFormatError(f'{source}: no images found')
        self.skip_report = report
        if report.total:
            print_log(f'CocoSemanticDataset({self.ann_file}): {report.summary()}',
                      logger='current', level=logging.WARNING)
        return data_list

    def filter_data(self) -> List[dict]:
        """``filter_cfg=dict(filter_empty_gt=True)`` drops images without annotations
        (never in ``test_mode``)."""
        if self.test_mode or not self.filter_cfg or \
                not self.filter_cfg.get('filter_empty_gt', False):
            return self.data_list
        return [info for info in self.data_list if info['coco_anns']]
