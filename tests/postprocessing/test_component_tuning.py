"""Component clean-up search: its Dice table against filtering the masks, and its choice."""
import numpy as np
import pytest

from mmseg_ext.postprocessing.component_tuning import (
    ComponentSearch,
    area_candidates,
    choose_setting,
    component_stats,
    dice_table,
)
from mmseg_ext.postprocessing.components import filter_components


def _dice(pred, gt):
    """The competition Dice of one mask, written out."""
    inter = np.logical_and(pred, gt).sum()
    return (2.0 * inter + 1e-4) / (pred.sum() + gt.sum() + 1e-4)


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_dice_table_equals_filtering_each_mask(seed):
    """Every (keep_largest, min_area) entry equals the Dice of the mask that
    filter_components (the submission's clean-up) leaves."""
    rng = np.random.default_rng(seed)
    mask = rng.random((24, 30)) > 0.8            # many components of many sizes
    mask[2:8, 3:12] = True                       # and two large ones of equal area
    mask[14:20, 15:24] = True
    gt = np.zeros_like(mask)
    gt[1:9, 2:13] = True
    stats = component_stats(mask, gt)
    min_areas = np.array(area_candidates([stats]) + [1000])
    keeps = [0, 1, 2, 3]
    table = dice_table(stats, min_areas, keeps)
    for i, k in enumerate(keeps):
        for j, a in enumerate(min_areas):
            want = _dice(filter_components(mask, int(a), k), gt)
            assert table[i, j] == pytest.approx(want, abs=1e-12), (k, a)


def test_a_false_positive_speck_is_removed_and_no_setting_when_nothing_helps():
    gt = np.zeros((10, 10), bool)
    gt[2:6, 2:6] = True                          # 16 pixels
    pred = gt.copy()
    pred[8, 8] = True                            # one stray pixel in every image
    search = ComponentSearch(('bone', 'clean'))
    for _ in range(3):
        search.update('bone', pred, gt)
        search.update('clean', gt, gt)
    chosen = search.choose()
    bone = chosen['bone']
    # hand-worked: with the speck, Dice = 32 / 33; removing it gives 1
    assert bone.dice_before == pytest.approx((32 + 1e-4) / (33 + 1e-4))
    assert bone.dice_after == pytest.approx(1.0)
    # the simplest setting that removes it: keep_largest 0 and min_area 2 (area 1 + 1)
    assert (bone.keep_largest, bone.min_area) == (0, 2)
    clean = chosen['clean']
    assert (clean.keep_largest, clean.min_area) == (0, 0)
    assert clean.dice_after == clean.dice_before == pytest.approx(1.0)


def test_keep_largest_is_chosen_when_size_does_not_separate_the_components():
    """Two predicted blobs of the same size, the ground truth under the first: no
    minimum area removes only the wrong one, keep_largest=1 keeps the first in raster
    order (as filter_components)."""
    gt = np.zeros((12, 12), bool)
    gt[1:4, 1:4] = True
    pred = gt.copy()
    pred[7:10, 7:10] = True
    choice = choose_setting([component_stats(pred, gt)])
    assert (choice.keep_largest, choice.min_area) == (1, 0)
    assert choice.dice_after == pytest.approx(1.0)


def test_empty_prediction_and_empty_truth():
    empty = np.zeros((5, 5), bool)
    stats = component_stats(empty, empty)
    assert dice_table(stats, np.array([0, 3]), [0, 1]).tolist() == [[1.0, 1.0], [1.0, 1.0]]

