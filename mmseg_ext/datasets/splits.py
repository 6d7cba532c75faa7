"""Deterministic k-fold splits: grouped (patients, scenes), stratified by class presence.

Used by the datasets (``fold`` / ``num_folds`` arguments) and by ``tools/kfold.py``,
whose split files the datasets read (``ann_file`` / ``split_file``).
"""
from __future__ import annotations

import json
import os
import os.path as osp
import re
from typing import Dict, Hashable, List, Optional, Sequence, Tuple

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
        raise ValueError(f'presence must be (N, C), got shape {presence.shape}')
    num = len(presence)
    if groups is None:
        unit_of = np.arange(num)
    else:
        keys = list(groups)
        if len(keys) != num:
            raise ValueError(f'{len(keys)} groups for {num} images')
        unique = sorted(set(keys), key=str)
        position = {g: i for i, g in enumerate(unique)}
        unit_of = np.array([position[g] for g in keys], dtype=np.int64)
    num_units = int(unit_of.max()) + 1 if num else 0
    if num_folds < 2:
        raise ValueError(f'num_folds must be >= 2, got {num_folds}')
    if num_folds > num_units:
        raise ValueError(f'num_folds={num_folds} is larger than the number of '
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


# --------------------------------------------------------------------------------------
# Split sources (COCO file, image/label folders, hand-bone root) and split files
# --------------------------------------------------------------------------------------

def coco_presence(coco: dict) -> Tuple[List[str], np.ndarray, List[str]]:
    """Image file names (file order), class presence and category names of a COCO dict.

    Classes are the categories in id order; crowd annotations count as presence.

    Returns:
        ``(file_names, presence (N, C) bool, category_names)``.
    """
    categories = sorted(coco.get('categories', []), key=lambda c: c['id'])
    column = {c['id']: j for j, c in enumerate(categories)}
    row = {img['id']: i for i, img in enumerate(coco['images'])}
    presence = np.zeros((len(row), len(column)), bool)
    for ann in coco.get('annotations', []):
        if ann.get('image_id') in row and ann.get('category_id') in column:
            presence[row[ann['image_id']], column[ann['category_id']]] = True
    return ([img['file_name'] for img in coco['images']], presence,
            [c['name'] for c in categories])


def list_images(img_dir: str, suffix: str) -> List[str]:
    """Relative paths of the ``*suffix`` files under ``img_dir`` (recursive, sorted)."""
    found = []
    for base, _, files in os.walk(img_dir):
        for name in files:
            if name.endswith(suffix):
                found.append(osp.relpath(osp.join(base, name), img_dir).replace(os.sep, '/'))
    return sorted(found)


def label_presence(seg_paths: Sequence[str], ignore_index: int = 255,
                   progress: bool = False) -> Tuple[np.ndarray, List[int]]:
    """Class presence from label PNGs: ``(N, C)`` bool over the values seen, and them.

    Pixels equal to ``ignore_index`` are not a class.
    """
    import cv2
    from tqdm import tqdm
    seen: List[np.ndarray] = []
    for path in tqdm(seg_paths, desc='reading labels', disable=not progress, unit='img'):
        label = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if label is None:
            raise DataError(f'{path}: label file missing or unreadable')
        if label.ndim != 2:
            raise DataError(f'{path}: label map must be single-channel, got shape '
                            f'{label.shape}')
        values = np.unique(label)
        seen.append(values[values != ignore_index])
    values = sorted({int(v) for vals in seen for v in vals})
    column = {v: j for j, v in enumerate(values)}
    presence = np.zeros((len(seg_paths), len(values)), bool)
    for i, vals in enumerate(seen):
        presence[i, [column[int(v)] for v in vals]] = True
    return presence, values


def groups_from_regex(names: Sequence[str], pattern: str) -> List[str]:
    """Group key per name: the first capture group of ``pattern`` (or the whole match),
    searched in the name. A name it does not match is an error."""
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise InvalidArgumentError('group_regex', f'{pattern!r} is not a valid regular '
                                   f'expression ({exc})') from None
    keys = []
    for name in names:
        match = regex.search(name)
        if match is None:
            raise DataError(f'{name}: does not match the group pattern {pattern!r}')
        keys.append(match.group(1) if regex.groups else match.group(0))
    return keys


def handbone_images(root: str) -> Tuple[List[str], List[str]]:
    """Hand-bone images under ``root/DCM`` as stems (``ID001/image..._R``), and their
    patient folders (the group key)."""
    dcm = osp.join(root, 'DCM')
    if not osp.isdir(dcm):
        raise DataError(f'{dcm}: not found (expected a hand-bone root with DCM/IDxxx/*.png)')
    names = list_images(dcm, '.png')
    if not names:
        raise DataError(f'{dcm}: no .png images')
    stems = [n[:-len('.png')] for n in names]
    groups = [s.split('/')[0] if '/' in s else '' for s in stems]
    return stems, groups


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


def split_paths(out_dir: str, num_folds: int, ext: str) -> List[str]:
    """``train_fold{j}{ext}`` and ``val_fold{j}{ext}`` for every fold, then ``folds.csv``."""
    paths = []
    for j in range(num_folds):
        paths += [osp.join(out_dir, f'train_fold{j}{ext}'),
                  osp.join(out_dir, f'val_fold{j}{ext}')]
    return paths + [osp.join(out_dir, 'folds.csv')]


def refuse_overwrite(paths: Sequence[str], force: bool) -> None:
    """Raise a one-line DataError when an output exists and ``force`` is off."""
    if force:
        return
    existing = [p for p in paths if osp.exists(p)]
    if existing:
        raise DataError(f'{existing[0]}: exists ({len(existing)} of the split files do); '
                        'pass --force to overwrite')


def write_text_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    tmp = f'{path}.tmp{os.getpid()}'
    with open(tmp, 'w', encoding='utf-8') as f:
        f.write(text)
    os.replace(tmp, path)


def write_folds_csv(path: str, names: Sequence[str], folds: np.ndarray,
                    groups: Optional[Sequence[Hashable]] = None) -> None:
    lines = ['name,group,fold'] + [
        f'{_csv(n)},{_csv(str(groups[i])) if groups is not None else ""},{int(folds[i])}'
        for i, n in enumerate(names)]
    write_text_atomic(path, '\n'.join(lines) + '\n')


def _csv(value: str) -> str:
    return f'"{value}"' if any(c in value for c in ',"\n') else value


def write_list_splits(out_dir: str, names: Sequence[str], folds: np.ndarray,
                      groups: Optional[Sequence[Hashable]] = None,
                      force: bool = False) -> List[str]:
    """Write ``train_fold{j}.txt``/``val_fold{j}.txt`` (one name per line) + folds.csv."""
    num_folds = int(folds.max()) + 1
    paths = split_paths(out_dir, num_folds, '.txt')
    refuse_overwrite(paths, force)
    for j in range(num_folds):
        for subset, path in (('train', paths[2 * j]), ('val', paths[2 * j + 1])):
            chosen = select_fold(folds, j, subset)
            write_text_atomic(path, ''.join(f'{names[i]}\n' for i in chosen))
    write_folds_csv(paths[-1], names, folds, groups)
    return paths


def write_coco_splits(out_dir: str, coco: dict, folds: np.ndarray,
                      groups: Optional[Sequence[Hashable]] = None,
                      force: bool = False, lists: bool = False) -> List[str]:
    """Write ``train_fold{j}.json``/``val_fold{j}.json``: complete COCO files (info,
    licenses, categories kept; images and their annotations in file order) + folds.csv.

    ``lists=True`` also writes ``*.txt`` image lists (COCO ``file_name`` per line).
    """
    num_folds = int(folds.max()) + 1
    paths = split_paths(out_dir, num_folds, '.json')
    txt = split_paths(out_dir, num_folds, '.txt')[:-1] if lists else []
    refuse_overwrite(paths + txt, force)
    names = [img['file_name'] for img in coco['images']]
    anns = coco.get('annotations', [])
    for j in range(num_folds):
        for offset, subset in ((0, 'train'), (1, 'val')):
            chosen = {coco['images'][i]['id'] for i in select_fold(folds, j, subset)}
            part = {key: value for key, value in coco.items()
                    if key not in ('images', 'annotations')}
            part['images'] = [img for img in coco['images'] if img['id'] in chosen]
            part['annotations'] = [a for a in anns if a.get('image_id') in chosen]
            write_text_atomic(paths[2 * j + offset], json.dumps(part))
            if lists:
                write_text_atomic(txt[2 * j + offset], ''.join(
                    f"{img['file_name']}\n" for img in part['images']))
    write_folds_csv(paths[-1], names, folds, groups)
    return paths + txt


# --------------------------------------------------------------------------------------
# What tools/kfold.py runs: source -> folds -> split files (+ a printable summary)
# --------------------------------------------------------------------------------------

def kfold_coco(ann_file: str, out_dir: str, num_folds: int = 5, seed: int = 0,
               group_regex: Optional[str] = None, lists: bool = False,
               force: bool = False) -> Tuple[List[str], str]:
    """Per-fold ``train_fold{j}.json`` / ``val_fold{j}.json`` COCO files of ``ann_file``,
    stratified by category presence (grouped by ``group_regex`` on ``file_name``).

    Returns ``(written paths, summary table)``.
    """
    from .coco_index import load_coco_json
    coco = load_coco_json(ann_file)
    names, presence, class_names = coco_presence(coco)
    if not names:
        raise DataError(f'{ann_file}: no images')
    groups = groups_from_regex(names, group_regex) if group_regex else None
    folds = _folds_or_user_error(ann_file, len(names), num_folds, seed, presence, groups)
    paths = write_coco_splits(out_dir, coco, folds, groups, force=force, lists=lists)
    return paths, fold_summary(presence, folds, class_names)


def kfold_folder(img_dir: str, out_dir: str, num_folds: int = 5, seed: int = 0,
                 seg_dir: Optional[str] = None, img_suffix: str = '.jpg',
                 seg_suffix: str = '.png', ignore_index: int = 255,
                 group_regex: Optional[str] = None, force: bool = False,
                 progress: bool = True) -> Tuple[List[str], str]:
    """``train_fold{j}.txt`` / ``val_fold{j}.txt`` of image stems (mmseg ``ann_file``
    convention: the path under ``img_dir`` without ``img_suffix``), stratified by the
    label values present when ``seg_dir`` is given."""
    if not osp.isdir(img_dir):
        raise DataError(f'{img_dir}: image folder not found')
    names = list_images(img_dir, img_suffix)
    if not names:
        raise DataError(f'{img_dir}: no *{img_suffix} images')
    stems = [n[:-len(img_suffix)] for n in names]
    presence, class_names = None, []
    if seg_dir is not None:
        if not osp.isdir(seg_dir):
            raise DataError(f'{seg_dir}: label folder not found')
        presence, values = label_presence(
            [osp.join(seg_dir, s + seg_suffix) for s in stems], ignore_index, progress)
        class_names = [f'class {v}' for v in values]
    groups = groups_from_regex(names, group_regex) if group_regex else None
    folds = _folds_or_user_error(img_dir, len(stems), num_folds, seed, presence, groups)
    paths = write_list_splits(out_dir, stems, folds, groups, force=force)
    shown = presence if presence is not None else np.zeros((len(stems), 0), bool)
    return paths, fold_summary(shown, folds, class_names)


def kfold_handbone(root: str, out_dir: str, num_folds: int = 5, seed: int = 0,
                   force: bool = False) -> Tuple[List[str], str]:
    """``train_fold{j}.txt`` / ``val_fold{j}.txt`` of hand-bone image stems under
    ``root/DCM`` (``ID001/image..._R``), grouped by patient folder with
    :func:`group_kfold` (every image shows all classes: nothing to stratify)."""
    stems, groups = handbone_images(root)
    folds = _folds_or_user_error(root, len(stems), num_folds, seed, None, groups)
    paths = write_list_splits(out_dir, stems, folds, groups, force=force)
    return paths, fold_summary(np.zeros((len(stems), 0), bool), folds, [])


def _folds_or_user_error(source: str, num: int, num_folds: int, seed: int,
                         presence: Optional[np.ndarray],
                         groups: Optional[Sequence[Hashable]]) -> np.ndarray:
    try:
        return make_folds(num, num_folds, seed, presence, groups)
    except ValueError as exc:
        raise DataError(f'{source}: {exc}') from None
