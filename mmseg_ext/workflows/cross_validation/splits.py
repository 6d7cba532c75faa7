"""Stage 1, splits: the validation fold of each pool image, written to ``splits/``.

Folds come from the fold algorithm of the pool's kind (hand-bone: grouped by patient;
COCO: stratified by category presence; folders: by the label values present) or from
the split files of ``tools/kfold.py``. ``splits/`` is rewritten every run; its content
is fixed by the run record (``cv.json`` holds a hash of the fold assignment).
"""
from __future__ import annotations

import os.path as osp
from typing import Dict, List, Optional

import numpy as np

from ...training.stages import owned_output
from ...utils.errors import DataError
from ...utils.readers import read_lines
from .pool import Pool
from .run import CVRun


def make_pool_folds(pool: Pool, num_folds: int, seed: int, source: str) -> np.ndarray:
    """Fold per pool image (``(N,)`` int64) with the fold algorithm of its kind."""
    from ...datasets.splits import make_folds
    groups = pool.groups
    if groups is not None and len(set(groups)) < num_folds:
        raise DataError(f'{source}: {num_folds} folds need at least {num_folds} groups; '
                        f'the pool has {len(set(groups))} '
                        f'({"patients" if pool.kind == "handbone" else "groups"})')
    if groups is None and len(pool.images) < num_folds:
        raise DataError(f'{source}: {num_folds} folds need at least {num_folds} images; '
                        f'the pool has {len(pool.images)}')
    try:
        return make_folds(len(pool.images), num_folds, seed, pool.presence, groups)
    except ValueError as exc:
        raise DataError(f'{source}: {exc}') from None


def _split_lines(path: str) -> List[str]:
    if path.endswith('.json'):
        from ...datasets.coco_index import load_coco_json
        return [img['file_name'] for img in load_coco_json(path)['images']]
    return [line for _, line in read_lines(path, 'split file', comments=True)]


def _split_file(splits_dir: str, stem: str) -> Optional[str]:
    """``<stem>.txt`` or ``<stem>.json`` in ``splits_dir``, None when neither is there."""
    return next((osp.join(splits_dir, f'{stem}{ext}') for ext in ('.txt', '.json')
                 if osp.isfile(osp.join(splits_dir, f'{stem}{ext}'))), None)


def _read_val_folds(pool: Pool, splits_dir: str, num_folds: int,
                    index: Dict[str, int]) -> np.ndarray:
    """Every pool image in exactly one non-empty ``val_fold{j}`` file."""
    folds = np.full(len(pool.names), -1, np.int64)
    for j in range(num_folds):
        val = _split_file(splits_dir, f'val_fold{j}')
        if val is None:
            raise DataError(f'{splits_dir}: no val_fold{j}.txt (or .json) for fold {j} of '
                            f'{num_folds}')
        for name in _split_lines(val):
            if name not in index:
                raise DataError(f'{val}: {name} is not an image of the training data set')
            if folds[index[name]] >= 0:
                raise DataError(f'{val}: {name} is already in val_fold{folds[index[name]]}')
            folds[index[name]] = j
        if not (folds == j).any():
            raise DataError(f'{val}: no images; every fold needs validation images')
    missing = [pool.names[i] for i in np.flatnonzero(folds < 0)]
    if missing:
        raise DataError(f'{splits_dir}: {missing[0]} is in no val_fold file '
                        f'({len(missing)} of {len(pool.names)} images)')
    return folds


def _check_train_folds(pool: Pool, splits_dir: str, num_folds: int, folds: np.ndarray,
                       index: Dict[str, int]) -> None:
    """A ``train_fold{j}`` file, when present, holds exactly the images outside fold j."""
    for j in range(num_folds):
        train = _split_file(splits_dir, f'train_fold{j}')
        if train is None:
            continue
        listed = set(_split_lines(train))
        expected = {pool.names[i] for i in np.flatnonzero(folds != j)}
        for name in sorted(listed - expected):
            raise DataError(f'{train}: {name} is ' + ('in val_fold' + str(j) if name in index
                                                      else 'not an image of the training '
                                                      'data set'))
        for name in sorted(expected - listed):
            raise DataError(f'{train}: {name} is missing (a train file holds every image '
                            f'outside val_fold{j})')


def _check_groups_whole(pool: Pool, splits_dir: str, folds: np.ndarray) -> None:
    """Every group of the pool (a hand-bone patient, a ``group_regex`` match) in one
    validation fold: a patient with images on both sides of a fold lets its model
    validate on a near copy of what it trained on, and the OOF scores and the thresholds
    tuned on them are optimistic."""
    if pool.groups is None:
        return
    first: Dict[str, int] = {}
    for i, group in enumerate(pool.groups):
        if not group:  # an image at the top of a hand-bone image dir: no patient folder
            continue
        j = first.setdefault(group, i)
        if folds[j] != folds[i]:
            what = 'patient' if pool.kind == 'handbone' else 'group'
            raise DataError(
                f'{splits_dir}: {what} {group!r} is split between folds: '
                f'{pool.names[j]} is in val_fold{folds[j]}, {pool.names[i]} in '
                f'val_fold{folds[i]}; each fold would train on a {what} it validates on '
                f'(out-of-fold scores and tuned values too optimistic). Keep every '
                f'{what}\'s images in one fold (tools/kfold.py handbone groups them)')


def read_pool_folds(pool: Pool, splits_dir: str, num_folds: int) -> np.ndarray:
    """Folds from ``val_fold{j}.txt`` (or ``.json``) files: every pool image in exactly
    one validation fold, the images of a group (patient) in one fold; a
    ``train_fold{j}`` file, when present, must hold the rest.

    Raises:
        DataError: a missing, empty or overlapping fold file, an unknown image, an
            image in no fold, a group split between folds, a train file that is not
            the complement of its fold.
    """
    index = {name: i for i, name in enumerate(pool.names)}
    folds = _read_val_folds(pool, splits_dir, num_folds, index)
    _check_groups_whole(pool, splits_dir, folds)
    _check_train_folds(pool, splits_dir, num_folds, folds, index)
    return folds


def pool_folds(pool: Pool, splits: Optional[str], num_folds: int, seed: int,
               config: str) -> np.ndarray:
    """The fold of each pool image: read from ``splits`` when given, else made."""
    if splits:
        return read_pool_folds(pool, splits, num_folds)
    return make_pool_folds(pool, num_folds, seed, config)


def write_pool_splits(pool: Pool, folds: np.ndarray, out_dir: str, num_folds: int
                      ) -> List[str]:
    """``train_fold<k>.txt``, ``val_fold<k>.txt`` and ``folds.csv`` in ``out_dir``."""
    from ...preparation.kfold import write_list_splits
    return write_list_splits(out_dir, pool.names, folds, pool.groups, force=True,
                             num_folds=num_folds)


def write_splits(run: CVRun) -> str:
    """The splits stage: the run's folds as split files in ``splits/``; returns it."""
    from ...preparation.kfold import split_paths
    ours = {osp.abspath(p) for p in split_paths(run.split_dir, run.num_folds, '.txt')}
    # only the split files: a file put in splits/ meanwhile is never listed as cv's
    with owned_output(run.manifest, run.split_dir,
                      accept=lambda item: osp.abspath(item) in ours):
        write_pool_splits(run.pool, run.fold_of_image, run.split_dir, run.num_folds)
    return run.split_dir
