"""Per-class settings (thresholds, minimum areas): one number for all classes, a list in
class order, or ``{class name: value}``; validated against the class list."""
from __future__ import annotations

from collections.abc import Mapping
from numbers import Number
from typing import Any, Callable, Dict, Sequence, Type

from .errors import ConfigError, MmsegExtError


def per_class_values(spec: Any, classes: Sequence[str], source: str,
                     what: str = 'threshold', lo: float = 0.0, hi: float = 1.0,
                     cast: Callable = float,
                     error: Type[MmsegExtError] = ConfigError) -> Dict[str, Any]:
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
        cast: applied to each value (``float``, ``int``).
        error: the exception type raised (a ``ValueError`` subclass by default).

    Returns:
        ``{class name: value}``.

    Raises:
        error: an unknown class name, a list of the wrong length, a value that is not a
            number or lies outside ``[lo, hi]``.
    """
    if spec is None:
        return {}
    if isinstance(spec, Number) and not isinstance(spec, bool):
        values = {name: spec for name in classes}
    elif isinstance(spec, Mapping):
        unknown = [k for k in spec if k not in classes]
        if unknown:
            raise error(f'{source}: unknown class name(s) {unknown} (classes: '
                        f'{list(classes)})')
        values = dict(spec)
    elif isinstance(spec, (list, tuple)):
        if len(spec) != len(classes):
            raise error(f'{source} has {len(spec)} values but the model has '
                        f'{len(classes)} classes')
        values = dict(zip(classes, spec))
    else:
        raise error(f'{source}: expected a number, a list or a dict, got '
                    f'{type(spec).__name__}')
    out = {}
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, Number):
            raise error(f'{source}: {what} of {name!r} is not a number: {value!r}')
        value = cast(value)
        if not lo <= value <= hi:
            raise error(f'{source}: {what} of {name!r} is {value:g}, outside '
                        f'[{lo:g}, {hi:g}]')
        out[name] = value
    return out
