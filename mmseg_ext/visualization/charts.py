"""Metric charts with matplotlib (``Agg`` backend, no display): per-class bars and a
confusion matrix, written as PNG files of an exact pixel size."""
from __future__ import annotations

import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..evaluation.metric_keys import metric_value, split_metric_key
from ..io.atomic import atomic_open
from ..utils.class_names import check_class_names_argument
from ..utils.errors import DataError, InvalidArgumentError
from ..utils.readers import INT64_MAX, check_regular_file, loads_json, read_text, reading

#: Bar colours (matplotlib hex), one per metric in the order drawn.
BAR_COLOURS = ('#1f77b4', '#ff7f0e', '#2ca02c', '#d62728')


def _pyplot():
    import matplotlib
    matplotlib.use('Agg', force=True)
    import matplotlib.pyplot as plt
    return plt


def _is_training_record(record: dict) -> bool:
    """Whether an mmengine ``scalars.json`` line logs training (learning rate, losses:
    ``decode.loss_bce`` is a loss, not a class of a metric ``decode``)."""
    return 'lr' in record or any('loss' in str(key).rsplit('.', 1)[-1] for key in record)


def read_class_metrics(path: str, metrics: Optional[Sequence[str]] = None
                       ) -> Dict[str, Dict[str, float]]:
    """Per-class values of a metrics JSON: ``{metric: {class: value}}``.

    Accepts a JSON object whose keys look like ``<metric>.<class>`` (``Dice.finger-1``,
    as :class:`~mmseg_ext.evaluation.MultiLabelDiceMetric` and ``val_metrics.json``
    write; an mmengine scalar prefix such as ``val/`` or ``test/`` is removed), or an
    mmengine ``scalars.json`` (one JSON object per line; the last validation line
    holding such keys is used, and with ``metrics`` the last one holding all of them;
    training lines, with a learning rate or losses, are never read as metrics). Values
    stay as written; each must be finite and in [0, 100] (a percentage or a fraction),
    else :class:`DataError` names the file and the key.
    """
    text = read_text(path, 'metrics file')
    try:
        records = [(path, loads_json(text, path))]
    except DataError:
        records = [(f'{path}:{lineno}', loads_json(line, f'{path}:{lineno}'))
                   for lineno, line in enumerate(text.splitlines(), 1) if line.strip()]
        records = [(w, r) for w, r in records
                   if not (isinstance(r, dict) and _is_training_record(r))]
    not_numbers = []
    latest: Dict[str, Dict[str, float]] = {}
    for where, record in reversed(records):
        out: Dict[str, Dict[str, float]] = {}
        if not isinstance(record, dict):
            continue
        skipped = []
        origin: Dict[Tuple[str, str], str] = {}
        for key, value in record.items():
            name = key.split('/', 1)[1] if '/' in key else key
            if '.' not in name:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                skipped.append((key, value))
                continue
            metric, cls = split_metric_key(name, where)
            if (metric, cls) in origin:  # val/Dice.a beside test/Dice.a, or Dice.a
                raise DataError(f'{where}: {origin[metric, cls]!r} and {key!r} are both '
                                f'{metric} of class {cls!r}: keep one (a chart draws one '
                                'value a class)')
            origin[metric, cls] = key
            out.setdefault(metric, {})[cls] = metric_value(value, where, key)
        for key, value in skipped:  # a class of a charted metric must have a number
            name = key.split('/', 1)[1] if '/' in key else key
            if name.split('.', 1)[0] in out:
                raise DataError(f'{where}: {key!r} is {value!r}, not a number')
        if out and (not metrics or all(m in out for m in metrics)):
            return out
        latest = latest or out  # the caller names what it has when none has them all
        not_numbers += skipped
    if latest:
        return latest
    hint = (f'; {not_numbers[0][0]!r} is {not_numbers[0][1]!r}, not a number'
            if not_numbers else '')
    raise DataError(f'{path}: no per-class metrics (keys like "Dice.<class>" with numbers'
                    f'{hint})')


def chart_classes(values: Dict[str, Dict[str, float]]) -> List[str]:
    """Every class of any metric of ``{metric: {class: value}}``, in the order the
    classes first appear (the first metric's order, then what later metrics add)."""
    return list(dict.fromkeys(c for per_class in values.values() for c in per_class))


def bar_chart(values: Dict[str, Dict[str, float]], out: str, force: bool = False,
              size_px: Tuple[int, int] = (1200, 500), dpi: int = 100,
              title: Optional[str] = None) -> str:
    """Grouped bar chart, one group per class and one bar per metric.

    Args:
        values: ``{metric: {class: value}}``. The groups are every class of any metric,
            in the order they first appear; a metric without a value for a class gets
            no bar there but an ``n/a`` mark, so a missing value never reads as 0.
        out: PNG file (never replaced unless ``force``).
        size_px: ``(width, height)`` of the PNG in pixels.
    """
    plt = _pyplot()
    metrics = list(values)
    classes = chart_classes(values)
    x = np.arange(len(classes))
    width = 0.8 / len(metrics)
    fig = plt.figure(figsize=(size_px[0] / dpi, size_px[1] / dpi), dpi=dpi)
    ax = fig.add_subplot(111)
    for i, metric in enumerate(metrics):
        xs = x + (i - (len(metrics) - 1) / 2) * width
        ys = [values[metric].get(c, np.nan) for c in classes]
        ax.bar(xs, ys, width, label=metric, color=BAR_COLOURS[i % len(BAR_COLOURS)])
        for xi, c in zip(xs, classes):
            if c not in values[metric]:
                ax.text(xi, 0, 'n/a', rotation=90, ha='center', va='bottom', fontsize=6,
                        color=BAR_COLOURS[i % len(BAR_COLOURS)])
    ax.set_xticks(x)
    ax.set_xticklabels(classes, rotation=90, fontsize=7)
    ax.set_ylabel('value')
    ax.legend()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    _save(fig, out, force, dpi)
    return out


def confusion_matrix(gt: np.ndarray, pred: np.ndarray, num_classes: int,
                     ignore_index: int = 255) -> np.ndarray:
    """``(C, C)`` int64 pixel counts, rows = ground truth, columns = prediction; pixels
    whose ground truth or prediction is ``ignore_index`` (or out of range) are skipped."""
    gt = np.asarray(gt).ravel().astype(np.int64)
    pred = np.asarray(pred).ravel().astype(np.int64)
    keep = (gt != ignore_index) & (pred != ignore_index) & (gt >= 0) & (gt < num_classes) \
        & (pred >= 0) & (pred < num_classes)
    idx = gt[keep] * num_classes + pred[keep]
    return np.bincount(idx, minlength=num_classes ** 2).reshape(num_classes, num_classes)


def read_confusion_matrix(path: str, classes: Optional[Sequence[str]] = None
                          ) -> Tuple[np.ndarray, Tuple[str, ...]]:
    """A ``(C, C)`` confusion matrix of pixel counts from a ``.npy`` file, and its class
    names, checked once here before anything is drawn.

    The matrix holds counts (rows = ground truth, as :func:`confusion_matrix` writes
    them): every value must be a finite whole number in ``[0, 2**63 - 1]`` (int64), of any
    integer or float dtype. A row-normalised matrix (fractions) is refused: the drawing
    normalises the counts itself, and ``normalize=False`` shows them as whole numbers.

    Args:
        path: the ``.npy`` file (no pickled objects).
        classes: ``C`` class names (distinct, non-empty:
            :func:`~mmseg_ext.utils.class_names.check_class_names`); ``None`` names them
            ``'0'``, ``'1'``, ...

    Returns:
        ``(matrix, classes)``: the matrix as ``(C, C)`` int64 counts.

    Raises:
        DataError: the file is not such a matrix (naming the file and the first bad cell),
            or it counts no pixel (every cell 0).
        InvalidArgumentError: ``classes`` is not a list of ``C`` distinct names.
    """
    check_regular_file(path, 'confusion matrix')
    with reading(path, '.npy matrix'):
        cm = np.load(path, allow_pickle=False)
    if not isinstance(cm, np.ndarray):
        raise DataError(f'{path}: expected one (C, C) array in a .npy file, not an archive')
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] == 0:
        raise DataError(f'{path}: expected a (C, C) matrix with C >= 1, got shape {cm.shape}')
    if cm.dtype.kind not in 'buif':
        raise DataError(f'{path}: expected numbers, got dtype {cm.dtype}')
    problems = [('negative', cm < 0)]
    if cm.dtype.kind == 'f':
        problems = [('not finite', ~np.isfinite(cm))] + problems + [
            ('not a whole number of pixels (give the counts, not a normalised matrix)',
             np.isfinite(cm) & (cm != np.floor(cm))),
            ('beyond int64', np.isfinite(cm) & (cm >= 2.0 ** 63))]
    elif cm.dtype.kind == 'u':
        problems.append(('beyond int64', cm > INT64_MAX))
    for problem, mask in problems:
        if mask.any():
            i, j = (int(v) for v in np.argwhere(mask)[0])
            raise DataError(f'{path}: cell ({i}, {j}) is {cm[i, j].item()!r}: {problem}')
    if not cm.any():
        raise DataError(f'{path}: every cell is 0: the matrix counts no pixel, nothing to '
                        'draw')
    n = cm.shape[0]
    if classes is None:
        names = tuple(str(i) for i in range(n))
    else:
        names = check_class_names_argument(list(classes), 'classes')
        if len(names) != n:
            raise InvalidArgumentError('classes', f'{len(names)} name(s) for the {n} classes '
                                       f'of {path}')
    return cm.astype(np.int64), names


def pixel_total(cm: np.ndarray) -> int:
    """The sum of a count matrix as an exact Python integer (int64 sums wrap around)."""
    return sum(int(v) for v in np.asarray(cm).ravel())


def row_shares(cm: np.ndarray) -> np.ndarray:
    """``(C, C)`` float64: each row of a count matrix divided by its sum (rows = ground
    truth: the diagonal is the recall); a row without pixels is NaN, not 0."""
    cm = np.asarray(cm, np.float64)
    rows = cm.sum(1, keepdims=True)
    return np.divide(cm, rows, out=np.full_like(cm, np.nan), where=rows > 0)


def confusion_image(cm: np.ndarray, classes: Sequence[str], out: str, force: bool = False,
                    size_px: Tuple[int, int] = (800, 800), dpi: int = 100,
                    normalize: bool = True, cmap: str = 'Blues') -> str:
    """Draw a ``(C, C)`` confusion matrix (rows = ground truth) as a PNG heat map.

    ``normalize`` divides each row by its sum, so the diagonal is the per-class recall;
    a row without ground-truth pixels has no recall and is drawn blank and marked
    ``n/a`` (never as 0). Cells are annotated when ``C <= 20``.
    """
    plt = _pyplot()
    cm = np.asarray(cm, np.float64)
    if normalize:
        cm = row_shares(cm)
    fig = plt.figure(figsize=(size_px[0] / dpi, size_px[1] / dpi), dpi=dpi)
    ax = fig.add_subplot(111)
    im = ax.imshow(cm, cmap=cmap, vmin=0, vmax=1 if normalize else None)
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set_xticks(range(len(classes)))
    ax.set_yticks(range(len(classes)))
    ax.set_xticklabels(classes, rotation=90, fontsize=7)
    ax.set_yticklabels(classes, fontsize=7)
    ax.set_xlabel('prediction')
    ax.set_ylabel('ground truth')
    if len(classes) <= 20:
        for i in range(len(classes)):
            for j in range(len(classes)):
                value = cm[i, j]
                text = 'n/a' if np.isnan(value) else \
                    f'{value:.2f}' if normalize else f'{int(value)}'
                dark = not np.isnan(value) and value > 0.5 * max(np.nanmax(cm), 1e-12)
                ax.text(j, i, text, ha='center', va='center', fontsize=6,
                        color='white' if dark else 'black')
    fig.tight_layout()
    _save(fig, out, force, dpi)
    return out


#: the owner recorded beside a chart this module writes
OWNER = 'visualize'


#: chart file formats by name suffix (lower case); a name without a suffix gets PNG
CHART_FORMATS = {'.png': 'png', '.jpg': 'jpeg', '.jpeg': 'jpeg', '.pdf': 'pdf',
                 '.svg': 'svg'}


def chart_format(out: str) -> str:
    """The file format a chart written to ``out`` gets, from its suffix (PNG without
    one).

    Raises:
        DataError: a suffix of another format (a ``.txt`` or ``.csv`` name would get
            image bytes).
    """
    suffix = osp.splitext(out)[1].lower()
    if not suffix:
        return 'png'
    if suffix not in CHART_FORMATS:
        raise DataError(f'{out}: a chart is written as an image; name it with one of '
                        f'{", ".join(CHART_FORMATS)}')
    return CHART_FORMATS[suffix]


def _save(fig, out: str, force: bool, dpi: int) -> None:
    plt = _pyplot()
    try:
        fmt = chart_format(out)
        with atomic_open(out, 'wb', force=force, owner=OWNER) as f:
            fig.savefig(f, format=fmt, dpi=dpi)
    finally:
        plt.close(fig)
