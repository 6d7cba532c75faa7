"""Multi-label BCE and Dice losses against slow references and hand-worked values."""
import math

import pytest
import torch
import torch.nn.functional as F

from mmseg_ext.models.losses import MultiLabelBCELoss, MultiLabelDiceLoss

LN4 = math.log(4.0)  # sigmoid(LN4) = 0.8, sigmoid(-LN4) = 0.2


def _random_case(seed=0, shape=(2, 3, 4, 5)):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(shape, generator=g) * 2
    target = (torch.rand(shape, generator=g) > 0.6).to(torch.uint8)
    target[0, :, 0, :] = 255              # a padded row, all classes
    target[1, 2, 1:3, 1:4] = 255          # ignored in one class only
    return logits, target


def _reference_bce(logits, target, pos_weight, class_weight):
    """Loop over images and classes; F.binary_cross_entropy on the valid pixels only."""
    total, count = 0.0, 0
    for n in range(logits.shape[0]):
        for c in range(logits.shape[1]):
            t = target[n, c]
            valid = t != 255
            p = torch.sigmoid(logits[n, c][valid].double())
            tv = t[valid].double()
            pos = F.binary_cross_entropy(p[tv == 1], tv[tv == 1], reduction='sum')
            neg = F.binary_cross_entropy(p[tv == 0], tv[tv == 0], reduction='sum')
            total += class_weight[c] * (pos_weight[c] * pos.item() + neg.item())
            count += int(valid.sum())
    return total / count


def test_bce_matches_slow_reference_with_pos_and_class_weight():
    logits, target = _random_case()
    pos_weight, class_weight = [1.0, 2.5, 0.5], [1.0, 0.5, 2.0]
    loss = MultiLabelBCELoss(pos_weight=pos_weight, class_weight=class_weight,
                             loss_weight=1.0)(logits, target)
    expected = _reference_bce(logits, target, pos_weight, class_weight)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    plain = MultiLabelBCELoss()(logits, target)
    assert plain.item() == pytest.approx(_reference_bce(logits, target, [1] * 3, [1] * 3),
                                         rel=1e-5)
    assert MultiLabelBCELoss(loss_weight=0.4)(logits, target).item() == \
        pytest.approx(0.4 * plain.item(), rel=1e-6)


def test_pos_weight_scales_only_the_positive_term_of_its_class():
    logits, target = _random_case(seed=1)
    base = MultiLabelBCELoss(reduction='none')(logits, target)
    weighted = MultiLabelBCELoss(pos_weight=[1.0, 3.0, 1.0], reduction='none')(logits, target)
    changed = weighted != base
    positives = target == 1
    # only class 1, only where the target is positive
    assert changed[:, [0, 2]].sum() == 0
    assert torch.equal(changed[:, 1], positives[:, 1])
    # there the loss is exactly 3 x -log(sigmoid(x))
    expected = -3.0 * F.logsigmoid(logits[:, 1][positives[:, 1]])
    assert torch.allclose(weighted[:, 1][positives[:, 1]], expected, rtol=1e-5)


def test_pos_weight_broadcasts_over_classes_not_width():
    # width 3 == classes 3 would hide a width-broadcast bug; use width 5 and check that
    # the weight follows the class index, whatever the column
    logits = torch.zeros(1, 3, 2, 5)
    target = torch.ones(1, 3, 2, 5, dtype=torch.uint8)
    loss = MultiLabelBCELoss(pos_weight=[1.0, 2.0, 4.0], reduction='none')(logits, target)
    per_class = loss[0].reshape(3, -1)
    assert torch.allclose(per_class, torch.tensor([1.0, 2.0, 4.0]).view(3, 1) * math.log(2)
                          * torch.ones(3, 10))


def test_bce_ignores_255_entries_completely():
    logits, target = _random_case(seed=2)
    logits.requires_grad_(True)
    loss = MultiLabelBCELoss()(logits, target)
    loss.backward()
    assert torch.all(logits.grad[target == 255] == 0)
    changed = logits.detach().clone()
    changed[target == 255] = 1e4  # huge logits where ignored change nothing
    assert MultiLabelBCELoss()(changed, target).item() == pytest.approx(loss.item())
    # the mean is over valid entries: padding does not dilute it
    crop = MultiLabelBCELoss()(logits[:1, :, 1:], target[:1, :, 1:])
    alone = MultiLabelBCELoss()(logits[:1], target[:1])
    assert crop.item() == pytest.approx(alone.item(), rel=1e-6)


def test_bce_valid_mask_and_all_ignored():
    logits, target = _random_case(seed=3)
    keep = torch.zeros_like(target, dtype=torch.bool)
    keep[:, :, :2] = True
    masked = MultiLabelBCELoss()(logits, target, valid_mask=keep)
    target2 = target.clone()
    target2[~keep] = 255
    assert masked.item() == pytest.approx(MultiLabelBCELoss()(logits, target2).item())
    empty = MultiLabelBCELoss()(logits, torch.full_like(target, 255))
    assert empty.item() == 0.0


def test_bce_rejects_label_maps_and_wrong_weight_length():
    with pytest.raises(ValueError, match=r'\(N, C, H, W\)'):
        MultiLabelBCELoss()(torch.zeros(1, 3, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match='pos_weight has 2 values'):
        MultiLabelBCELoss(pos_weight=[1, 2])(torch.zeros(1, 3, 2, 2),
                                             torch.zeros(1, 3, 2, 2, dtype=torch.uint8))


def _two_by_two():
    # class 0: p = [[0.8, 0.2], [0.5, 0.5]], t = [[1, 0], [1, ignore]]
    # class 1: p = 0.2 everywhere, t = 0 everywhere
    logits = torch.tensor([[[LN4, -LN4], [0.0, 0.0]],
                           [[-LN4, -LN4], [-LN4, -LN4]]]).unsqueeze(0)
    target = torch.tensor([[[1, 0], [1, 255]],
                           [[0, 0], [0, 0]]], dtype=torch.uint8).unsqueeze(0)
    return logits, target


def test_dice_hand_worked_2x2():
    logits, target = _two_by_two()
    # class 0 over its 3 valid pixels: I = 0.8 + 0.5 = 1.3, sum p = 1.5, sum t = 2
    #   smooth 1: (2.6 + 1) / (3.5 + 1) = 0.8            smooth 0: 2.6 / 3.5
    # class 1: I = 0, sum p = 0.8, sum t = 0
    #   smooth 1: 1 / 1.8                                smooth 0: 0
    dice = MultiLabelDiceLoss(smooth=1.0).dice_per_image_class(logits, target)
    assert torch.allclose(dice, torch.tensor([[0.8, 1 / 1.8]]), atol=1e-6)
    loss = MultiLabelDiceLoss(smooth=1.0)(logits, target)
    assert loss.item() == pytest.approx(((1 - 0.8) + (1 - 1 / 1.8)) / 2, abs=1e-6)
    loss0 = MultiLabelDiceLoss(smooth=0.0)(logits, target)
    assert loss0.item() == pytest.approx(((1 - 2.6 / 3.5) + 1.0) / 2, abs=1e-6)
    weighted = MultiLabelDiceLoss(smooth=1.0, class_weight=[3.0, 1.0])(logits, target)
    assert weighted.item() == pytest.approx((3 * 0.2 + (1 - 1 / 1.8)) / 4, abs=1e-6)


def test_dice_is_per_image_and_masks_padding():
    logits, target = _two_by_two()
    # second image: perfect prediction of class 0 only -> dice 1 (class 0), 1/1.8 (class 1)
    logits2 = torch.tensor([[[9.0, -9.0], [-9.0, -9.0]], [[-LN4] * 2] * 2]).unsqueeze(0)
    target2 = torch.tensor([[[1, 0], [0, 0]], [[0, 0], [0, 0]]], dtype=torch.uint8)[None]
    batch = MultiLabelDiceLoss()(torch.cat([logits, logits2]), torch.cat([target, target2]))
    hi, lo = torch.sigmoid(torch.tensor(9.0)).item(), torch.sigmoid(torch.tensor(-9.0)).item()
    d2 = (2 * hi + 1) / ((hi + 3 * lo) + 1 + 1)  # I = hi, sum p = hi + 3 lo, sum t = 1
    expected = ((1 - 0.8) + (1 - 1 / 1.8) + (1 - d2) + (1 - 1 / 1.8)) / 4
    assert batch.item() == pytest.approx(expected, abs=1e-5)
    # pad the 2x2 case to 4x4 with ignore and confident wrong logits: same loss
    padded_logits = torch.full((1, 2, 4, 4), 7.0)
    padded_logits[..., :2, :2] = logits
    padded_target = torch.full((1, 2, 4, 4), 255, dtype=torch.uint8)
    padded_target[..., :2, :2] = target
    assert MultiLabelDiceLoss()(padded_logits, padded_target).item() == \
        pytest.approx(MultiLabelDiceLoss()(logits, target).item(), abs=1e-6)


def test_dice_gradient_flows_and_reduction_none():
    logits, target = _two_by_two()
    logits.requires_grad_(True)
    MultiLabelDiceLoss()(logits, target).backward()
    assert logits.grad.abs().sum() > 0
    assert logits.grad[0, 0, 1, 1] == 0  # the ignored pixel
    per = MultiLabelDiceLoss(reduction='none')(logits.detach(), target)
    assert per.shape == (1, 2)
