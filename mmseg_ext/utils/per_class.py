"""Per-class settings (thresholds, minimum areas): one number for all classes, a list in
class order, ``{class name: value}``, or a JSON file of that; validated against the class
list of the data they apply to.

* :func:`per_class_values`: a value from a config (number, list, mapping);
* :func:`per_class_option`: a value as a user gives it to a tool or an API (the above,
  a number as text, or the path of a JSON file ``{class: value}``), resolved by the API
  against the class list of the folder it opens;
* :func:`per_class_document`: the JSON object a tool writes for such a file.

A file written by a tool names what it holds under :data:`KIND_KEY`
(``{"__kind__": "min_area", "heart": 40, ...}``); a reader given it for another setting
(minimum areas as component counts, counts as thresholds) refuses it. Hand-written files
without the key are taken as they are.
"""
from __future__ import annotations

import math
import os.path as osp
from collections.abc import Mapping
from numbers import Number
from typing import Any, Callable, Dict, Sequence, Union

from .errors import ConfigError, DataError, InvalidArgumentError, MmsegExtError
from .readers import INT64_MAX, read_json  # strict: duplicate keys, NaN, huge numbers refused

#: The smallest whole-number setting (int64, as JSON files are read).
INT64_MIN = -INT64_MAX - 1

#: The key under which a per-class file written by a tool names its setting
#: (``'thresholds'``, ``'min_area'``, ``'keep_largest'``, ``'fold_thresholds'``).
KIND_KEY = '__kind__'

#: What :func:`per_class_option` takes.
PerClassSpec = Union[None, float, int, str, Mapping]


def per_class_values(spec: Any, classes: Sequence[str], source: str,
                     what: str = 'threshold', lo: float = 0.0, hi: float = 1.0,
                     cast: Callable = float,
                     error: Callable[[str], MmsegExtError] = ConfigError) -> Dict[str, Any]:
    """Per-class values from ``spec``.

    Args:
        spec: ``None`` (no values), a number (every class), a sequence of
            ``len(classes)`` numbers (class order) or a mapping ``{class name: number}``
            (classes not named get no entry).
        classes: the class names, in channel order.
        source: where ``spec`` came from, starting every message
            (``'test_cfg.threshold'``, a JSON file's path).
        what: the value's name in messages.
        lo, hi: the inclusive range of valid values.
        cast: applied to each value (``float``, ``int``); an ``int`` value must be
            whole and within int64, whether it came from a file, a config or a
            command line.
        error: makes the exception raised from its message (:class:`ConfigError` by
            default).

    Returns:
        ``{class name: value}``.

    Raises:
        error: an unknown class name, a list of the wrong length, a value that is not a
            number or lies outside ``[lo, hi]``.
    """
    if spec is None:
        return {}
    if isinstance(spec, Number) and not isinstance(spec, bool):
        problem = _value_problem(spec, cast, lo, hi)
        if problem:  # one value for every class: no class to name
            raise error(f'{source}: {what} is {spec!r}, {problem}')
        values = {name: spec for name in classes}
    elif isinstance(spec, Mapping):
        unknown = [k for k in spec if k not in classes]
        if unknown:
            raise error(f'{source}: unknown class name(s) {unknown} (classes: '
                        f'{list(classes)})')
        values = dict(spec)
    elif isinstance(spec, (list, tuple)):
        if len(spec) != len(classes):
            raise error(f'{source}: {len(spec)} values, but there are {len(classes)} '
                        f'classes')
        values = dict(zip(classes, spec))
    else:
        raise error(f'{source}: expected a number, a list or a dict, got '
                    f'{type(spec).__name__}')
    out = {}
    for name, value in values.items():
        problem = _value_problem(value, cast, lo, hi)
        if problem:
            raise error(f'{source}: {what} of {name!r} is {value!r}, {problem}')
        out[name] = cast(value)
    return out


def _value_problem(value: Any, cast: Callable, lo: float, hi: float) -> str:
    """Why ``value`` is not a valid setting (``''`` when it is)."""
    if isinstance(value, bool) or not isinstance(value, Number) or not math.isfinite(value):
        return 'not a finite number'
    if cast is int:
        if value != int(value):
            return 'not a whole number'
        if not INT64_MIN <= int(value) <= INT64_MAX:  # the rule of JSON files and options
            return f'beyond int64 (at most {INT64_MAX})'
    if not lo <= cast(value) <= hi:
        return f'outside [{lo:g}, {hi:g}]'
    return ''


def per_class_document(values: Mapping, kind: str) -> dict:
    """The JSON object of a per-class file holding ``values`` for the setting ``kind``
    (its :data:`KIND_KEY` first, then the values in their order)."""
    return {KIND_KEY: kind, **values}


def _without_kind(data: Mapping, kind: str, source: str,
                  error: Callable[[str], MmsegExtError]) -> dict:
    """``data`` less its :data:`KIND_KEY`, which must name ``kind`` when present."""
    if KIND_KEY not in data:
        return dict(data)
    found = data[KIND_KEY]
    if found != kind:
        raise error(f'{source}: holds {found!r} values (its {KIND_KEY!r}), not {kind}: '
                    'was another tuned file given in its place?')
    return {k: v for k, v in data.items() if k != KIND_KEY}


def per_class_option(spec: PerClassSpec, classes: Sequence[str], argument: str,
                     cast: Callable = float, lo: float = 0.0, hi: float = float('inf')
                     ) -> Dict[str, Any]:
    """Per-class values from an API argument or a command-line option.

    Args:
        spec: None (no values), a number or a number as text (every class), a list in
            class order, a mapping ``{class name: value}`` or the path of a JSON file
            holding one (classes not named get no entry).
        classes: the class names of the data the values apply to.
        argument: the parameter's name (``'min_area'``), used in messages.
        cast, lo, hi: as :func:`per_class_values`.

    Raises:
        InvalidArgumentError: a bad number, list or mapping (not finite, not whole for
            ``int``, outside ``[lo, hi]``, an unknown class name, a list of the wrong
            length).
        DataError: a missing or unreadable JSON file, a bad value in it, or a
            :data:`KIND_KEY` naming another setting, naming the file.
    """
    what = argument.replace('_', '-').removesuffix('s')  # thresholds -> threshold
    if spec is None:
        return {}
    if isinstance(spec, bool):
        raise InvalidArgumentError(argument, f'{spec} is not a number')
    if isinstance(spec, (Mapping, list, tuple)):
        def argument_error(message: str) -> InvalidArgumentError:
            return InvalidArgumentError(argument, message[len(argument) + 2:])
        if isinstance(spec, Mapping):
            spec = _without_kind(spec, argument, argument, argument_error)
        return per_class_values(spec, classes, argument, what, lo, hi, cast,
                                error=argument_error)
    value = spec if isinstance(spec, Number) else _number_or_none(spec)
    if value is not None:
        problem = _value_problem(value, cast, lo, hi)
        if problem:
            raise InvalidArgumentError(argument, f'{spec} is {problem}')
        return {c: cast(value) for c in classes}
    values = _without_kind(_read_json_object(str(spec), what), argument, str(spec),
                           DataError)
    return per_class_values(values, classes, str(spec), what, lo, hi, cast,
                            error=DataError)


def _number_or_none(text: Any):
    """The number ``text`` spells (an exact int for whole-number text, so
    ``9223372036854775807`` is not rounded to ``2**63``), else None."""
    for kind in (int, float):
        try:
            return kind(text)
        except (TypeError, ValueError):
            continue
    return None


def _read_json_object(path: str, what: str) -> dict:
    if not osp.lexists(path):
        raise DataError(f'{path}: {what} file not found (expected a number or a JSON file)')
    data = read_json(path, f'{what} file')
    if not isinstance(data, dict):
        raise DataError(f'{path}: expected a JSON object {{class name: {what}}}')
    return data

