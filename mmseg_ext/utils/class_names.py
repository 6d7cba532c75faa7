"""The class lists and palettes of the competitions, in one place.

Imports only numpy, so the file-format layer (``io``), the data sets, the synthetic
generators and the tools can all use them without pulling in torch or mmseg. The
configs under ``custom_configs/_base_/datasets`` repeat the lists as plain data (config
files stay readable on their own); ``tests/utils/test_class_names.py`` keeps them equal.
"""
from __future__ import annotations

import unicodedata
from typing import Any, List, Tuple

import numpy as np

from .errors import DataError, InvalidArgumentError


def random_palette(n: int, seed: int = 29) -> List[List[int]]:
    """``n`` reproducible ``[R, G, B]`` colours in [40, 255] (the hand-bone rule: seed 29
    gives the 29 hand-bone colours; other seeds give colours for other class lists)."""
    rng = np.random.default_rng(seed)
    return rng.integers(40, 256, size=(n, 3)).tolist()


#: The 29 hand-bone classes, in the order of the competition's submission file.
HAND_BONE_CLASSES: Tuple[str, ...] = tuple(f'finger-{i}' for i in range(1, 20)) + (
    'Trapezium', 'Trapezoid', 'Capitate', 'Hamate', 'Scaphoid', 'Lunate', 'Triquetrum',
    'Pisiform', 'Radius', 'Ulna')
HAND_BONE_PALETTE: List[List[int]] = random_palette(len(HAND_BONE_CLASSES))

#: Recycling trash: background + 10 categories, in the submission's class-id order.
TRASH_CLASSES: Tuple[str, ...] = (
    'Background', 'General trash', 'Paper', 'Paper pack', 'Metal', 'Glass', 'Plastic',
    'Styrofoam', 'Plastic bag', 'Battery', 'Clothing')
TRASH_PALETTE: List[List[int]] = [
    [0, 0, 0], [192, 0, 128], [0, 128, 192], [0, 128, 64], [128, 0, 0], [64, 0, 128],
    [64, 0, 192], [192, 128, 64], [192, 192, 128], [64, 64, 128], [128, 0, 192]]

#: Port structures: background + 4 object classes.
PORT_CLASSES: Tuple[str, ...] = (
    'background', 'container_truck', 'forklift', 'reach_stacker', 'ship')
PORT_PALETTE: List[List[int]] = [
    [0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200]]


# ------------------------------------------------------------------ the rule for names
def class_name_problem(name: Any) -> str:
    """Why ``name`` cannot be a class name, in words (``''`` when it can): a class name
    is non-empty text without control characters (a line break would split a CSV row)
    and without leading or trailing white space (a CSV reader strips it)."""
    if not isinstance(name, str):
        return f'{name!r} is not text'
    if not name:
        return 'a class name is empty'
    if any(unicodedata.category(ch) in ('Cc', 'Cf', 'Zl', 'Zp') for ch in name):
        return f'{name!r} holds a control character'
    if name != name.strip():
        return f'{name!r} starts or ends with white space'
    return ''


def class_list_problem(names: Any) -> str:
    """Why ``names`` cannot be a class list, in words (``''`` when it can): a non-empty
    list of distinct class names (:func:`class_name_problem`)."""
    if isinstance(names, (str, bytes)) or not isinstance(names, (list, tuple)):
        return f'the classes are not a list of names (got {type(names).__name__})'
    if not names:
        return 'the class list is empty'
    seen = set()
    for i, name in enumerate(names):
        problem = class_name_problem(name)
        if problem:
            return f'class {i}: {problem}'
        if name in seen:
            return f'class {name!r} appears twice (class names must be distinct)'
        seen.add(name)
    return ''


def check_class_names(names: Any, where: str) -> Tuple[str, ...]:
    """``names`` as a tuple, refused unless it is a non-empty list of distinct class
    names (:func:`class_list_problem`). The one rule for every class list that enters:
    probability files and folders, their writer, and class-list options and files.

    Raises:
        DataError: ``'<where>: <problem>'``.
    """
    problem = class_list_problem(names)
    if problem:
        raise DataError(f'{where}: {problem}')
    return tuple(names)


def check_class_names_argument(names: Any, argument: str) -> Tuple[str, ...]:
    """:func:`check_class_names` for a class list a caller passes as a function argument
    (a tool's class-list option): the problem is an
    :class:`~mmseg_ext.utils.errors.InvalidArgumentError` of ``argument``.

    Raises:
        InvalidArgumentError: ``argument`` and the problem.
    """
    problem = class_list_problem(names)
    if problem:
        raise InvalidArgumentError(argument, problem)
    return tuple(names)


# ------------------------------------------------------------------ left and right
_SIDES = {'left': 'right', 'right': 'left', 'l': 'r', 'r': 'l', 'lt': 'rt', 'rt': 'lt'}


def _tokens(name: str) -> List[str]:
    import re
    return [t for t in re.split(r'([_\-\s.]+)', name) if t != '']


def mirror_name(name: str) -> str:
    """``name`` with its side word swapped (``left_lung`` -> ``right_lung``,
    ``L-clavicle`` -> ``R-clavicle``), or ``''`` when it names no side. A side is a
    whole word (``left``, ``right``, ``l``, ``r``, ``lt``, ``rt``, any case) separated
    by ``_``, ``-``, ``.`` or a space, or the ``left``/``right`` prefix of a camel-case
    name (``LeftLung``)."""
    parts = _tokens(name)
    for i, part in enumerate(parts):
        other = _SIDES.get(part.lower())
        if other is not None:
            if part.isupper():
                other = other.upper()
            elif part[:1].isupper():
                other = other.capitalize()
            return ''.join(parts[:i] + [other] + parts[i + 1:])
    for word in ('left', 'right'):
        if name.lower().startswith(word) and name[len(word):len(word) + 1].isupper():
            other = _SIDES[word]
            head = other.capitalize() if name[:1].isupper() else other
            return head + name[len(word):]
    return ''


def lateral_pairs(classes) -> List[Tuple[str, str]]:
    """The pairs of ``classes`` that are each other's mirror image (by name), each pair
    once, in class order: ``[('right_lung', 'left_lung'), ...]``."""
    names = list(classes)
    present = set(names)
    pairs, seen = [], set()
    for name in names:
        other = mirror_name(name)
        if other and other in present and name not in seen:
            pairs.append((name, other))
            seen.update((name, other))
    return pairs


def class_pair_indices(pairs, classes, where: str) -> Tuple[Tuple[int, int], ...]:
    """Channel index pairs of ``pairs`` of class names.

    Raises:
        ValueError: a name is not one of ``classes``, or a class is in two pairs.
    """
    index = {c: i for i, c in enumerate(classes)}
    out, used = [], set()
    for pair in pairs or ():
        if len(pair) != 2:
            raise DataError(f'{where}: {pair!r} is not a pair of class names')
        for name in pair:
            if name not in index:
                raise DataError(f'{where}: {name!r} is not one of the classes '
                                 f'{tuple(classes)}')
            if name in used:
                raise DataError(f'{where}: {name!r} is in two pairs')
            used.add(name)
        out.append((index[pair[0]], index[pair[1]]))
    return tuple(out)
