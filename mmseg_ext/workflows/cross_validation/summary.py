"""The run's summary: per-fold and per-class scores, the tuned settings and every path
written, as a table and as ``summary.json`` (rewritten at the end of every run)."""
from __future__ import annotations

import os.path as osp
import time
from dataclasses import asdict, dataclass, field
from typing import Dict, Iterable, List, Optional

import numpy as np

from ...io.atomic import atomic_write_text
from ...io.ownership import Manifest
from ...postprocessing.oof_decisions import OOFDecisions, decision_lines
from ...training.stages import owned_output
from ...utils.readers import dumps_json


def nan_mean(values: Iterable[float]) -> float:
    """The mean of the values that are not NaN (NaN when none is)."""
    values = [v for v in values if not np.isnan(v)]
    return float(np.mean(values)) if values else float('nan')


@dataclass
class FoldSummary:
    """One fold: its image counts, folder, checkpoint, validation probabilities, its
    score on its own validation images and the classes it collapsed on."""
    fold: int
    train_images: int
    val_images: int
    work_dir: str
    checkpoint: str
    val_probs: str
    score: float = float('nan')
    collapsed: List[str] = field(default_factory=list)


@dataclass
class CVSummary:
    """A run's scores (``oof_before``/``oof_after``: per class, before and after
    tuning), tuned settings and outputs (``files``: name -> path)."""
    work_dir: str
    config: str
    num_folds: int
    metric: str
    folds: List[FoldSummary]
    oof_probs: str = ''
    oof_before: Dict[str, float] = field(default_factory=dict)
    oof_after: Dict[str, float] = field(default_factory=dict)
    thresholds: Dict[str, float] = field(default_factory=dict)
    fold_thresholds: List[Dict[str, float]] = field(default_factory=list)
    min_area: Dict[str, int] = field(default_factory=dict)
    keep_largest: Dict[str, int] = field(default_factory=dict)
    files: Dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    decisions: Optional[OOFDecisions] = None

    def table(self) -> str:
        """The per-fold and per-class scores as text."""
        lines = [f'{"fold":<6} {"train":>6} {"val":>5}  {self.metric}@default']
        for f in self.folds:
            score = '-' if np.isnan(f.score) else f'{f.score:.4f}'
            lines.append(f'{f.fold:<6} {f.train_images:>6} {f.val_images:>5}  {score}' +
                         (f'  collapsed: {", ".join(f.collapsed)}' if f.collapsed else ''))
        if self.oof_before:
            lines += [''] + self._class_rows()
        if self.fold_thresholds:
            lines += [''] + self._fold_threshold_rows()
        if self.decisions is not None and decision_lines(self.decisions):
            lines += [''] + decision_lines(self.decisions)
        if self.files:
            lines.append('')
            width = max(len(k) for k in self.files)
            lines += [f'{k:<{width}}  {v}' for k, v in self.files.items()]
        return '\n'.join(lines)

    def _fold_threshold_rows(self) -> List[str]:
        """Per class, each fold model's own threshold (the fold vote's calibration)."""
        width = max(12, max(len(c) for c in self.fold_thresholds[0]))
        lines = [f'{"class":<{width}}  ' + '  '.join(
            f'{"fold " + str(k):>7}' for k in range(len(self.fold_thresholds))) +
            '  (each fold model\'s threshold on its own OOF images; the fold vote '
            'calibrates each model by it)']
        for c in self.fold_thresholds[0]:
            lines.append(f'{c:<{width}}  ' + '  '.join(
                f'{t[c]:7.4f}' for t in self.fold_thresholds))
        return lines

    def _class_rows(self) -> List[str]:
        """Per class: OOF score (and, tuned, the score after and the settings); mean."""
        metric = self.metric
        after = 'tuned' if metric == 'Dice' else ''
        width = max(12, max(len(c) for c in self.oof_before))
        lines = [f'{"class":<{width}}  OOF {metric}' +
                 (f'  OOF {metric} {after}  threshold  keep  min_area' if after else '')]
        for c, v in self.oof_before.items():
            row = f'{c:<{width}}  {v:>{4 + len(metric)}.4f}'
            if after:
                row += (f'  {self.oof_after[c]:>{5 + len(metric) + len(after)}.4f}'
                        f'  {self.thresholds.get(c, 0.5):9.4f}  '
                        f'{self.keep_largest.get(c, 0):4d}  {self.min_area.get(c, 0):8d}')
            lines.append(row)
        row = f'{"mean":<{width}}  {nan_mean(self.oof_before.values()):>{4 + len(metric)}.4f}'
        if after:
            row += f'  {nan_mean(self.oof_after.values()):>{5 + len(metric) + len(after)}.4f}'
        lines.append(row)
        return lines


def finish(summary: CVSummary, start: float, manifest: Optional[Manifest] = None,
           partial: bool = False) -> CVSummary:
    """The summary stage: the run's time (since ``start``, a ``time.perf_counter()``)
    and ``summary.json``. A ``partial`` run (some folds) leaves the ``summary.json`` of
    a complete run in place (its folds were not trained again, and its out-of-fold
    scores still hold) and records its own in ``summary_folds.json``."""
    summary.seconds = time.perf_counter() - start
    path = osp.join(summary.work_dir, 'summary.json')
    if partial and _complete_summary(path):
        path = osp.join(summary.work_dir, 'summary_folds.json')
    summary.files['summary'] = path
    with owned_output(manifest, path):
        atomic_write_text(path, dumps_json(asdict(summary), indent=1, default=float) + '\n',
                          force=True)
    return summary


def _complete_summary(path: str) -> bool:
    """Whether ``path`` is the summary of a complete run (it has out-of-fold scores)."""
    from ...utils.errors import DataError
    from ...utils.readers import read_json
    if not osp.isfile(path):
        return False
    try:
        data = read_json(path, 'cv summary')
    except DataError:
        return False
    return isinstance(data, dict) and bool(data.get('oof_probs')) and bool(data.get('oof_before'))
