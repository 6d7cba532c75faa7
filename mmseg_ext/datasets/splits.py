"""Deterministic k-fold splits that keep groups (patients, scenes) together.

Used by the datasets (``fold`` / ``num_folds`` arguments) and by ``tools/kfold.py``.
"""
from __future__ import annotations

from typing import Dict, Hashable, List, Sequence

import numpy as np


def group_kfold(groups: Sequence[Hashable], num_folds: int, seed: int = 0) -> np.ndarray:
    """Assign every sample to a fold so that no group is split across folds.

    Groups are visited from the largest to the smallest (ties broken by a seeded
    shuffle) and each goes to the fold that holds the fewest samples so far (ties: the
    lowest fold index), as scikit-learn's ``GroupKFold`` balances folds.

    Args:
        groups: one group key per sample (e.g. the patient folder ``'ID001'``).
        num_folds: number of folds, ``2 <= num_folds <= number of groups``.
        seed: seed of the tie-breaking shuffle; the result is a pure function of
            ``(groups, num_folds, seed)``.

    Returns:
        ``(N,)`` int array: the fold index of each sample.
    """
    keys = list(groups)
    unique = sorted(set(keys), key=str)
    if num_folds < 2:
        raise ValueError(f'num_folds must be >= 2, got {num_folds}')
    if num_folds > len(unique):
        raise ValueError(f'num_folds={num_folds} is larger than the number of groups '
                         f'({len(unique)})')
    sizes: Dict[Hashable, int] = {g: 0 for g in unique}
    for key in keys:
        sizes[key] += 1
    order = np.random.default_rng(seed).permutation(len(unique))
    ranked: List[Hashable] = [unique[i] for i in order]
    ranked.sort(key=lambda g: -sizes[g])  # stable: seeded order among equal sizes
    load = np.zeros(num_folds, dtype=np.int64)
    fold_of: Dict[Hashable, int] = {}
    for group in ranked:
        fold = int(np.argmin(load))
        fold_of[group] = fold
        load[fold] += sizes[group]
    return np.array([fold_of[k] for k in keys], dtype=np.int64)


def select_fold(folds: np.ndarray, fold: int, subset: str) -> np.ndarray:
    """Indices of the samples in ``subset`` (``'train'`` or ``'val'``) of ``fold``.

    ``'val'`` is the samples whose fold index equals ``fold``; ``'train'`` the rest.
    """
    num_folds = int(folds.max()) + 1 if len(folds) else 0
    if not 0 <= fold < num_folds:
        raise ValueError(f'fold must be in [0, {num_folds}), got {fold}')
    if subset == 'val':
        return np.flatnonzero(folds == fold)
    if subset == 'train':
        return np.flatnonzero(folds != fold)
    raise ValueError(f"subset must be 'train' or 'val', got {subset!r}")
