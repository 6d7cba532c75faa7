"""The labelled pool cross-validation splits: the config's training set, its images and
what their fold algorithm needs (patients, class presence).

A training set that is a ``ConcatDataset`` is the pool (its first member, split into
folds) plus **extra training sets** (the other members: pseudo-labelled test images,
external data) that every fold trains on and none validates on. Pseudo-labelling the
test set then composes with cross-validation: ``tools/cv.py`` on the teacher config
with ``--test-dir``, ``tools/pseudo_label.py`` on its test probabilities, and
``tools/cv.py`` again on a config whose training set adds the pseudo-label folder
(docs/cross_validation.md).
"""
from __future__ import annotations

import copy
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.config import Config

from ...config.model import config_task  # noqa: F401  (re-exported: cross_validation.config_task)
from ...datasets.build import build_dataset  # noqa: F401  (re-exported)
from ...io.paths import image_key
from ...utils.errors import ConfigError, DataError

#: data set wrappers the pool cannot be (CV splits one plain labelled set); a
#: ConcatDataset is read as the pool plus extra training sets (module doc)
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
        extra: the extra training sets (configs of the ``ConcatDataset``'s other
            members), trained on by every fold, validated on by none.
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
    extra: List[dict] = field(default_factory=list)

    def extra_stamp(self) -> str:
        """One hash (16 hex) of the extra training sets: their configs and the names,
        fingerprints (size, time, content) of every file under their data roots and image
        folders, so a fold trained before a pseudo-label or its image was redone is not
        taken as trained on it."""
        import hashlib
        import json

        from ...io.ownership import files_stamp
        digest = hashlib.sha256(json.dumps(self.extra, sort_keys=True,
                                           default=str).encode())
        for dataset in self.extra:
            for root in (dataset.get('data_root'),
                         (dataset.get('data_prefix') or {}).get('img_path')):
                if isinstance(root, str) and osp.isdir(root):
                    names = sorted(osp.relpath(osp.join(d, f), root)
                                   for d, _, files in os.walk(root) for f in files)
                    digest.update(files_stamp(root, names).encode())
        return digest.hexdigest()[:16]

    @property
    def keys(self) -> List[str]:
        return [image_key(rel) for rel in self.images]


def plain_dict(node) -> dict:
    """A deep copy of a config node as a plain dict."""
    return copy.deepcopy(node.to_dict() if hasattr(node, 'to_dict') else dict(node))


def pool_dataset(cfg: Config, config: str) -> Tuple[dict, List[dict]]:
    """The config's training data set without its fold selection (a plain dict), and
    the extra training sets (the other members of a ``ConcatDataset``; module doc)."""
    loader = cfg.get('train_dataloader') or {}
    dataset = loader.get('dataset')
    if not dataset:
        raise ConfigError(f'{config}: no train_dataloader.dataset to cross-validate')
    dataset = plain_dict(dataset)
    extra: List[dict] = []
    if dataset.get('type') == 'ConcatDataset':
        members = dataset.get('datasets') or []
        if len(members) < 2 or not all(isinstance(m, dict) for m in members):
            raise ConfigError(f'{config}: train_dataloader.dataset is a ConcatDataset of '
                              f'{len(members)} data set(s); cross-validation reads the '
                              'first as the pool and the others as extra training sets')
        wrapped = [m.get('type') for m in members if m.get('type') in WRAPPERS]
        if wrapped:
            raise ConfigError(f'{config}: a member of train_dataloader.dataset is a '
                              f'{wrapped[0]}; the pool and the extra training sets are '
                              'plain data sets')
        dataset, extra = members[0], members[1:]
    if dataset.get('type') in WRAPPERS:
        raise ConfigError(f'{config}: train_dataloader.dataset is a {dataset["type"]}; '
                          'cross-validation splits one plain labelled data set')
    if dataset.get('type') == 'HandBoneDataset':
        dataset['fold'] = None
        dataset.pop('subset', None)
    dataset.pop('indices', None)
    return dataset, extra


def check_val_split(cfg: Config, config: str) -> None:
    """Each fold validates with the config's val pipeline and evaluator (of a plain
    data set: a ``ConcatDataset``/``RepeatDataset`` validation set is refused by name).

    Raises:
        ConfigError: no val split, or a wrapped one.
    """
    loader = cfg.get('val_dataloader') or {}
    kind = (loader.get('dataset') or {}).get('type')
    if kind in WRAPPERS:
        raise ConfigError(f'{config}: val_dataloader.dataset is a {kind}; a wrapped '
                          'validation set is not supported: cross-validation validates '
                          'each fold with the pipeline of one plain data set')
    if not (loader.get('dataset') or {}).get('pipeline') or not cfg.get('val_evaluator') \
            or not cfg.get('val_cfg'):
        raise ConfigError(f'{config}: no val split (val_dataloader with a dataset pipeline, '
                          'val_evaluator and val_cfg); cross-validation validates each '
                          'fold with them')




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
    dataset_cfg, extra = pool_dataset(cfg, config)
    kind_name = dataset_cfg.get('type', '')
    dataset = build_dataset(dict(dataset_cfg, pipeline=[]))
    from ...training.image_suffix_case import check_suffix_case
    check_suffix_case(dataset)  # an image the data set would leave out of every fold
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    if not infos:
        raise DataError(f'{config}: the training data set lists no images')
    img_dir = dataset.data_prefix.get('img_path', '') or dataset.data_root or ''
    images = [osp.relpath(info['img_path'], img_dir).replace(os.sep, '/') for info in infos]
    check_labels_not_pseudo([info.get('seg_map_path') for info in infos], config)
    presence, groups, seg_dir = None, None, dataset.data_prefix.get('seg_map_path')
    if kind_name == 'HandBoneDataset':
        kind, split_key = 'handbone', 'ann_file'
        unlabelled = [info['img_path'] for info in infos if not info.get('seg_map_path')]
        if unlabelled:  # the data set reads no polygons for it (no label folder given)
            raise DataError(f'{unlabelled[0]}: an image of the pool of {config} without '
                            f'polygons ({len(unlabelled)} such; label folder '
                            f'{dataset.data_prefix.get("seg_map_path") or "not set"}): '
                            'cross-validation scores every fold against the pool\'s labels')
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
                presence, split_key, seg_dir, extra)


def check_labels_not_pseudo(label_files: Sequence[Optional[str]], config: str) -> None:
    """Refuse a pool whose label files (by their real paths) lie in a pseudo-label
    folder: every fold would be scored against a model's predictions.

    Raises:
        DataError: naming the first such label file and its pseudo-label folder.
    """
    from ...io.pseudo_report import pseudo_folder_above
    seen: Dict[str, Optional[tuple]] = {}
    for path in label_files:
        if not isinstance(path, str):
            continue
        folder = osp.dirname(osp.realpath(path))
        if folder not in seen:
            seen[folder] = pseudo_folder_above(folder)
        if seen[folder] is not None:
            raise DataError(f'{path}: a label of the pool of {config} lies in the '
                            f"pseudo-label folder {seen[folder][0]} (a model's predictions, "
                            'not ground truth): cross-validation scores every fold against '
                            "the pool's labels; pseudo-labels train beside the pool as "
                            'extra data')


def add_pseudo_labels(pool: Pool, pseudo_dir: str, img_dir: str) -> None:
    """Add the pseudo-labelled images of ``tools/pseudo_label.py``'s folder
    ``pseudo_dir`` (hand-bone JSON, the images under ``img_dir``, or under its ``DCM/``
    when it is a hand-bone root) to ``pool.extra``: every fold trains on them, none
    validates on them.

    Raises:
        DataError: ``pseudo_dir`` is not such a folder, is of another format or class
            list than the pool, or accepted no image; its ``accepted.txt`` is empty,
            names an image twice or one that is not under ``img_dir``; a
            pseudo-labelled image is one of the pool's (same content), or
            not the image its pseudo-labels were made from (by content).
    """
    from ...io.pseudo_report import REPORT, check_pseudo_images
    from ...utils.readers import check_folder, read_json
    from ..student_data import pseudo_dataset
    check_folder(pseudo_dir, 'pseudo-label folder', DataError)
    check_folder(img_dir, 'folder of the pseudo-labelled images', DataError)
    if osp.isdir(osp.join(img_dir, 'DCM')):  # a hand-bone root: its images are in DCM/
        img_dir = osp.join(img_dir, 'DCM')
    report = read_json(osp.join(pseudo_dir, REPORT), 'pseudo-label report')
    if not isinstance(report, dict) or report.get('format') != 'handbone-json':
        raise DataError(f'{osp.join(pseudo_dir, REPORT)}: not a hand-bone JSON pseudo-label '
                        f'report of tools/pseudo_label.py (format '
                        f'{report.get("format") if isinstance(report, dict) else None!r}); '
                        'multi-class pseudo-labels go in through a config whose training '
                        'set is a ConcatDataset')
    if pool.dataset_type != 'HandBoneDataset':
        raise DataError(f'{pseudo_dir}: hand-bone JSON pseudo-labels need a HandBoneDataset '
                        f'pool, not {pool.dataset_type}')
    classes = list(build_dataset(dict(pool.dataset, pipeline=[])).metainfo['classes'])
    if list(report.get('classes') or []) != classes:
        raise DataError(f'{osp.join(pseudo_dir, REPORT)}: classes {report.get("classes")} '
                        f'are not the pool\'s {classes} (in order)')
    if not any(r.get('accepted') for r in report.get('images') or []):
        raise DataError(f'{pseudo_dir}: no image was accepted as pseudo-labelled')
    # the list the data set reads: every entry one image, once (read_image_list)
    from ...io.images import read_image_list
    accepted = read_image_list(osp.join(pseudo_dir, 'accepted.txt'),
                               pool.dataset.get('img_suffix', '.png'), root=img_dir)
    from ...io.image_identity import same_images
    same = same_images([osp.join(img_dir, rel) for rel in accepted],
                       [osp.join(pool.img_dir, rel) for rel in pool.images])
    if same:  # the same file, a copy or the same pixels: a fold would validate on what it trained on
        raise DataError(f'{same[0][0]}: a pseudo-labelled image is the pool image '
                        f'{same[0][1]} (the same file, a copy or the same pixels): its fold would validate on an '
                        'image it trained on; pseudo-label images outside the labelled '
                        'pool')
    check_pseudo_images(osp.join(pseudo_dir, REPORT), img_dir, accepted)
    pool.extra.append(pseudo_dataset(pool.dataset, osp.abspath(img_dir),
                                     osp.abspath(pseudo_dir), 'multi-label',
                                     pool.dataset.get('img_suffix', '.png'), ''))


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
    for extra in pool.extra:
        roots += [extra.get('data_root'), (extra.get('data_prefix') or {}).get('img_path')]
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
