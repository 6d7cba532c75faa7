"""What ``tools/kfold.py`` runs: read a source, make folds, write the split files.

Sources: a COCO file (stratified by category presence), an image folder with or without
label PNGs (stratified by the label values present), a hand-bone root (grouped by
patient). The fold algorithms are in :mod:`mmseg_ext.datasets.splits`; the files are
written all-or-none through :func:`mmseg_ext.io.file_sets.atomic_write_files`.

Outputs in ``out_dir``: ``train_fold{j}`` / ``val_fold{j}`` for every fold (``.json``
COCO files for COCO sources, ``.txt`` lists otherwise) and ``folds.csv``
(``name,group,fold``).

The drivers (:func:`kfold_coco`, :func:`kfold_folder`, :func:`kfold_handbone`) own
``out_dir`` through its manifest (:func:`mmseg_ext.io.owned_files.write_owned_files`):
``force`` replaces only split files this tool wrote and nobody changed since, removes
its stale files of an earlier run (another ``k``, another format) in the same commit,
and a folder holding files it did not write is refused.
"""
from __future__ import annotations

import json
import os.path as osp
import re
from typing import Dict, Hashable, List, Optional, Sequence, Tuple

import numpy as np

from ..datasets.coco_index import load_coco_json
from ..datasets.splits import fold_summary, make_folds, select_fold
from ..io.file_sets import atomic_write_files
from ..io.hand_bone_json import check_annotations_have_images
from ..io.images import check_label_map, image_size, list_images, read_label_map
from ..io.owned_files import write_owned_files
from ..utils.errors import DataError, InvalidArgumentError
from ..utils.readers import check_folder

# --------------------------------------------------------------------------------------
# sources
# --------------------------------------------------------------------------------------


def coco_presence(coco: dict, where: str = 'COCO json'
                  ) -> Tuple[List[str], np.ndarray, List[str]]:
    """Image file names (file order), class presence and category names of a COCO dict.

    Classes are the categories in id order; crowd annotations count as presence. Image
    ids and file names must be unique, file names relative and inside the image root,
    and every annotation must name a listed image and category (as ``coco_to_masks``
    requires), so the folds split the images the data set really has.

    Returns:
        ``(file_names, presence (N, C) bool, category_names)``.

    Raises:
        DataError: naming ``where`` and the first offending entry.
    """
    from ..datasets.coco_index import check_categories, check_coco_structure, id_type_hint
    from ..io.paths import data_relpath
    check_coco_structure(coco, where)
    check_categories(coco, where, background_name=None)  # ids and names once each
    categories = sorted(coco.get('categories', []), key=lambda c: c['id'])  # whole numbers
    column = {c['id']: j for j, c in enumerate(categories)}
    row: Dict[Hashable, int] = {}
    seen_names: Dict[str, Hashable] = {}
    for i, img in enumerate(coco['images']):
        if img['id'] in row:
            raise DataError(f'{where}: image id {img["id"]} appears twice')
        name = data_relpath(img['file_name'], f'{where}: image id {img["id"]} file_name')
        if name in seen_names:
            raise DataError(f'{where}: images {seen_names[name]} and {img["id"]} have the '
                            f'same file_name {name}')
        row[img['id']], seen_names[name] = i, img['id']
    presence = np.zeros((len(row), len(column)), bool)
    for ann in coco.get('annotations', []):
        if ann.get('image_id') not in row:
            raise DataError(f'{where}: annotation {ann.get("id")} names image id '
                            f'{ann.get("image_id")!r}, which is not in images'
                            f'{id_type_hint(ann.get("image_id"), row, "image")}')
        if ann.get('category_id') not in column:
            raise DataError(f'{where}: annotation {ann.get("id")} names category id '
                            f'{ann.get("category_id")!r}, which is not in categories'
                            f'{id_type_hint(ann.get("category_id"), column, "category")}')
        presence[row[ann['image_id']], column[ann['category_id']]] = True
    return ([img['file_name'] for img in coco['images']], presence,
            [c['name'] for c in categories])


def label_presence(seg_paths: Sequence[str], ignore_index: int = 255,
                   progress: bool = False, img_paths: Optional[Sequence[str]] = None
                   ) -> Tuple[np.ndarray, List[int]]:
    """Class presence from label PNGs: ``(N, C)`` bool over the values seen, and them.

    Pixels equal to ``ignore_index`` are not a class. Each label map is checked as the
    training loader checks it (:func:`~mmseg_ext.io.images.check_label_map`: values in
    0..255 and, with ``img_paths``, the size of its image), so a split is never
    stratified by labels that training refuses.
    """
    from tqdm import tqdm
    seen: List[np.ndarray] = []
    img_paths = list(img_paths) if img_paths is not None else [None] * len(seg_paths)
    for path, img in tqdm(list(zip(seg_paths, img_paths)), desc='reading labels',
                          disable=not progress, unit='img'):
        label = check_label_map(read_label_map(path), path,
                                image_size(img) if img else None, img)
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
    searched in the name. A name it does not match, or matches with an empty key, is an
    error (an empty key would put every such image into one group)."""
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
        key = match.group(1) if regex.groups else match.group(0)
        if not key:  # an optional group that took no part, or an empty match
            raise DataError(f'{name}: the group pattern {pattern!r} matches it with an '
                            'empty group key; make the pattern capture the group name')
        keys.append(key)
    return keys


def handbone_images(root: str) -> Tuple[List[str], List[str]]:
    """Hand-bone images under ``root/DCM`` as stems (``ID001/image..._R``), and their
    patient folders (the group key)."""
    dcm = osp.join(root, 'DCM')
    if not osp.isdir(dcm):
        raise DataError(f'{dcm}: not found (expected a hand-bone root with DCM/IDxxx/*.png)')
    names = list_images(dcm, ('.png',))
    if not names:
        raise DataError(f'{dcm}: no .png images')
    stems = [n[:-len('.png')] for n in names]
    groups = [s.split('/')[0] if '/' in s else '' for s in stems]
    return stems, groups


# --------------------------------------------------------------------------------------
# split files
# --------------------------------------------------------------------------------------

#: the owner name recorded in the manifest of a split folder the drivers write
TOOL = 'kfold'


def _publish(out_dir: str, texts: Dict[str, str], force: bool,
             owner: Optional[str]) -> List[str]:
    """All-or-none publish of ``texts``; with ``owner``, as that tool's files of
    ``out_dir`` (:func:`~mmseg_ext.io.owned_files.write_owned_files`), else plainly
    (for a caller that owns ``out_dir`` itself, e.g. the cv work directory)."""
    if owner is not None:
        return write_owned_files(out_dir, owner, texts, force)
    return atomic_write_files(texts, force)


def split_paths(out_dir: str, num_folds: int, ext: str) -> List[str]:
    """``train_fold{j}{ext}`` and ``val_fold{j}{ext}`` for every fold, then ``folds.csv``."""
    paths = []
    for j in range(num_folds):
        paths += [osp.join(out_dir, f'train_fold{j}{ext}'),
                  osp.join(out_dir, f'val_fold{j}{ext}')]
    return paths + [osp.join(out_dir, 'folds.csv')]


def folds_csv(names: Sequence[str], folds: np.ndarray,
              groups: Optional[Sequence[Hashable]] = None) -> str:
    """The text of ``folds.csv``: ``name,group,fold`` per image."""
    lines = ['name,group,fold'] + [
        f'{_csv(n)},{_csv(str(groups[i])) if groups is not None else ""},{int(folds[i])}'
        for i, n in enumerate(names)]
    return '\n'.join(lines) + '\n'


def _csv(value: str) -> str:
    return f'"{value}"' if any(c in value for c in ',"\n') else value


def write_list_splits(out_dir: str, names: Sequence[str], folds: np.ndarray,
                      groups: Optional[Sequence[Hashable]] = None,
                      force: bool = False, num_folds: Optional[int] = None,
                      owner: Optional[str] = None) -> List[str]:
    """Write ``train_fold{j}.txt``/``val_fold{j}.txt`` (one name per line) + folds.csv
    for ``num_folds`` folds (default: the largest fold number + 1); ``owner``: see
    :func:`_publish`."""
    num_folds = int(folds.max()) + 1 if num_folds is None else num_folds
    paths = split_paths(out_dir, num_folds, '.txt')
    texts: Dict[str, str] = {}
    for j in range(num_folds):
        for subset, path in (('train', paths[2 * j]), ('val', paths[2 * j + 1])):
            texts[path] = ''.join(f'{names[i]}\n' for i in select_fold(folds, j, subset))
    texts[paths[-1]] = folds_csv(names, folds, groups)
    return _publish(out_dir, texts, force, owner)


def write_coco_splits(out_dir: str, coco: dict, folds: np.ndarray,
                      groups: Optional[Sequence[Hashable]] = None,
                      force: bool = False, lists: bool = False,
                      owner: Optional[str] = None) -> List[str]:
    """Write ``train_fold{j}.json``/``val_fold{j}.json``: complete COCO files (info,
    licenses, categories kept; images and their annotations in file order) + folds.csv.

    ``lists=True`` also writes ``*.txt`` image lists (COCO ``file_name`` per line).
    """
    num_folds = int(folds.max()) + 1
    paths = split_paths(out_dir, num_folds, '.json')
    txt = split_paths(out_dir, num_folds, '.txt')[:-1] if lists else []
    names = [img['file_name'] for img in coco['images']]
    anns = coco.get('annotations', [])
    texts: Dict[str, str] = {}
    for j in range(num_folds):
        for offset, subset in ((0, 'train'), (1, 'val')):
            chosen = {coco['images'][i]['id'] for i in select_fold(folds, j, subset)}
            part = {key: value for key, value in coco.items()
                    if key not in ('images', 'annotations')}
            part['images'] = [img for img in coco['images'] if img['id'] in chosen]
            part['annotations'] = [a for a in anns if a.get('image_id') in chosen]
            texts[paths[2 * j + offset]] = json.dumps(part)
            if lists:
                texts[txt[2 * j + offset]] = ''.join(
                    f"{img['file_name']}\n" for img in part['images'])
    texts[paths[-1]] = folds_csv(names, folds, groups)
    return _publish(out_dir, texts, force, owner)


# --------------------------------------------------------------------------------------
# drivers: source -> folds -> split files (+ a printable summary)
# --------------------------------------------------------------------------------------

def kfold_coco(ann_file: str, out_dir: str, num_folds: int = 5, seed: int = 0,
               group_regex: Optional[str] = None, lists: bool = False,
               force: bool = False) -> Tuple[List[str], str]:
    """Per-fold ``train_fold{j}.json`` / ``val_fold{j}.json`` COCO files of ``ann_file``,
    stratified by category presence (grouped by ``group_regex`` on ``file_name``).

    Returns ``(written paths, summary table)``.
    """
    coco = load_coco_json(ann_file)
    names, presence, class_names = coco_presence(coco, ann_file)
    if not names:
        raise DataError(f'{ann_file}: no images')
    if lists:  # the file names become lines of the .txt lists
        check_split_names(names, names, ann_file)
    groups = groups_from_regex(names, group_regex) if group_regex else None
    folds = _folds(ann_file, len(names), num_folds, seed, presence, groups)
    paths = write_coco_splits(out_dir, coco, folds, groups, force=force, lists=lists,
                              owner=TOOL)
    return paths, fold_summary(presence, folds, class_names)


def kfold_folder(img_dir: str, out_dir: str, num_folds: int = 5, seed: int = 0,
                 seg_dir: Optional[str] = None, img_suffix: str = '.jpg',
                 seg_suffix: str = '.png', ignore_index: int = 255,
                 group_regex: Optional[str] = None, force: bool = False,
                 progress: bool = True) -> Tuple[List[str], str]:
    """``train_fold{j}.txt`` / ``val_fold{j}.txt`` of image stems (mmseg ``ann_file``
    convention: the path under ``img_dir`` without ``img_suffix``), stratified by the
    label values present when ``seg_dir`` is given."""
    names = list_images(img_dir, (img_suffix,))
    if not names:
        raise DataError(f'{img_dir}: no *{img_suffix} images')
    stems = [n[:-len(img_suffix)] for n in names]
    check_split_names(stems, names, img_dir)
    presence, class_names = None, []
    if seg_dir is not None:
        check_folder(seg_dir, 'label folder', DataError)
        presence, values = label_presence(
            [osp.join(seg_dir, s + seg_suffix) for s in stems], ignore_index, progress,
            [osp.join(img_dir, n) for n in names])
        class_names = [f'class {v}' for v in values]
    groups = groups_from_regex(names, group_regex) if group_regex else None
    folds = _folds(img_dir, len(stems), num_folds, seed, presence, groups)
    paths = write_list_splits(out_dir, stems, folds, groups, force=force, owner=TOOL)
    shown = presence if presence is not None else np.zeros((len(stems), 0), bool)
    return paths, fold_summary(shown, folds, class_names)


def kfold_handbone(root: str, out_dir: str, num_folds: int = 5, seed: int = 0,
                   force: bool = False) -> Tuple[List[str], str]:
    """``train_fold{j}.txt`` / ``val_fold{j}.txt`` of hand-bone image stems under
    ``root/DCM`` (``ID001/image..._R``), grouped by patient folder with
    :func:`~mmseg_ext.datasets.splits.group_kfold` (every image shows all classes:
    nothing to stratify)."""
    stems, groups = handbone_images(root)
    check_split_names(stems, [s + '.png' for s in stems], osp.join(root, 'DCM'))
    if osp.isdir(osp.join(root, 'outputs_json')):
        check_annotations_have_images(osp.join(root, 'DCM'), osp.join(root, 'outputs_json'))
    folds = _folds(root, len(stems), num_folds, seed, None, groups)
    paths = write_list_splits(out_dir, stems, folds, groups, force=force, owner=TOOL)
    return paths, fold_summary(np.zeros((len(stems), 0), bool), folds, [])


def check_split_names(names: Sequence[str], files: Sequence[str], where: str) -> None:
    """Refuse names that split files cannot hold: two images with one name (``a.jpg``
    and ``a.JPG`` have the stem ``a``), a name that is another image's file name (the
    stem ``a.jpg`` of ``a.jpg.jpg`` beside ``a.jpg``), or a name that does not read back
    as itself (:func:`~mmseg_ext.utils.readers.list_entry_problem`).

    Raises:
        DataError: naming ``where`` and the image file(s).
    """
    from ..utils.readers import list_entry_problem
    seen: Dict[str, str] = {}
    all_files = set(files)
    for name, path in zip(names, files):
        if name in all_files and name != path:  # a.jpg.jpg's name is the file a.jpg
            raise DataError(f'{where}: the split name {name!r} of image {path} is the file '
                            f'name of another image (a list reader could not tell them '
                            'apart): rename one')
        problem = list_entry_problem(name)
        if problem:
            raise DataError(f'{where}: image {path!r}: its split name {name!r} {problem}; '
                            'a split file holds one name a line: rename the image')
        if name in seen:
            raise DataError(f'{where}: images {seen[name]} and {path} have one split name '
                            f'{name!r} (a split file could not tell them apart): rename '
                            'one')
        seen[name] = path


def _folds(source: str, num: int, num_folds: int, seed: int,
           presence: Optional[np.ndarray],
           groups: Optional[Sequence[Hashable]]) -> np.ndarray:
    try:
        return make_folds(num, num_folds, seed, presence, groups)
    except ValueError as exc:
        raise DataError(f'{source}: {exc}') from None
