"""Hand-bone X-ray data set: PNG images under ``DCM/`` with polygon JSONs beside them.

Layout (docs/FORMATS.md section 1)::

    data_root/DCM/ID001/image1661130828152_R.png
    data_root/outputs_json/ID001/image1661130828152_R.json   (same relative path)

Each ``IDxxx`` folder is one patient; folds keep a patient's images together.
"""
from __future__ import annotations

import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from ..io.hand_bone_json import check_annotations_have_images
from ..io.images import list_images
from ..io.paths import data_relpath, resolve_under
from ..utils.class_names import (
    HAND_BONE_CLASSES,
    HAND_BONE_PALETTE,
    class_pair_indices,
    random_palette,
)
from ..utils.errors import ConfigError, DataError, DataFileError, InvalidArgumentError
from ..utils.readers import check_folder, read_lines
from .image_named_failures import ImageNamedFailuresMixin
from .splits import group_kfold, select_fold


def patient_of(rel_path: str) -> str:
    """The patient (group) key of an image: its first folder under the image dir
    (``'ID001/image..._R.png'`` -> ``'ID001'``); ``''`` for an image at the top."""
    parts = rel_path.split('/')
    return parts[0] if len(parts) > 1 else ''


@DATASETS.register_module()
class HandBoneDataset(ImageNamedFailuresMixin, BaseSegDataset):
    """Multi-label hand-bone data set (29 overlapping classes by default).

    Each item's ``data_info``::

        img_path        data_root/DCM/ID001/x.png
        seg_map_path    data_root/outputs_json/ID001/x.json, or None (see below)
        patient         'ID001' (first folder under the image dir)
        label_map       None (labels are matched by class name, not by index)
        reduce_zero_label False, seg_fields [], sample_idx
        classes         the dataset's class tuple (added at fetch time for the loader)

    Args:
        data_root: folder holding ``DCM/`` and ``outputs_json/``.
        data_prefix: folders under ``data_root``; None means
            ``dict(img_path='DCM', seg_map_path='outputs_json')``.
        img_suffix, seg_map_suffix: ``'.png'`` and ``'.json'``.
        ann_file: optional split file (relative to ``data_root`` unless absolute):
            one image per line, relative to the image dir, with or without the suffix
            (``ID001/x.png`` or ``ID001/x``, the stems ``tools/kfold.py handbone``
            writes); a path relative to ``data_root`` (``DCM/ID001/x.png``) or an
            absolute path is also accepted; blank lines and lines starting with ``#``
            are ignored. Without it every image under the
            image dir is listed (sorted by relative path).
        fold, num_folds, subset, fold_seed: ``fold=None`` keeps every listed image;
            ``fold=k`` keeps ``subset`` (``'train'``: all folds but ``k``; ``'val'``:
            fold ``k``) of :func:`~mmseg_ext.datasets.splits.group_kfold` over the
            patients of the listed images, deterministic in ``(images, num_folds,
            fold_seed)``. No patient is in both subsets of a fold.
        metainfo: ``dict(classes=(...))`` selects and orders the channels by name (any
            subset or order of the 29 classes, or other names for other data).
            ``flip_swap_classes=[('right_lung', 'left_lung'), ...]`` names the
            lateral pairs whose channels a horizontal flip swaps
            (:class:`~mmseg_ext.datasets.transforms.MultiLabelRandomFlip` in training,
            ``MultiLabelSegTTAModel`` and ``tools/inference.py --tta`` for flipped
            views); each item then carries ``flip_swap_pairs`` (channel indices).
        test_mode: a test split. Images are listed without requiring annotations:
            ``seg_map_path`` is the JSON when it exists, else None (a labelled split in
            test mode still evaluates). The same happens when the annotation dir does
            not exist. Otherwise every image must have its JSON.
        **kwargs: the rest of ``BaseSegDataset``'s arguments (pipeline, ...).

    Raises:
        DataFileError: the image dir does not exist, a labelled image has no JSON (the
            message names the image), a JSON has no image (without a split file), or a
            split-file line names a missing image.
    """

    METAINFO = dict(classes=HAND_BONE_CLASSES, palette=HAND_BONE_PALETTE)

    def __init__(self,
                 data_root: Optional[str] = None,
                 data_prefix: Optional[Dict[str, str]] = None,
                 img_suffix: str = '.png',
                 seg_map_suffix: str = '.json',
                 ann_file: str = '',
                 fold: Optional[int] = None,
                 num_folds: int = 5,
                 subset: str = 'train',
                 fold_seed: int = 0,
                 **kwargs) -> None:
        if data_prefix is None:
            data_prefix = dict(img_path='DCM', seg_map_path='outputs_json')
        if subset not in ('train', 'val'):
            raise ConfigError(f"HandBoneDataset: subset must be 'train' or 'val', got {subset!r}")
        self.fold = fold
        self.num_folds = num_folds
        self.subset = subset
        self.fold_seed = fold_seed
        super().__init__(ann_file=ann_file, img_suffix=img_suffix,
                         seg_map_suffix=seg_map_suffix, data_root=data_root,
                         data_prefix=data_prefix, **kwargs)
        try:
            self._flip_swap_pairs = class_pair_indices(
                self._metainfo.get('flip_swap_classes'), self._metainfo['classes'],
                'metainfo flip_swap_classes')
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    @classmethod
    def get_label_map(cls, new_classes: Optional[Sequence] = None) -> None:
        """Always None: multi-label channels are selected by name in the loader."""
        return None

    def _update_palette(self) -> list:
        classes = list(self._metainfo.get('classes', []))
        palette = list(self._metainfo.get('palette', []))
        if len(palette) == len(classes) and classes == list(self.METAINFO['classes']):
            return palette
        by_name = dict(zip(self.METAINFO['classes'], self.METAINFO['palette']))
        extra = iter(random_palette(len(classes), seed=len(classes) + 1000))
        return [by_name[c] if c in by_name else next(extra) for c in classes]

    # --- listing -------------------------------------------------------------------

    def _image_dir(self) -> str:
        return self.data_prefix.get('img_path', '') or (self.data_root or '')

    def _read_split_file(self, img_dir: str) -> List[str]:
        rels = []
        # one text reader: UTF-8 (a BOM dropped), a FIFO refused, failures name the file
        for lineno, entry in read_lines(self.ann_file, 'split file', comments=True):
            rel = self._resolve_split_entry(entry, img_dir, f'{self.ann_file}:{lineno}')
            if rel is None:
                raise DataFileError(f'{self.ann_file}: line {lineno}: image {entry!r} '
                                    f'not found under {img_dir}')
            rels.append(rel)
        return rels

    def _resolve_split_entry(self, entry: str, img_dir: str, where: str) -> Optional[str]:
        """The image an entry names, relative to ``img_dir``: the entry is a path (or a
        stem, as tools/kfold.py writes) relative to the image folder or to ``data_root``;
        absolute or escaping entries are refused (:mod:`mmseg_ext.io.paths`)."""
        entry = data_relpath(entry, where, img_dir)
        names = [entry]
        if not entry.lower().endswith(self.img_suffix.lower()):
            names.append(entry + self.img_suffix)  # a stem, as tools/kfold.py writes
        bases = [img_dir] + ([self.data_root] if self.data_root else [])
        for name in names:
            for base in bases:
                cand = osp.join(base, name)
                if osp.isfile(cand):
                    resolve_under(base, name, where)
                    rel = osp.relpath(cand, img_dir).replace(os.sep, '/')
                    if not rel.startswith('../'):
                        return rel
        return None

    def _select_fold(self, rels: List[str]) -> List[str]:
        if self.fold is None:
            return rels
        try:
            folds = group_kfold([patient_of(r) for r in rels], self.num_folds,
                                seed=self.fold_seed)
            return [rels[i] for i in select_fold(folds, self.fold, self.subset)]
        except InvalidArgumentError as exc:  # a value of the config, not of a command line
            raise ConfigError(f'{self._where()}: {type(self).__name__} {exc.argument} '
                              f'{exc.problem}') from None
        except DataError as exc:  # more folds than patients: name the data it counted
            raise DataFileError(f'{self._where()}: {exc} (patients of the '
                                f'{len(rels)} listed images)') from None

    def _where(self) -> str:
        """The data this data set reads, for messages: its split file, else its images."""
        return self.ann_file or self._image_dir()

    def _ann_path(self, rel: str, ann_dir: str) -> str:
        stem = osp.splitext(rel)[0]
        return osp.join(ann_dir, stem + self.seg_map_suffix)

    def load_data_list(self) -> List[dict]:
        """List the images (and their JSONs), apply the split file and the fold."""
        img_dir = self._image_dir()
        check_folder(img_dir, 'image folder')
        ann_dir = self.data_prefix.get('seg_map_path', '')
        labelled = not self.test_mode and bool(ann_dir) and osp.isdir(ann_dir)
        rels = self._read_split_file(img_dir) if self.ann_file else \
            list_images(img_dir, (self.img_suffix,))
        if labelled and not self.ann_file:  # every image listed: every JSON must be used
            check_annotations_have_images(img_dir, ann_dir, self.img_suffix,
                                          self.seg_map_suffix)
        rels = self._select_fold(rels)
        data_list = []
        for rel in rels:
            img_path = osp.join(img_dir, rel)
            seg_path: Optional[str] = self._ann_path(rel, ann_dir) if ann_dir else None
            if seg_path is not None and not osp.isfile(seg_path):
                if labelled:
                    raise DataFileError(f'{img_path}: no annotation file (expected '
                                        f'{seg_path})')
                seg_path = None
            data_list.append(dict(img_path=img_path, seg_map_path=seg_path,
                                  patient=patient_of(rel), label_map=None,
                                  reduce_zero_label=False, seg_fields=[]))
        return data_list

    def get_data_info(self, idx: int) -> dict:
        info = super().get_data_info(idx)
        info['classes'] = self._metainfo['classes']
        if self._flip_swap_pairs:
            info['flip_swap_pairs'] = self._flip_swap_pairs
        return info

    @property
    def patients(self) -> Tuple[str, ...]:
        """Patient of each item, in dataset order."""
        return tuple(self.get_data_info(i)['patient'] for i in range(len(self)))
