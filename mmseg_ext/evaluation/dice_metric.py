"""Streaming Dice for overlapping classes (hand-bone competition metric)."""
from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any, Dict, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log
from mmseg.registry import METRICS
from prettytable import PrettyTable
from torch import Tensor

from ..utils.errors import ConfigError, DataError
from .functional import COMPETITION_EPS, dice_from_counts, multilabel_counts


def _pixel_data(sample: Any, key: str) -> Optional[Tensor]:
    """``sample[key]['data']`` for the dicts the Evaluator passes, or
    ``sample.<key>.data`` for a ``SegDataSample``; ``None`` when absent."""
    if isinstance(sample, dict):
        field = sample.get(key, None)
        return None if field is None else field['data']
    field = getattr(sample, key, None)
    return None if field is None else field.data


@METRICS.register_module()
class MultiLabelDiceMetric(BaseMetric):
    """Dice of ``(C, H, W)`` binary predictions against ``(C, H, W)`` {0, 1, 255} masks.

    ``process`` keeps, per image, three ``int64`` numpy vectors of length C --
    ``|P∩G|``, ``|P|``, ``|G|`` -- in ``self.results`` and nothing else, so memory does not
    grow with image size and mmengine gathers the results of all ranks (one entry per
    image, which lets ``collect_results`` drop the sampler's padding duplicates).
    Ground-truth entries equal to ``ignore_index`` count in none of the three sums.

    The prediction (``pred_sem_seg``) is at the original image size (the multi-label
    segmentors resize before thresholding), and the ground truth must be too: load
    annotations after ``Resize`` in the val/test pipeline, as mmseg's configs do. A size
    mismatch raises instead of resizing masks silently, because the competition scores at
    the original resolution.

    ``compute_metrics`` returns (all floats in [0, 1]):

    * ``mDice``: competition Dice. Per image and class
      ``(2 |P∩G| + eps) / (|P| + |G| + eps)`` (both empty -> 1), averaged over images per
      class, then over classes.
    * ``mDice_dataset``: the same formula on counts summed over all images first.
    * ``Dice.<class name>``: the per-class competition Dice (image mean).

    and logs a per-class table.

    Args:
        ignore_index: ground-truth value excluded from the counts.
        eps: smoothing term of the formula (competition: 1e-4).
        collect_device: ``'cpu'`` or ``'gpu'``, for gathering results across ranks.
        prefix: prefix of the metric names.
        collect_dir: temporary folder for ``collect_device='cpu'`` gathering.
        output_dir: accepted for ``tools/test.py --out`` and ignored with a warning;
            other stock ``IoUMetric`` keywords (``keep_results``, ...) are ignored too.
    """

    default_prefix: Optional[str] = None

    def __init__(self, ignore_index: int = 255, eps: float = COMPETITION_EPS,
                 collect_device: str = 'cpu', prefix: Optional[str] = None,
                 collect_dir: Optional[str] = None, output_dir: Optional[str] = None,
                 **kwargs: Any) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix,
                         collect_dir=collect_dir)
        self.ignore_index = ignore_index
        self.eps = eps
        if output_dir is not None:  # set by ``tools/test.py --out`` (stock IoUMetric option)
            print_log('MultiLabelDiceMetric writes no prediction files; output_dir is '
                      'ignored (multi-label masks are exported by the submission tools)',
                      logger='current', level=logging.WARNING)

    def process(self, data_batch: Any, data_samples: Sequence[Any]) -> None:
        """Append ``(intersection, pred_area, gt_area)`` (``int64`` ``(C,)``) per image."""
        for sample in data_samples:
            pred = _pixel_data(sample, 'pred_sem_seg')
            gt = _pixel_data(sample, 'gt_sem_seg')
            if pred is None or gt is None:
                raise DataError('MultiLabelDiceMetric: a sample lacks pred_sem_seg or '
                                 'gt_sem_seg (a test split without annotations needs no '
                                 'evaluator)')
            if tuple(pred.shape) != tuple(gt.shape):
                raise ConfigError(
                    f'MultiLabelDiceMetric: prediction {tuple(pred.shape)} (C, H, W at the '
                    f'original size) but ground truth {tuple(gt.shape)}: load the '
                    'annotations after Resize in the val/test pipeline so the ground truth '
                    'stays at the original resolution')
            counts = multilabel_counts(pred, gt.to(pred.device), self.ignore_index)
            self.results.append(tuple(c.cpu().numpy().astype(np.int64) for c in counts))

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Metrics from the per-image count vectors of all ranks (see class docstring)."""
        logger: MMLogger = MMLogger.get_current_instance()
        if not results:
            print_log('MultiLabelDiceMetric: no images were evaluated', logger=logger,
                      level=logging.WARNING)
            return OrderedDict()
        inter, pred_area, gt_area = (np.stack(part) for part in zip(*results))  # (n, C)
        per_image = dice_from_counts(inter, pred_area, gt_area, self.eps)
        per_class = per_image.mean(axis=0)
        dataset = dice_from_counts(inter.sum(0), pred_area.sum(0), gt_area.sum(0), self.eps)
        names = self._class_names(per_class.shape[0])

        metrics: Dict[str, float] = OrderedDict()
        metrics['mDice'] = float(per_class.mean())
        metrics['mDice_dataset'] = float(dataset.mean())
        for name, value in zip(names, per_class):
            metrics[f'Dice.{name}'] = float(value)

        table = PrettyTable()
        table.add_column('Class', names)
        table.add_column('Dice', [f'{v:.4f}' for v in per_class])
        table.add_column('Dice (dataset)', [f'{v:.4f}' for v in dataset])
        table.add_column('Images with GT', [int(v) for v in (gt_area > 0).sum(0)])
        print_log(f'per class results ({inter.shape[0]} images):', logger)
        print_log('\n' + table.get_string(), logger=logger)
        return metrics

    def _class_names(self, num_classes: int) -> list[str]:
        """``dataset_meta['classes']`` (checked against C) or ``class_0 ... class_{C-1}``."""
        names = (self.dataset_meta or {}).get('classes', None)
        if names is None:
            return [f'class_{i}' for i in range(num_classes)]
        if len(names) != num_classes:
            raise ConfigError(f'MultiLabelDiceMetric: {len(names)} class names in '
                             f'dataset_meta but predictions have {num_classes} channels')
        return list(names)
