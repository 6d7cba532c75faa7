"""mIoU averaged over images (the "mean of per-image mIoU" leaderboards describe)."""
from __future__ import annotations

from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log
from mmseg.registry import METRICS
from prettytable import PrettyTable


def intersection_union(pred: torch.Tensor, label: torch.Tensor, num_classes: int,
                       ignore_index: int) -> Tuple[np.ndarray, np.ndarray]:
    """Per-class pixel counts of one image.

    Args:
        pred: ``(H, W)`` integer class indices.
        label: ``(H, W)`` integer ground truth; ``ignore_index`` and values
            ``>= num_classes`` are left out (with the predictions at those pixels).
        num_classes: C.

    Returns:
        ``(intersection, union)``, each ``(C,)`` int64: ``|P_c ∩ G_c|`` and
        ``|P_c ∪ G_c|`` in pixels.
    """
    label = label.long().flatten()
    pred = pred.long().flatten()
    keep = (label != ignore_index) & (label >= 0) & (label < num_classes)
    label, pred = label[keep], pred[keep]
    inter = torch.bincount(label[pred == label], minlength=num_classes)[:num_classes]
    area_pred = torch.bincount(pred.clamp(0, num_classes - 1),
                               minlength=num_classes)[:num_classes]
    area_label = torch.bincount(label, minlength=num_classes)[:num_classes]
    union = area_pred + area_label - inter
    return inter.cpu().numpy().astype(np.int64), union.cpu().numpy().astype(np.int64)


def per_image_miou(intersections: np.ndarray, unions: np.ndarray
                   ) -> Tuple[float, np.ndarray, np.ndarray]:
    """Mean over images of each image's mIoU.

    An image's mIoU averages IoU = I / U over the classes present in its ground truth
    or prediction (U > 0); classes absent from both are skipped (NaN), as the trash
    baseline's confusion-matrix mIoU does for one image. Images with no class present
    (every pixel ignored) are left out.

    Args:
        intersections, unions: ``(N, C)`` pixel counts per image and class.

    Returns:
        ``(miou, image_miou, class_iou)``: the mean over images (NaN without images),
        ``(N,)`` per-image mIoU (NaN for skipped images), and ``(C,)`` per-class IoU
        averaged over the images where the class is present.
    """
    with np.errstate(invalid='ignore', divide='ignore'):
        iou = np.where(unions > 0, intersections / np.maximum(unions, 1), np.nan)
    present = ~np.isnan(iou)
    counts = present.sum(1)
    image_miou = np.full(len(iou), np.nan)
    image_miou[counts > 0] = np.nansum(iou[counts > 0], 1) / counts[counts > 0]
    valid = ~np.isnan(image_miou)
    miou = float(image_miou[valid].mean()) if valid.any() else float('nan')
    class_counts = present.sum(0)
    class_iou = np.full(iou.shape[1], np.nan)
    has = class_counts > 0
    class_iou[has] = np.nansum(iou[:, has], 0) / class_counts[has]
    return miou, image_miou, class_iou


@METRICS.register_module()
class PerImageIoUMetric(BaseMetric):
    """Mean over images of the per-image mIoU, streamed.

    Per image it keeps two ``(C,)`` int64 vectors (intersection and union pixel counts)
    in ``self.results``, so results gather correctly across processes and memory does
    not hold masks. Use it beside mmseg's ``IoUMetric`` (one confusion matrix over the
    whole set); the key does not clash with ``IoUMetric``'s::

        val_evaluator = [dict(type='IoUMetric', iou_metrics=['mIoU']),
                         dict(type='PerImageIoUMetric')]

    Reports ``mIoU_per_image`` (percent, 2 decimals, like ``IoUMetric``) and logs a
    per-class table of IoU averaged over the images where the class occurs.

    Args:
        ignore_index: ground-truth value left out. Default 255.
        collect_device, prefix: as mmengine's ``BaseMetric``.
    """

    def __init__(self, ignore_index: int = 255, collect_device: str = 'cpu',
                 prefix: Optional[str] = None, **kwargs) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.ignore_index = ignore_index

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        num_classes = len(self.dataset_meta['classes'])
        for sample in data_samples:
            pred = sample['pred_sem_seg']['data'].squeeze(0)
            label = sample['gt_sem_seg']['data'].squeeze(0).to(pred.device)
            self.results.append(intersection_union(pred, label, num_classes,
                                                   self.ignore_index))

    def compute_metrics(self, results: List[Tuple[np.ndarray, np.ndarray]]
                        ) -> Dict[str, float]:
        logger: MMLogger = MMLogger.get_current_instance()
        inter = np.stack([r[0] for r in results])
        union = np.stack([r[1] for r in results])
        miou, _, class_iou = per_image_miou(inter, union)
        table = PrettyTable()
        table.add_column('Class', list(self.dataset_meta['classes']))
        table.add_column('IoU per image', np.round(class_iou * 100, 2).tolist())
        print_log('per class results (mean over the images where the class occurs):',
                  logger)
        print_log('\n' + table.get_string(), logger=logger)
        return OrderedDict(mIoU_per_image=float(np.round(miou * 100, 2)))
