"""MultiLabelDiceMetric against Dice of hand-made masks, and across split ranks."""
import pickle

import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.registry import METRICS
from mmseg.structures import SegDataSample

import mmseg_ext  # noqa: F401

E = 1e-4


def _sample(pred, gt):
    s = SegDataSample()
    s.pred_sem_seg = PixelData(data=torch.tensor(pred, dtype=torch.uint8))
    s.gt_sem_seg = PixelData(data=torch.tensor(gt, dtype=torch.uint8))
    return s


# Two images, classes a and b, 2x3 masks.
IMAGE_A = _sample(
    pred=[[[1, 1, 0], [0, 0, 0]], [[0, 0, 0], [0, 0, 0]]],
    gt=[[[1, 0, 0], [1, 0, 0]], [[0, 0, 0], [0, 0, 0]]])
# a: I=1 |P|=2 |G|=2      b: both empty
IMAGE_B = _sample(
    pred=[[[1, 0, 0], [0, 0, 1]], [[1, 1, 1], [0, 0, 0]]],
    gt=[[[255, 0, 0], [0, 0, 1]], [[0, 0, 0], [0, 0, 0]]])
# a: the predicted pixel at (0, 0) is ignored -> I=1 |P|=1 |G|=1     b: I=0 |P|=3 |G|=0


def _metric(classes=('a', 'b')):
    metric = METRICS.build(dict(type='MultiLabelDiceMetric'))
    metric.dataset_meta = dict(classes=classes)
    return metric


def test_hand_made_masks():
    metric = _metric()
    metric.process({}, [IMAGE_A.to_dict(), IMAGE_B.to_dict()])
    inter, pred, gt = metric.results[1]
    assert inter.tolist() == [1, 0] and pred.tolist() == [1, 3] and gt.tolist() == [1, 0]
    assert all(v.dtype == np.int64 and v.shape == (2,) for r in metric.results for v in r)
    out = metric.evaluate(size=2)
    dice_a = ((2 + E) / (4 + E) + 1.0) / 2
    dice_b = (1.0 + E / (3 + E)) / 2
    assert out['Dice.a'] == pytest.approx(dice_a, rel=1e-9)
    assert out['Dice.b'] == pytest.approx(dice_b, rel=1e-9)
    assert out['mDice'] == pytest.approx((dice_a + dice_b) / 2, rel=1e-9)
    # dataset level: a: I=2 |P|=3 |G|=3 ; b: I=0 |P|=3 |G|=0
    assert out['mDice_dataset'] == pytest.approx(((4 + E) / (6 + E) + E / (3 + E)) / 2,
                                                 rel=1e-9)
    assert metric.results == []  # evaluate() resets


def test_bool_prediction_and_sample_objects_accepted():
    metric = _metric()
    sample = SegDataSample()
    sample.pred_sem_seg = PixelData(data=IMAGE_B.pred_sem_seg.data.bool())
    sample.gt_sem_seg = IMAGE_B.gt_sem_seg
    metric.process({}, [sample])
    assert [r.tolist() for r in metric.results[0]] == [[1, 0], [1, 3], [1, 0]]


def _random_samples(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    samples = []
    for i in range(n):
        h, w = 5 + i, 7
        gt = (torch.rand(4, h, w, generator=g) > 0.7).to(torch.uint8)
        gt[:, 0, :2] = 255
        pred = (torch.rand(4, h, w, generator=g) > 0.7).to(torch.uint8)
        if i == 2:
            gt[3], pred[3] = 0, 0  # an image where class 3 is empty in both
        s = SegDataSample()
        s.pred_sem_seg = PixelData(data=pred)
        s.gt_sem_seg = PixelData(data=gt)
        samples.append(s.to_dict())
    return samples


def _slow_competition_dice(samples):
    """Per image and class with numpy on the valid pixels; mean over images, classes."""
    scores = np.zeros((len(samples), 4))
    for i, s in enumerate(samples):
        p, g = s['pred_sem_seg']['data'].numpy(), s['gt_sem_seg']['data'].numpy()
        for c in range(4):
            valid = g[c] != 255
            pc, gc = p[c][valid] == 1, g[c][valid] == 1
            scores[i, c] = (2 * (pc & gc).sum() + E) / (pc.sum() + gc.sum() + E)
    return scores.mean(0).mean()


def test_split_over_two_ranks_equals_one_instance():
    samples = _random_samples(5)
    names = ('w', 'x', 'y', 'z')
    whole = _metric(names)
    whole.process({}, samples)
    rank0, rank1 = _metric(names), _metric(names)
    rank0.process({}, samples[:3])
    rank1.process({}, samples[3:])
    # mmengine's collect_results pickles each rank's self.results and concatenates them
    gathered = pickle.loads(pickle.dumps(rank0.results)) + pickle.loads(
        pickle.dumps(rank1.results))
    merged = rank0.compute_metrics(gathered)
    single = whole.compute_metrics(whole.results)
    assert merged == single
    assert single['mDice'] == pytest.approx(_slow_competition_dice(samples), rel=1e-12)


def test_errors_and_fallback_names():
    metric = METRICS.build(dict(type='MultiLabelDiceMetric'))
    with pytest.raises(ValueError, match='after Resize'):
        metric.process({}, [dict(pred_sem_seg=dict(data=torch.zeros(2, 4, 4)),
                                 gt_sem_seg=dict(data=torch.zeros(2, 3, 3)))])
    with pytest.raises(ValueError, match='lacks'):
        metric.process({}, [dict(pred_sem_seg=dict(data=torch.zeros(2, 4, 4)))])
    metric.process({}, [IMAGE_A.to_dict()])
    out = metric.compute_metrics(metric.results)
    assert set(out) == {'mDice', 'mDice_dataset', 'Dice.class_0', 'Dice.class_1'}
    wrong = _metric(('a', 'b', 'c'))
    with pytest.raises(ValueError, match='3 class names'):
        wrong.compute_metrics(metric.results)
