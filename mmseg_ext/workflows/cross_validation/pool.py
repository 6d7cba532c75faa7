"""The labelled pool cross-validation splits: the config's training set, its images and
what their fold algorithm needs (patients, class presence)."""
from __future__ import annotations

import copy
import os
import os.path as osp
from dataclasses import dataclass
from typing import List, Optional

import numpy as np
from mmengine.config import Config

from ...config.model import config_task  # noqa: F401  (re-exported: cross_validation.config_task)
from ...io.paths import image_key
from ...utils.errors import ConfigError, DataError

#: data set wrappers the pool cannot be (CV splits one plain labelled set)
WRAPPERS = ('ConcatDataset', 'RepeatDataset', 'ClassBalancedDataset')


@dataclass
class Pool:
    """The labelled images cross-validation splits.

    Attributes:
        kind: ``'handbone'`` (grouped by patient), ``'coco'`` (stratified by category
            presence) or ``'folder'`` (stratified by label values).
        dataset: the pool's data set config (fold selection removed).
        img_dir: absolute image folder; ``images`` are relative to it.
        names: the split-file line of each image (image stem, or COCO ``file_name``).
        presence: ``(N, C)`` bool, class ``c`` present in image ``i`` (or None).
        split_key: the data set argument a split file goes to.
    """
    kind: str
    dataset: dict
    dataset_type: str
    img_dir: str
    images: List[str]
    names: List[str]
    groups: Optional[List[str]]
    presence: Optional[np.ndarray]
    split_key: str
    seg_dir: Optional[str] = None

    @property
    def keys(self) -> List[str]:
        return [image_key(rel) for rel in self.images]


def plain_dict(node) -> dict:
    """A deep copy of a config node as a plain dict."""
    return copy.deepcopy(node.to_dict() if hasattr(node, 'to_dict') else dict(node))


def pool_dataset(cfg: Config, config: str) -> dict:
    """The config's training data set without its fold selection (a plain dict)."""
    loader = cfg.get('train_dataloader') or {}
    dataset = loader.get('dataset')
    if not dataset:
        raise ConfigError(f'{config}: no train_dataloader.dataset to cross-validate')
    dataset = plain_dict(dataset)
    if dataset.get('type') in WRAPPERS:
        raise ConfigError(f'{config}: train_dataloader.dataset is a {dataset["type"]}; '
                          'cross-validation splits one plain labelled data set')
    if dataset.get('type') == 'HandBoneDataset':
        dataset['fold'] = None
        dataset.pop('subset', None)
    dataset.pop('indices', None)
    return dataset


def check_val_split(cfg: Config, config: str) -> None:
    """Each fold validates with the config's val pipeline and evaluator."""
    loader = cfg.get('val_dataloader') or {}
    if not (loader.get('dataset') or {}).get('pipeline') or not cfg.get('val_evaluator') \
            or not cfg.get('val_cfg'):
        raise ConfigError(f'{config}: no val split (val_dataloader with a dataset pipeline, '
                          'val_evaluator and val_cfg); cross-validation validates each '
                          'fold with them')


def build_dataset(dataset: dict):
    """The mmseg data set of a config dict (in the mmseg scope)."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS
    init_default_scope('mmseg')
    return DATASETS.build(copy.deepcopy(dataset))


def _strip_suffix(rel: str, suffix: str) -> str:
    return rel[:-len(suffix)] if suffix and rel.endswith(suffix) else image_key(rel)


def _coco_presence(infos: List[dict], num_classes: int) -> np.ndarray:
    """``(N, C)`` bool: category ``c`` annotated in image ``i``."""
    presence = np.zeros((len(infos), num_classes), bool)
    for i, info in enumerate(infos):
        for ann in info.get('coco_anns') or []:
            if 0 <= int(ann['label']) < num_classes:
                presence[i, int(ann['label'])] = True
    return presence


def read_pool(cfg: Config, config: str, group_regex: Optional[str] = None,
              progress: bool = True) -> Pool:
    """List the pool's images with what their fold algorithm needs."""
    from ...preparation.kfold import groups_from_regex, label_presence
    dataset_cfg = pool_dataset(cfg, config)
    kind_name = dataset_cfg.get('type', '')
    dataset = build_dataset(dict(dataset_cfg, pipeline=[]))
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    if not infos:
        raise DataError(f'{config}: the training data set lists no images')
    img_dir = dataset.data_prefix.get('img_path', '') or dataset.data_root or ''
    images = [osp.relpath(info['img_path'], img_dir).replace(os.sep, '/') for info in infos]
    presence, groups, seg_dir = None, None, dataset.data_prefix.get('seg_map_path')
    if kind_name == 'HandBoneDataset':
        kind, split_key = 'handbone', 'ann_file'
        names = [rel[:-len(dataset.img_suffix)] if rel.endswith(dataset.img_suffix)
                 else image_key(rel) for rel in images]
        groups = [info.get('patient', '') for info in infos]
    elif kind_name == 'CocoSemanticDataset':
        kind, split_key = 'coco', 'split_file'
        names = [info['file_name'] for info in infos]
        presence = _coco_presence(infos, len(dataset.metainfo['classes']))
    else:
        kind, split_key = 'folder', 'ann_file'
        names = [_strip_suffix(rel, getattr(dataset, 'img_suffix', '')) for rel in images]
        seg_paths = [info.get('seg_map_path') for info in infos]
        if all(seg_paths):
            presence, _ = label_presence(seg_paths, getattr(dataset, 'ignore_index', 255),
                                         progress)
    if group_regex:
        groups = groups_from_regex(names, group_regex)
    return Pool(kind, dataset_cfg, kind_name, osp.abspath(img_dir), images, names, groups,
                presence, split_key, seg_dir)


def run_inputs(config: str, cfg: Config, pool: Pool, splits: Optional[str],
               test_dir: Optional[str], test_json: Optional[str],
               sample: Optional[str]) -> List[str]:
    """Every input a run reads: the config, the pool's data root, image, label and
    split files, the train/val data roots, ``splits``, the test images and row sources.
    The work dir may be none of them, hold none and lie inside none."""
    inputs = [config, pool.img_dir, splits, test_dir, test_json, sample]
    roots = [pool.dataset.get('data_root')]
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset = (cfg.get(loader) or {}).get('dataset') or {}
        roots.append(dataset.get('data_root'))
    inputs += [r for r in roots if isinstance(r, str) and r]
    root = pool.dataset.get('data_root') or ''
    for key in ('ann_file', 'split_file'):
        value = pool.dataset.get(key)
        if isinstance(value, str) and value:
            inputs.append(osp.join(root, value))
    if pool.seg_dir:
        inputs.append(osp.join(root, pool.seg_dir) if not osp.isabs(pool.seg_dir)
                      else pool.seg_dir)
    return [i for i in inputs if i]
