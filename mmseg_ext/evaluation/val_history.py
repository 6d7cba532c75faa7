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

    A run logs its metric on one scale, fractions (Dice in [0, 1]) or percentages
    (mmseg's IoU in [0, 100]), and the values alone must tell which. The run is on the
    percentage scale when some validation has most of its values above 1 (a trained
    percentage run has one; a fraction run never does); otherwise it is on the fraction
    scale, and a value above 1 is a percentage (or a wrong number) among fractions and
    is refused. A run that logs percentages but never gets most classes above 1 % is
    refused too, as the values cannot tell it from a run of fractions with one bad
    value; the message names the value that breaks the scale.

    Raises:
        DataError: a line that is not JSON, a key naming no class, a value that is not a
            metric (:func:`~mmseg_ext.evaluation.metric_keys.metric_value`: a finite
            number in [0, 100]), a value above 1 in a run of fractions (see above), a
            step that is not an integer >= 0, no validation with ``metric`` in the file.
    """
    file = scalars_file(path)
    prefix = metric + '.'
    history = []
    first_above_one = None  # (line, key, value) of the first value above 1
    percent_rows = 0  # validations with most of their values above 1
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
                if values[cls] > 1 and first_above_one is None:
                    first_above_one = (lineno, key, value)
        if values:
            step = record.get('step')
            if isinstance(step, bool) or not isinstance(step, int):
                raise DataError(f'{file}:{lineno}: a validation without an integer step')
            if step < 0:
                raise DataError(f'{file}:{lineno}: a validation at step {step}: a step is '
                                'the training iteration it followed, >= 0')
            if 2 * sum(1 for v in values.values() if v > 1) > len(values):
                percent_rows += 1
            history.append(Validation(step, values))
    if not history:
        raise DataError(f'{file}: no validation with {metric}.<class> values')
    if first_above_one is not None and not percent_rows:
        lineno, key, value = first_above_one
        raise DataError(f'{file}:{lineno}: {key!r} is {value!r}, above 1 in a run whose '
                        f'{metric} values are fractions (no validation has most of its '
                        'values above 1): a percentage or a wrong value among fractions')
    return history


def history_classes(history: List[Validation]) -> List[str]:
    """Every class of any validation of ``history``, in the order first seen (a class
    missing from the last validation keeps its column)."""
    return list(dict.fromkeys(c for v in history for c in v.values))
