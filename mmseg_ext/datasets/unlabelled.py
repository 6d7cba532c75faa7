"""Images without labels for semi-supervised training, in any folder layout.

:class:`UnlabelledImageDataset` lists images only (a folder, or a list of them) and
yields samples without ground truth: it never looks for, opens or names a label file,
even where one lies beside the image (the JSON of every ``jsrt_chest`` image, when the
pool's other images serve as unlabelled ones). Its ``metainfo`` can be copied from the
labelled set's type (``metainfo_from``) so that mmengine's ``ConcatDataset`` accepts
the pair (it compares every metainfo key, the palette included).

Why not the labelled classes: ``HandBoneDataset`` lists images only when its
``data_prefix`` has no ``seg_map_path`` but checks nothing else, ``BaseSegDataset``
neither checks that a listed image exists nor lists sub-folders from a split file, and
``PortStructuresDataset(subset='unlabeled')`` knows only the port layout. One class
serves the hand-bone layout (``DCM/IDxxx/*.png``), the port layout and plain folders.
"""
from __future__ import annotations

import os.path as osp
from typing import List, Optional

from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from ..io.images import list_images, read_image_list
from ..utils.class_names import class_pair_indices
from ..utils.errors import ConfigError, DataFileError
from ..utils.readers import check_folder
from .image_named_failures import ImageNamedFailuresMixin


@DATASETS.register_module()
class UnlabelledImageDataset(ImageNamedFailuresMixin, BaseSegDataset):
    """Unlabelled images: every ``img_suffix`` image under the image folder
    (recursively, sorted), or the images a list file names.

    Each item's ``data_info`` holds ``img_path`` and no ``seg_map_path`` (a pipeline
    without annotation loaders yields samples without ``gt_sem_seg``), plus
    ``flip_swap_pairs`` when the metainfo names ``flip_swap_classes``.

    Args:
        data_root: optional root; ``data_prefix['img_path']`` and a relative
            ``ann_file`` are taken under it (mmengine's rule).
        data_prefix: ``dict(img_path=...)``, the image folder (default: ``data_root``).
        ann_file: optional list file, one image per line relative to the image folder,
            with or without ``img_suffix`` (the stems ``tools/kfold.py`` writes, such
            as ``ID001/image1661130828152_R``); blank lines and ``#`` comments skipped.
        img_suffix: the images' suffix (``'.png'``).
        metainfo_from: the labelled set's config (its ``type`` and ``metainfo`` are
            enough): that data set is built with ``lazy_init=True`` (no file is listed)
            and this set takes its ``metainfo`` exactly. Without it ``metainfo`` is
            resolved by ``BaseSegDataset``'s rules (give the same classes and palette as
            the labelled set).
        **kwargs: ``BaseSegDataset``'s other arguments (``pipeline``, ``metainfo``...).

    Raises:
        DataFileError: the image folder does not exist or holds no image.
        DataError: the list file is unreadable, empty, names a path outside the folder,
            or an entry that fits no image, two images, or an earlier line's image
            (:func:`~mmseg_ext.io.images.read_image_list`; the message names the list
            file and line).
        ConfigError: ``metainfo_from`` is not a data set config, or a
            ``flip_swap_classes`` name is not a class.
    """

    def __init__(self, data_root: Optional[str] = None,
                 data_prefix: Optional[dict] = None, ann_file: str = '',
                 img_suffix: str = '.png', metainfo_from: Optional[dict] = None,
                 **kwargs) -> None:
        name = type(self).__name__
        like_meta = None
        if metainfo_from is not None:
            if not isinstance(metainfo_from, dict) or 'type' not in metainfo_from:
                raise ConfigError(f'{name}: metainfo_from must be a data set config with '
                                  f'a type, got {metainfo_from!r}')
            like = DATASETS.build(dict(metainfo_from, lazy_init=True))
            like_meta = like.metainfo
            kwargs['metainfo'] = like_meta
        if data_prefix is None:
            data_prefix = dict(img_path='')
        if 'seg_map_path' in data_prefix:
            raise ConfigError(f'{name}: data_prefix names a seg_map_path; unlabelled '
                              'images have none')
        super().__init__(data_root=data_root, data_prefix=data_prefix, ann_file=ann_file,
                         img_suffix=img_suffix, **kwargs)
        if like_meta is not None:
            self._metainfo = like_meta  # label_map and the rest exactly as the labelled set
        try:
            self._flip_swap_pairs = class_pair_indices(
                self._metainfo.get('flip_swap_classes'), self._metainfo.get('classes', ()),
                'metainfo flip_swap_classes')
        except ValueError as exc:
            raise ConfigError(f'{name}: {exc}') from None

    def _image_dir(self) -> str:
        return self.data_prefix.get('img_path', '') or (self.data_root or '')

    def load_data_list(self) -> List[dict]:
        """One record per image: ``img_path`` and mmseg's per-item keys, no label."""
        img_dir = self._image_dir()
        check_folder(img_dir, 'image folder')
        if self.ann_file:
            rels = read_image_list(self.ann_file, self.img_suffix, img_dir)
        else:
            rels = list_images(img_dir, (self.img_suffix,))
            if not rels:
                raise DataFileError(f'{img_dir}: no *{self.img_suffix} images')
        return [dict(img_path=osp.join(img_dir, rel), label_map=self.label_map,
                     reduce_zero_label=self.reduce_zero_label, seg_fields=[])
                for rel in rels]

    def get_data_info(self, idx: int) -> dict:
        info = super().get_data_info(idx)
        if self._flip_swap_pairs:
            info['flip_swap_pairs'] = self._flip_swap_pairs
        return info
