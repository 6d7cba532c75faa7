"""Every validation of a training run, per class: how each class's metric moved.

mmengine's ``LoggerHook`` writes one JSON object per logged step to
``<work_dir>/<timestamp>/vis_data/scalars.json``; the lines of a validation hold the
metric keys (``mDice``, ``Dice.<class>`` for
:class:`~mmseg_ext.evaluation.MultiLabelDiceMetric`, ``IoU.<class>`` for mmseg's
``IoUMetric``) and ``step``, the training iteration it followed. This module reads them
back in order, so a class that is learnt late (its Dice still 0 at the 0.5 threshold
while the others rose) can be told from one that never moves.
"""
from __future__ import annotations

import glob
import os.path as osp
from dataclasses import dataclass
from typing import Dict, List

from ..utils.errors import DataError
from ..utils.readers import check_regular_file, loads_json, read_text
from .metric_keys import metric_value, split_metric_key


@dataclass
class Validation:
    """One validation: the iteration it followed and its per-class values."""
    step: int
    values: Dict[str, float]


def scalars_file(path: str) -> str:
    """``path`` itself when it is a file, else the newest run's ``scalars.json`` under
    the work dir ``path`` (``<timestamp>/vis_data/scalars.json``, by timestamp name)."""
    if not osp.exists(path):
        raise DataError(f'{path}: not found (a work dir of tools/train.py, or its '
                        'scalars.json)')
    if not osp.isdir(path):
        check_regular_file(path, 'scalars file')  # a FIFO or device is named, not read
        return path
    found = sorted(glob.glob(osp.join(glob.escape(path), '*', 'vis_data', 'scalars.json')))
    if not found:
        raise DataError(f'{path}: no <timestamp>/vis_data/scalars.json (a work dir of '
                        'tools/train.py, or the file itself)')
    return found[-1]


def validation_history(path: str, metric: str = 'Dice') -> List[Validation]:
    """The validations of ``path`` (a scalars file or a work dir, :func:`scalars_file`),
    in file order: ``Validation(step, {class: value})`` for every line holding
    ``<metric>.<class>`` keys.

    A record logs its metric on one scale, fractions (Dice in [0, 1]) or percentages
    (mmseg's IoU in [0, 100]), and the values alone cannot tell a percentage among
    fractions from an early percentage run (``IoU.sky`` 40, the other classes below 1).
    Where the record also logs its mean (``m<metric>``, which mmseg's and mmseg_ext's
    metrics log as the mean of the class values), the class values must give that mean
    (within 0.011, the rounding of percentages to 2 decimals): a value off the record's
    scale, or edited, breaks it and is refused by name.

    Raises:
        DataError: a line that is not JSON, a key naming no class, a value that is not a
            metric (:func:`~mmseg_ext.evaluation.metric_keys.metric_value`: a finite
            number in [0, 100]), class values that do not give the record's mean (see
            above), a step that is not an integer >= 0, no validation with ``metric``
            in the file.
    """
    file = scalars_file(path)
    prefix = metric + '.'
    history = []
    for lineno, line in enumerate(read_text(file, 'scalars file').splitlines(), 1):
        if not line.strip():
            continue
        record = loads_json(line, f'{file}:{lineno}')
        if not isinstance(record, dict):
            continue
        values = {}
        for key, value in record.items():
            if key.startswith(prefix):
                where = f'{file}:{lineno}'
                _, cls = split_metric_key(key, where, metric)
                values[cls] = metric_value(value, where, key)
        if values:
            step = record.get('step')
            if isinstance(step, bool) or not isinstance(step, int):
                raise DataError(f'{file}:{lineno}: a validation without an integer step')
            if step < 0:
                raise DataError(f'{file}:{lineno}: a validation at step {step}: a step is '
                                'the training iteration it followed, >= 0')
            _check_mean(record.get('m' + metric), values, f'{file}:{lineno}', metric)
            history.append(Validation(step, values))
    if not history:
        raise DataError(f'{file}: no validation with {metric}.<class> values')
    return history


def _check_mean(logged, values: dict, where: str, metric: str) -> None:
    """Refuse class values that do not give the record's logged mean (when it logs a
    finite one), naming the value furthest from it."""
    import math
    if isinstance(logged, bool) or not isinstance(logged, (int, float)) \
            or not math.isfinite(logged):
        return
    mean = sum(values.values()) / len(values)
    if abs(mean - logged) <= 0.011:
        return
    worst = max(values, key=lambda c: abs(values[c] - logged))
    raise DataError(f'{where}: the {len(values)} {metric} values average {mean:.4g}, but '
                    f'the record logs m{metric} {logged:g}: {metric}.{worst} '
                    f'{values[worst]:g} is off the record\'s scale or edited')


def history_classes(history: List[Validation]) -> List[str]:
    """Every class of any validation of ``history``, in the order first seen (a class
    missing from the last validation keeps its column)."""
    return list(dict.fromkeys(c for v in history for c in v.values))
