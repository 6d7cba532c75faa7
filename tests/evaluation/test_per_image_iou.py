"""PerImageIoUMetric on a hand-worked example (and beside mmseg's IoUMetric)."""
import numpy as np
import pytest
import torch
from mmseg.evaluation import IoUMetric

from mmseg_ext.evaluation.per_image_iou import PerImageIoUMetric, per_image_miou


def sample(pred, gt):
    return dict(pred_sem_seg=dict(data=torch.tensor([pred])),
                gt_sem_seg=dict(data=torch.tensor([gt])))


# image 1: class 0 I=1 U=2 (0.5), class 1 I=2 U=3 (2/3), class 2 absent -> mIoU 7/12
# image 2: pixel (1, 0) ignored; class 0 I=1 U=2, class 2 I=1 U=2, class 1 absent -> 0.5
# image 3: every pixel ignored -> left out
SAMPLES = [sample([[0, 1], [1, 1]], [[0, 0], [1, 1]]),
           sample([[2, 0], [1, 0]], [[2, 2], [255, 0]]),
           sample([[1, 1], [1, 1]], [[255, 255], [255, 255]])]


def test_hand_worked_per_image_miou():
    metric = PerImageIoUMetric()
    metric.dataset_meta = dict(classes=('a', 'b', 'c'))
    metric.process({}, SAMPLES)
    result = metric.evaluate(len(SAMPLES))
    assert result == {'mIoU_per_image': pytest.approx(round((7 / 12 + 0.5) / 2 * 100, 2))}

    inter = np.array([[1, 2, 0], [1, 0, 1], [0, 0, 0]])
    union = np.array([[2, 3, 0], [2, 0, 2], [0, 0, 0]])
    miou, per_image, per_class = per_image_miou(inter, union)
    assert miou == pytest.approx((7 / 12 + 0.5) / 2)
    assert per_image[:2] == pytest.approx([7 / 12, 0.5]) and np.isnan(per_image[2])
    assert per_class == pytest.approx([0.5, 2 / 3, 0.5])


def test_differs_from_the_dataset_level_miou():
    # IoUMetric sums counts first: class 0 2/4, class 1 2/3, class 2 1/2 -> 55.56
    iou = IoUMetric(iou_metrics=['mIoU'])
    iou.dataset_meta = dict(classes=('a', 'b', 'c'))
    iou.process({}, SAMPLES)
    assert iou.evaluate(3)['mIoU'] == pytest.approx(55.56, abs=0.01)
