"""The port-structure data (semi-supervised): labelled, unlabelled and test folders."""
from __future__ import annotations

import os.path as osp
from typing import List, Optional, Tuple

from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from ..io.images import list_images
from ..io.paths import data_relpath
from ..utils.class_names import PORT_CLASSES, PORT_PALETTE
from ..utils.errors import ConfigError, DataError
from ..utils.readers import check_folder, read_lines
from .image_named_failures import ImageNamedFailuresMixin


class FolderDataError(DataError):
    """A missing folder, image or label in an image/label-folder data set."""


@DATASETS.register_module()
class PortStructuresDataset(ImageNamedFailuresMixin, BaseSegDataset):
    """Port structures: non-square ``.jpg`` images, 8-bit ``.png`` label maps.

    Layout (``data_root``)::

        train/labeled_images/<stem>.jpg     train/labels/<stem>.png   (0..4, 255 ignore)
        train/unlabeled_images/<stem>.jpg   (semi-supervised: no labels)
        test/images/<stem>.jpg

    Label values: 0 background, 1 container_truck, 2 forklift, 3 reach_stacker, 4 ship;
    255 is ignored (``ignore_index``). ``reduce_zero_label`` is always False.

    Args:
        subset: ``'labeled'`` (images + labels), ``'unlabeled'`` (images only, for
            pseudo-labels / semi-supervised work) or ``'test'`` (images only). It picks
            ``data_prefix``; an explicit ``data_prefix`` overrides it.
        ann_file: optional split file of image stems (mmseg convention, one
            ``<stem>`` per line, e.g. ``tools/kfold.py`` output), relative to
            ``data_root``.
        **kwargs: :class:`mmseg.datasets.BaseSegDataset` arguments.

    Every listed labelled image must have its label (checked at start-up: one line
    naming the image and the missing label file).
    """

    METAINFO = dict(classes=PORT_CLASSES, palette=PORT_PALETTE)
    SUBSETS = {
        'labeled': dict(img_path='train/labeled_images', seg_map_path='train/labels'),
        'unlabeled': dict(img_path='train/unlabeled_images'),
        'test': dict(img_path='test/images'),
    }

    def __init__(self, subset: str = 'labeled', data_prefix: Optional[dict] = None,
                 img_suffix: str = '.jpg', seg_map_suffix: str = '.png',
                 **kwargs) -> None:
        if subset not in self.SUBSETS:
            raise ConfigError(f'PortStructuresDataset: subset must be one of '
                              f'{list(self.SUBSETS)}, got {subset!r}')
        if kwargs.get('reduce_zero_label'):
            raise ConfigError('PortStructuresDataset: reduce_zero_label must be False '
                             '(0 is the background class)')
        self.subset = subset
        if data_prefix is None:
            data_prefix = dict(self.SUBSETS[subset])
        super().__init__(data_prefix=data_prefix, img_suffix=img_suffix,
                         seg_map_suffix=seg_map_suffix, **kwargs)

    def _split_stems(self) -> List[Tuple[str, str]]:
        """``(where, stem)`` of every line of the split file, read by the one text reader
        (UTF-8, a BOM dropped, a FIFO refused)."""
        try:
            lines = read_lines(self.ann_file, 'split file')
        except DataError as exc:
            raise FolderDataError(str(exc)) from None
        return [(f'{self.ann_file}:{lineno}', stem) for lineno, stem in lines]

    def _folder_stems(self, img_dir: str) -> List[Tuple[str, str]]:
        """``(where, stem)`` of every image under ``img_dir`` (the one image walk: special
        files and link loops are refused by name)."""
        n = len(self.img_suffix)
        return [(img_dir, rel[:-n]) for rel in list_images(img_dir, (self.img_suffix,))
                if rel.endswith(self.img_suffix)]

    def _records(self, img_dir: str, stems: List[Tuple[str, str]]) -> List[dict]:
        """mmseg's records of ``stems``; a stem from data must stay inside the folder."""
        ann_dir = self.data_prefix.get('seg_map_path', None)
        data_list = []
        for where, stem in stems:
            data_relpath(stem, where, img_dir)
            info = dict(img_path=osp.join(img_dir, stem + self.img_suffix))
            if ann_dir is not None:
                info['seg_map_path'] = osp.join(ann_dir, stem + self.seg_map_suffix)
            info.update(label_map=self.label_map, reduce_zero_label=self.reduce_zero_label,
                        seg_fields=[])
            data_list.append(info)
        return data_list

    def load_data_list(self) -> List[dict]:
        img_dir = self.data_prefix.get('img_path')
        check_folder(img_dir, f'image folder (subset {self.subset!r})', FolderDataError)
        if self.ann_file and not osp.lexists(self.ann_file):
            raise FolderDataError(f'{self.ann_file}: split file not found')
        data_list = self._records(img_dir, self._split_stems() if self.ann_file and not
                                  osp.isdir(self.ann_file) else self._folder_stems(img_dir))
        if not data_list:
            raise FolderDataError(f'{img_dir}: no *{self.img_suffix} images')
        for info in data_list:
            if not osp.isfile(info['img_path']):
                raise FolderDataError(f"{info['img_path']}: image file not found")
            seg = info.get('seg_map_path')
            if seg is not None and not osp.isfile(seg):
                raise FolderDataError(f"{info['img_path']}: label file {seg} not found")
        return data_list
