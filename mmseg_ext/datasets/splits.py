"""Deterministic k-fold splits: grouped (patients, scenes), stratified by class presence.

The fold algorithms only: used by the datasets (``fold`` / ``num_folds`` arguments) and
by :mod:`mmseg_ext.preparation.kfold` (``tools/kfold.py``), which reads the sources and writes
the split files the datasets read (``ann_file``).
"""
from __future__ import annotations

from typing import Dict, Hashable, List, Optional, Sequence

import numpy as np

from ..utils.errors import DataError, InvalidArgumentError


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
        raise InvalidArgumentError('num_folds', f'must be >= 2, got {num_folds}')
    if num_folds > len(unique):
        raise DataError(f'num_folds={num_folds} is larger than the number of groups '
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
        raise InvalidArgumentError('fold', f'must be in [0, {num_folds}), got {fold}')
    if subset == 'val':
        return np.flatnonzero(folds == fold)
    if subset == 'train':
        return np.flatnonzero(folds != fold)
    raise InvalidArgumentError('subset', f"must be 'train' or 'val', got {subset!r}")


# --------------------------------------------------------------------------------------
# Multi-label stratification (class presence), optionally over groups
# --------------------------------------------------------------------------------------

def stratified_kfold(presence: np.ndarray, num_folds: int, seed: int = 0,
                     groups: Optional[Sequence[Hashable]] = None) -> np.ndarray:
    """Folds that spread every class's images over all folds (iterative stratification).

    The algorithm is iterative multi-label stratification: each fold "wants" ``1/k``
    of every class's images and of all images. Repeatedly, the class with the fewest
    unassigned units is taken, and each unassigned unit holding it (largest first,
    then in a seeded random order) goes to the fold that still wants most of that
    class (ties: the fold that wants most images overall, then a seeded fold order).
    Units without any class fill the folds that want most images. Then a repair pass
    makes every class held by ``>= k`` units present in every fold where a unit can
    be moved (and one moved back for balance) without removing another such class
    from its fold, and a local search moves single units between folds while that
    lowers ``sum_c w_c sum_j (n_jc - n_c / k)^2`` plus the same term for fold sizes
    (``w_c = 1 / max(n_c / k, 1)``; sizes weighted ``C`` times), never emptying a fold
    of such a class. (Greedy
    stratification alone balances the rarest classes well and the most frequent ones
    poorly; the search evens those out.)

    With ``groups`` the units are groups (a group's presence vector counts its images
    per class) and no group is split across folds.

    Args:
        presence: ``(N, C)`` bool/int, ``presence[i, c]`` true when image ``i`` shows
            class ``c`` (``C`` may be 0: then only sizes are balanced).
        num_folds: ``k``, ``2 <= k <= number of units``.
        seed: the result is a pure function of ``(presence, groups, k, seed)``.
        groups: optional group key per image (patient, scene).

    Returns:
        ``(N,)`` int64 fold index per image.
    """
    presence = np.asarray(presence).astype(bool)
    if presence.ndim != 2:
        raise InvalidArgumentError('presence', f'must be (N, C), got shape {presence.shape}')
    num = len(presence)
    if groups is None:
        unit_of = np.arange(num)
    else:
        keys = list(groups)
        if len(keys) != num:
            raise DataError(f'{len(keys)} groups for {num} images')
        unique = sorted(set(keys), key=str)
        position = {g: i for i, g in enumerate(unique)}
        unit_of = np.array([position[g] for g in keys], dtype=np.int64)
    num_units = int(unit_of.max()) + 1 if num else 0
    if num_folds < 2:
        raise InvalidArgumentError('num_folds', f'must be >= 2, got {num_folds}')
    if num_folds > num_units:
        raise DataError(f'num_folds={num_folds} is larger than the number of '
                         f"{'groups' if groups is not None else 'images'} ({num_units})")
    counts = np.zeros((num_units, presence.shape[1]), np.int64)
    np.add.at(counts, unit_of, presence.astype(np.int64))
    sizes = np.bincount(unit_of, minlength=num_units)
    fold = _iterative_stratification(counts, sizes, num_folds, seed)
    _repair_coverage(counts > 0, sizes, fold, num_folds)
    _refine_balance(counts, sizes, fold, num_folds)
    return fold[unit_of]


def _iterative_stratification(counts: np.ndarray, sizes: np.ndarray, k: int,
                              seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rank = rng.permutation(len(sizes))               # seeded order among equal units
    fold_rank = rng.permutation(k)                   # seeded order among equal folds
    has = counts > 0
    want_class = np.tile(counts.sum(0) / k, (k, 1)).astype(np.float64)   # (k, C)
    want_size = np.full(k, sizes.sum() / k, np.float64)
    fold = np.full(len(sizes), -1, np.int64)
    remaining = np.ones(len(sizes), bool)

    def place(unit: int, primary: np.ndarray) -> None:
        best = np.lexsort((-fold_rank, want_size, primary))[-1]
        fold[unit] = best
        remaining[unit] = False
        want_class[best] -= counts[unit]
        want_size[best] -= sizes[unit]

    while True:
        left = has[remaining].sum(0)
        active = np.flatnonzero(left > 0)
        if not len(active):
            break
        cls = int(active[np.argmin(left[active])])
        units = np.flatnonzero(remaining & has[:, cls])
        units = units[np.lexsort((rank[units], -counts[units, cls]))]
        for unit in units:
            place(int(unit), want_class[:, cls])
    rest = np.flatnonzero(remaining)
    for unit in rest[np.lexsort((rank[rest], -sizes[rest]))]:
        place(int(unit), want_size)
    return fold


def _repair_coverage(has: np.ndarray, sizes: np.ndarray, fold: np.ndarray, k: int) -> None:
    """Move units so that each class held by >= k units is in every fold (in place)."""
    required = has.sum(0) >= k

    def table() -> np.ndarray:                       # (k, C) units per fold and class
        out = np.zeros((k, has.shape[1]), np.int64)
        np.add.at(out, fold, has.astype(np.int64))
        return out

    def movable(unit: int, source: int, per_fold: np.ndarray) -> bool:
        at_risk = has[unit] & required
        return bool(np.all(per_fold[source, at_risk] >= 2))

    for cls in np.argsort(has.sum(0), kind='stable'):
        if not required[cls]:
            continue
        for _ in range(k):
            per_fold = table()
            empty = np.flatnonzero(per_fold[:, cls] == 0)
            if not len(empty):
                break
            target = int(empty[0])
            donors = np.flatnonzero(has[:, cls] & (per_fold[fold, cls] >= 2))
            donors = donors[np.lexsort((has[donors].sum(1), sizes[donors]))]
            unit = next((int(u) for u in donors if movable(int(u), fold[u], per_fold)), None)
            if unit is None:
                break
            source = int(fold[unit])
            fold[unit] = target
            per_fold = table()
            back = np.flatnonzero((fold == target) & (np.arange(len(fold)) != unit))
            back = back[np.lexsort((has[back].sum(1), np.abs(sizes[back] - sizes[unit])))]
            swap = next((int(v) for v in back if movable(int(v), target, per_fold)), None)
            if swap is not None:
                fold[swap] = source


def _refine_balance(counts: np.ndarray, sizes: np.ndarray, fold: np.ndarray,
                    k: int) -> None:
    """Local search on the balance cost (see :func:`stratified_kfold`), in place.

    Each step takes the best improving single-unit move; when none improves, the best
    improving swap of two units between two folds. Moves and swaps that would leave a
    fold without a required class (one held by >= k units) are not considered.
    """
    if not len(fold):
        return
    y = np.concatenate([counts, sizes[:, None]], 1).astype(np.float64)   # (U, C + 1)
    ideal = y.sum(0) / k
    weight = 1.0 / np.maximum(ideal, 1.0)
    weight[-1] *= max(1, counts.shape[1])       # fold sizes weigh as much as all classes
    required = np.append((counts > 0).sum(0) >= k, False)
    has = y > 0
    wy = y * weight
    self_term = 2 * (wy * y).sum(1)                                   # (U,)
    units = np.arange(len(fold))
    for _ in range(4 * len(fold) + 10):
        per_fold = np.zeros((k, y.shape[1]))
        np.add.at(per_fold, fold, y)
        # moving u from fold a to b changes the cost by
        # 2 sum_c w_c y_uc (X_bc - X_ac) + 2 sum_c w_c y_uc^2
        delta = 2 * (wy @ per_fold.T - (wy * per_fold[fold]).sum(1, keepdims=True)) \
            + self_term[:, None]
        delta[units, fold] = np.inf
        sole = ((per_fold[fold] == y) & has & required).any(1)   # only one in its fold
        delta[sole] = np.inf
        best = int(np.argmin(delta))
        unit, target = divmod(best, k)
        if delta[unit, target] < -1e-9:
            fold[unit] = target
            continue
        if not _best_swap(y, wy, self_term, has, required, per_fold, fold, k):
            break


def _best_swap(y: np.ndarray, wy: np.ndarray, self_term: np.ndarray, has: np.ndarray,
               required: np.ndarray, per_fold: np.ndarray, fold: np.ndarray,
               k: int) -> bool:
    """Apply the best improving swap of a unit in fold a with one in fold b, if any.

    With d = y_u - y_v, the cost changes by 2 sum_c w_c d_c (X_bc - X_ac) + 2 sum_c
    w_c d_c^2.
    """
    best, pair = -1e-9, None
    for a in range(k):
        in_a = np.flatnonzero(fold == a)
        for b in range(a + 1, k):
            in_b = np.flatnonzero(fold == b)
            if not len(in_a) or not len(in_b):
                continue
            diff = per_fold[b] - per_fold[a]
            delta = (2 * (wy[in_a] @ diff)[:, None] - 2 * (wy[in_b] @ diff)[None, :]
                     + self_term[in_a][:, None] + self_term[in_b][None, :]
                     - 4 * (wy[in_a] @ y[in_b].T))
            # a required class must keep a unit in each fold: u (v) must not be the sole
            # holder of a class in a (b) that the incoming unit lacks
            sole_a = (per_fold[a] == y[in_a]) & has[in_a] & required
            sole_b = (per_fold[b] == y[in_b]) & has[in_b] & required
            lost = (sole_a.astype(np.int64) @ (~has[in_b]).T.astype(np.int64) > 0) | \
                (sole_b.astype(np.int64) @ (~has[in_a]).T.astype(np.int64) > 0).T
            delta[lost] = np.inf
            i, j = np.unravel_index(int(np.argmin(delta)), delta.shape)
            if delta[i, j] < best:
                best, pair = delta[i, j], (in_a[i], in_b[j], a, b)
    if pair is None:
        return False
    u, v, a, b = pair
    fold[u], fold[v] = b, a
    return True


def fold_summary(presence: np.ndarray, folds: np.ndarray,
                 class_names: Sequence[str]) -> str:
    """A text table: images per fold and, per class, the images showing it per fold."""
    presence = np.asarray(presence).astype(bool)
    k = int(folds.max()) + 1
    width = max([len('images')] + [len(str(n)) for n in class_names])
    head = f"{'':{width}} " + ' '.join(f'fold{j:<3d}' for j in range(k))
    rows = [head, f"{'images':{width}} " + ' '.join(
        f'{int((folds == j).sum()):<7d}' for j in range(k))]
    for c, name in enumerate(class_names):
        rows.append(f'{str(name):{width}} ' + ' '.join(
            f'{int(presence[folds == j, c].sum()):<7d}' for j in range(k)))
    return '\n'.join(rows)


def make_folds(num: int, num_folds: int, seed: int = 0,
               presence: Optional[np.ndarray] = None,
               groups: Optional[Sequence[Hashable]] = None) -> np.ndarray:
    """Fold per image: stratified by ``presence`` when given, grouped by ``groups``
    when given (both: stratified over groups; neither: balanced seeded shuffle)."""
    if presence is None:
        if groups is not None:
            return group_kfold(groups, num_folds, seed)
        presence = np.zeros((num, 0), bool)
    return stratified_kfold(presence, num_folds, seed, groups)
