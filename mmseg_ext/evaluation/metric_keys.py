"""Per-class metric entries as mmseg and mmengine log them: the ``<metric>.<class>`` key
and its value, checked the same way by every reader (the charts, the validation history).
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

from ..utils.class_names import class_name_problem
from ..utils.errors import DataError

#: The range of a per-class metric value: mmseg writes percentages (IoU 0-100) or
#: fractions (Dice 0-1).
METRIC_MIN, METRIC_MAX = 0.0, 100.0


def split_metric_key(name: str, where: str, metric: Optional[str] = None
                     ) -> Tuple[str, str]:
    """``(metric, class)`` of ``<metric>.<class>`` (``Dice.finger-1``; a class name may hold
    dots; the metric may not, unless it is given as ``metric`` and ``name`` starts with
    ``metric + '.'``). Both parts must be non-empty: ``Dice.`` or ``.x`` names no class
    or no metric, and is a :class:`DataError` naming ``where``; so is a class that
    breaks the class-name rule (:func:`~mmseg_ext.utils.class_names.class_name_problem`:
    ``Dice.a `` beside ``Dice.a`` would chart one class twice)."""
    if metric is not None and name.startswith(metric + '.'):
        cls = name[len(metric) + 1:]
    else:
        metric, _, cls = name.partition('.')
    if not metric.strip() or not cls.strip():
        raise DataError(f'{where}: the key {name!r} names no '
                        f'{"metric" if not metric.strip() else "class"} (keys are '
                        '<metric>.<class>, e.g. "Dice.finger-1")')
    problem = class_name_problem(cls)  # the class-name rule of every class list
    if problem:
        raise DataError(f'{where}: the key {name!r}: {problem}')
    return metric, cls


def metric_value(value, where: str, key: str) -> float:
    """``value`` as a float when it can be a per-class metric: a number (not a bool),
    finite and in ``[METRIC_MIN, METRIC_MAX]``; anything else is a :class:`DataError`
    naming ``where`` and ``key``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DataError(f'{where}: {key!r} is {value!r}, not a number')
    try:
        number = float(value)
    except OverflowError:  # an integer past float range
        number = math.inf
    if not (math.isfinite(number) and METRIC_MIN <= number <= METRIC_MAX):
        raise DataError(f'{where}: {key!r} is {value!r}: a metric is a percentage or a '
                        f'fraction, in [{METRIC_MIN:g}, {METRIC_MAX:g}]')
    return number
