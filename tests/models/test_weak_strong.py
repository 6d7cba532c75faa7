"""WeakToStrongSegmentor: pseudo-labels, masks and losses by hand, CutMix pixel by pixel,
loss weights, refusals, and delegation to the student."""
import copy
import math

import pytest
import torch
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg.utils import register_all_modules

import mmseg_ext  # noqa: F401
from mmseg_ext.models.data_preprocessors import SegCutMix
from mmseg_ext.models.segmentors.weak_strong import (
    draw_cutmix_boxes,
    masked_bce,
    multilabel_pseudo_labels,
    paste_boxes,
    student_state_dict,
)
from mmseg_ext.utils.errors import CheckpointError, ConfigError

NORM = dict(type='BN', requires_grad=True)
PRE = dict(type='SegDataPreProcessor', mean=[128.0] * 3, std=[64.0] * 3, bgr_to_rgb=True,
           pad_val=0, seg_pad_val=255, size=(32, 40))
MULTICLASS = dict(
    type='EncoderDecoder', data_preprocessor=PRE,
    backbone=dict(type='ResNetV1c', depth=18, stem_channels=8, base_channels=8,
                  num_stages=4, out_indices=(0, 1, 2, 3), dilations=(1, 1, 2, 4),
                  strides=(1, 2, 1, 1), norm_cfg=NORM, contract_dilation=True),
    decode_head=dict(type='FCNHead', in_channels=64, in_index=3, channels=16, num_convs=1,
                     concat_input=False, num_classes=3, norm_cfg=NORM, align_corners=False,
                     loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)),
    train_cfg=dict(), test_cfg=dict(mode='whole'))
MULTILABEL = dict(
    MULTICLASS, type='MultiLabelEncoderDecoder',
    decode_head=dict(type='MultiLabelFCNHead', in_channels=64, in_index=3, channels=16,
                     num_convs=1, concat_input=False, num_classes=4, norm_cfg=NORM,
                     align_corners=False,
                     loss_decode=[dict(type='MultiLabelBCELoss', loss_weight=1.0)]),
    test_cfg=dict(mode='whole', threshold=0.5))


def build(kind='WeakToStrongSegmentor', student=MULTICLASS, **kwargs):
    register_all_modules(init_default_scope=True)
    return MODELS.build(dict(type=kind, segmentor=copy.deepcopy(student), **kwargs))


def logit(p):
    return math.log(p / (1 - p))


def sample(gt=None, img_shape=(32, 40)):
    ds = SegDataSample(metainfo=dict(img_shape=img_shape, ori_shape=img_shape,
                                     pad_shape=(32, 40)))
    if gt is not None:
        ds.gt_sem_seg = PixelData(data=gt)
    return ds


# --- multi-label pseudo-labels, masks and BCE by hand ----------------------------------

#: teacher probabilities of a 1 x 2 classes x 2 x 2 image
P = [[[0.9, 0.1], [0.6, 0.97]],     # class 0
     [[0.3, 0.02], [0.85, 0.75]]]   # class 1
#: student probabilities on the strong view
Q = [[[0.8, 0.4], [0.5, 0.5]],
     [[0.5, 0.25], [0.6, 0.5]]]


def test_multilabel_pseudo_labels_per_class_by_hand():
    logits = torch.tensor([[[[logit(p) for p in row] for row in c] for c in P]])
    got = multilabel_pseudo_labels(logits, conf_thresh=0.8)
    # per class: 1 if p > 0.5, 0 if p <= 0.5, 255 where max(p, 1 - p) < 0.8
    # class 0: 0.9 -> 1, 0.1 -> 0 (conf 0.9), 0.6 -> unsure, 0.97 -> 1
    # class 1: 0.3 -> unsure (conf 0.7), 0.02 -> 0, 0.85 -> 1, 0.75 -> unsure
    want = torch.tensor([[[[1, 0], [255, 1]], [[255, 0], [1, 255]]]], dtype=torch.uint8)
    assert got.dtype == torch.uint8 and torch.equal(got, want)
    # a pixel can be confident for one class and not for another: (0, 0) and (1, 0)
    assert got[0, 0, 0, 0] != 255 and got[0, 1, 0, 0] == 255


def test_masked_bce_by_hand():
    target = torch.tensor([[[[1, 0], [255, 1]], [[255, 0], [1, 255]]]], dtype=torch.uint8)
    student = torch.tensor([[[[logit(q) for q in row] for row in c] for c in Q]],
                           requires_grad=True)
    # the five kept entries: (c0: y=1 q=.8), (c0: y=0 q=.4), (c0: y=1 q=.5),
    # (c1: y=0 q=.25), (c1: y=1 q=.6)
    terms = [-math.log(0.8), -math.log(0.6), -math.log(0.5), -math.log(0.75),
             -math.log(0.6)]
    got = masked_bce(student, target)
    assert abs(got.item() - sum(terms) / 5) < 1e-6
    # the paper's normalisation: the same sum over all 8 entries
    got_all = masked_bce(student, target, denominator=torch.tensor(8))
    assert abs(got_all.item() - sum(terms) / 8) < 1e-6
    got.backward()
    assert student.grad[0, 0, 1, 0] == 0 and student.grad[0, 1, 0, 0] == 0  # ignored
    assert student.grad[0, 0, 0, 0] < 0   # y=1, q=.8: pushed up
    nothing = torch.full_like(target, 255)
    assert float(masked_bce(student, nothing)) == 0.0


def test_segmentor_pseudo_targets_ignore_the_padding_and_normalise():
    model = build('MultiLabelWeakToStrongSegmentor', MULTILABEL, conf_thresh=0.8)
    logits = torch.tensor([[[[logit(p) for p in row] for row in c] for c in P]])
    valid = torch.tensor([[[True, False], [True, False]]])   # the right column is padding
    target = model.pseudo_targets(logits, valid)
    want = torch.tensor([[[[1, 255], [255, 255]], [[255, 255], [1, 255]]]],
                        dtype=torch.uint8)
    assert torch.equal(target, want)
    student = torch.tensor([[[[logit(q) for q in row] for row in c] for c in Q]])
    # kept: (c0: y=1 q=.8) and (c1: y=1 q=.6)
    two = -math.log(0.8) - math.log(0.6)
    assert abs(float(model.pseudo_loss(student, target, valid)) - two / 2) < 1e-6
    model.unsup_norm = 'valid'      # 2 valid pixels x 2 classes
    assert abs(float(model.pseudo_loss(student, target, valid)) - two / 4) < 1e-6


def test_multiclass_pseudo_targets_and_valid_normalisation():
    model = build(conf_thresh=0.6)
    # pixel 0: softmax of (2, 0, 0) -> 0.787 on class 0; pixel 1: (0, 0, 0) -> 1/3
    logits = torch.tensor([[[[2.0, 0.0]], [[0.0, 0.0]], [[0.0, 0.0]]]])
    valid = torch.ones(1, 1, 2, dtype=torch.bool)
    target = model.pseudo_targets(logits, valid)
    assert target.tolist() == [[[0, 255]]]
    student = torch.tensor([[[[0.0, 1.0]], [[0.0, 2.0]], [[0.0, 3.0]]]])
    ce0 = math.log(3.0)   # uniform student at pixel 0, label 0
    assert abs(float(model.pseudo_loss(student, target, valid)) - ce0) < 1e-6
    model.unsup_norm = 'valid'
    assert abs(float(model.pseudo_loss(student, target, valid)) - ce0 / 2) < 1e-6


# --- CutMix ----------------------------------------------------------------------------

def test_cutmix_moves_images_labels_and_masks_with_one_box():
    n, h, w, c = 3, 12, 16, 2
    img = torch.arange(n * 3 * h * w, dtype=torch.float32).reshape(n, 3, h, w)
    target = (torch.arange(n * c * h * w) % 251).reshape(n, c, h, w).to(torch.uint8)
    valid = torch.ones(n, h, w, dtype=torch.bool)
    valid[1, 8:, :] = False        # sample 1 is padded at the bottom
    target[1][:, ~valid[1]] = 255
    torch.manual_seed(3)
    boxes = draw_cutmix_boxes(n, h, w, SegCutMix(prob=1.0, area_range=(0.2, 0.4)))
    assert sorted(boxes) == [0, 1, 2]
    m_img, m_target, m_valid = paste_boxes([img, target, valid], boxes)
    for i, (top, bottom, left, right) in boxes.items():
        j = (i + 1) % n
        assert 0.2 * h * w - h - w <= (bottom - top) * (right - left) <= 0.4 * h * w + h + w
        for y in range(h):
            for x in range(w):
                src = j if top <= y < bottom and left <= x < right else i
                assert torch.equal(m_img[i, :, y, x], img[src, :, y, x])
                assert torch.equal(m_target[i, :, y, x], target[src, :, y, x])
                assert bool(m_valid[i, y, x]) == bool(valid[src, y, x])
    # the padding pasted from sample 1 stays ignored in the label of sample 0
    assert torch.all(m_target[0][:, ~m_valid[0]] == 255)
    assert torch.equal(img, torch.arange(img.numel(), dtype=torch.float32).reshape(img.shape))


def test_cutmix_leaves_unchosen_images_and_single_batches():
    torch.manual_seed(0)
    assert draw_cutmix_boxes(4, 8, 8, SegCutMix(prob=0.0)) == {}
    assert draw_cutmix_boxes(1, 8, 8, SegCutMix(prob=1.0)) == {}
    x = torch.rand(2, 1, 4, 4)
    (same,) = paste_boxes([x], {})
    assert torch.equal(same, x)


# --- the segmentor ---------------------------------------------------------------------

def test_loss_weights_follow_the_paper_split():
    assert build().weights == dict(fp=0.5, strong=0.25)
    assert build(num_strong=1).weights == dict(fp=0.5, strong=0.5)
    assert build(feature_perturbation=False).weights == dict(fp=0.0, strong=0.5)
    assert build(feature_perturbation=False, num_strong=1, unsup_weight=2.0).weights == \
        dict(fp=0.0, strong=2.0)


@pytest.mark.parametrize('kind,student,gt', [
    ('WeakToStrongSegmentor', MULTICLASS, lambda g: torch.randint(0, 3, (1, 32, 40),
                                                                  generator=g)),
    ('MultiLabelWeakToStrongSegmentor', MULTILABEL,
     lambda g: torch.randint(0, 2, (4, 32, 40), generator=g).to(torch.uint8)),
], ids=['multi-class', 'multi-label'])
def test_mixed_batch_losses_and_gradients(kind, student, gt):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    samples = [sample(gt(g)), sample(), sample(gt(g)), sample(img_shape=(24, 40))]
    inputs = torch.randn(4, 3, 32, 40)
    model = build(kind, student, conf_thresh=0.0)
    model.train()
    losses = model.loss(inputs, samples)
    unsup = {'loss_unsup_s1', 'loss_unsup_s2', 'loss_unsup_fp', 'unsup_conf_ratio'}
    assert unsup <= set(losses)
    assert any(k.startswith('decode.') for k in losses)       # the student's own losses
    assert all(float(losses[k]) > 0 for k in unsup)
    # threshold 0: every valid entry is confident; sample 3 has 8 of 32 rows padded
    assert abs(float(losses['unsup_conf_ratio']) - 1.0) < 1e-6
    total = sum(v for k, v in losses.items() if 'loss' in k)
    total.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for p in model.student.backbone.parameters())
    off = build(kind, student, conf_thresh=0.0, unsup_weight=0.0)
    off.train()
    zero = off.loss(inputs, samples)
    assert all(float(zero[k]) == 0.0 for k in unsup - {'unsup_conf_ratio'})
    # a batch of labelled samples only: the unlabelled losses are zeros
    only = model.loss(inputs[[0, 2]], [samples[0], samples[2]])
    assert float(only['loss_unsup_s1']) == 0.0


def test_no_confident_pixel_gives_zero_unsup_loss():
    torch.manual_seed(0)
    model = build('MultiLabelWeakToStrongSegmentor', MULTILABEL, conf_thresh=1.0)
    model.train()
    losses = model.loss(torch.randn(2, 3, 32, 40), [sample(), sample()])
    assert float(losses['unsup_conf_ratio']) == 0.0
    assert float(losses['loss_unsup_s1']) == 0.0 and float(losses['loss_unsup_fp']) == 0.0


def test_refusals():
    with pytest.raises(ConfigError, match='is multi-label; use MultiLabelWeakToStrong'):
        build('WeakToStrongSegmentor', MULTILABEL)
    with pytest.raises(ConfigError, match='is not multi-label; use WeakToStrong'):
        build('MultiLabelWeakToStrongSegmentor', MULTICLASS)
    with pytest.raises(ConfigError, match='batch_augments'):
        build(data_preprocessor=dict(PRE, type='BatchAugmentSegDataPreProcessor',
                                     batch_augments=[dict(type='SegCutMix')]))
    with pytest.raises(ConfigError, match='num_strong'):
        build(num_strong=3)
    with pytest.raises(ConfigError, match='unsup_norm'):
        build(unsup_norm='all')


def test_prediction_is_the_students_and_weights_load_into_the_plain_student():
    torch.manual_seed(0)
    model = build('MultiLabelWeakToStrongSegmentor', MULTILABEL)
    model.eval()
    plain = MODELS.build(copy.deepcopy(MULTILABEL))
    plain.load_state_dict(student_state_dict(model.state_dict()), strict=True)
    plain.eval()
    x = torch.randn(1, 3, 32, 40)
    meta = [dict(img_shape=(32, 40), ori_shape=(32, 40), pad_shape=(32, 40))]
    with torch.no_grad():
        ours = model.predict(x, [sample()])[0].seg_logits.data
        theirs = plain.predict(x, [sample()])[0].seg_logits.data
        assert torch.equal(model.encode_decode(x, meta), plain.encode_decode(x, meta))
    assert torch.equal(ours, theirs)
    assert model.multi_label and torch.equal(model.class_thresholds(), torch.full((4,), 0.5))
    model.dataset_meta = dict(classes=('a', 'b', 'c', 'd'))
    assert model.student.dataset_meta['classes'] == ('a', 'b', 'c', 'd')
    with pytest.raises(CheckpointError, match='student'):
        student_state_dict(plain.state_dict())


def test_stock_tta_model_reads_the_students_out_channels():
    """Round V-8: mmseg's SegTTAModel reads ``module.out_channels``; the weak-to-strong
    wrapper gives its student's (3 classes), so ``test.py --tta`` merges its views: the
    argmax of the mean softmax of the student's logits, computed here by hand."""
    from mmengine.config import ConfigDict
    from mmseg.models.segmentors import SegTTAModel
    torch.manual_seed(0)
    model = build()
    model.eval()
    model.student.test_cfg = ConfigDict(mode='whole')  # as a config file gives it
    assert model.out_channels == 3 and model.decode_head is model.student.decode_head
    with torch.no_grad():  # logits that vary over the image
        torch.nn.init.normal_(model.student.decode_head.conv_seg.weight, std=5.0)
    tta = SegTTAModel(module=model)
    x = [torch.randn(1, 3, 32, 40), torch.randn(1, 3, 32, 40)]
    with torch.no_grad():
        views = [model.predict(i, [sample()])[0] for i in x]
        for view in views:
            view.set_metainfo(dict(img_path='a.png'))  # the merge copies it
        merged = tta.merge_preds([views])[0]
        logits = [model.student.encode_decode(i, [sample().metainfo]) for i in x]
    want = sum(torch.softmax(lg[0], dim=0) for lg in logits).argmax(dim=0)
    assert torch.equal(merged.pred_sem_seg.data, want[None])  # PixelData: (1, H, W)
    assert len(want.unique()) > 1  # a prediction that varies over the image
