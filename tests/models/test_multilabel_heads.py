"""Multi-label decode heads: what the losses receive, the logged Dice, OCR gathering."""
import pytest
import torch
import torch.nn as nn
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.models.decode_heads.ocr_head import SpatialGatherModule
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmseg_ext  # noqa: F401
from mmseg_ext.models.heads import SigmoidSpatialGatherModule
from mmseg_ext.utils.errors import ConfigError

init_default_scope('mmseg')


def _sample(gt):
    s = SegDataSample(metainfo=dict(ori_shape=gt.shape[1:], img_shape=gt.shape[1:]))
    s.gt_sem_seg = PixelData(data=gt)
    return s


def _fcn(num_classes=3, **kw):
    cfg = dict(type='MultiLabelFCNHead', in_channels=4, channels=4, num_convs=1,
               num_classes=num_classes, **kw)
    return MODELS.build(cfg)


class _Recorder(nn.Module):
    multi_label = True
    loss_name = 'loss_rec'

    def forward(self, pred, target, **kwargs):
        self.seen = (pred.detach().clone(), target.clone(), kwargs)
        return pred.sum() * 0


def test_losses_receive_full_size_logits_target_and_valid_mask():
    head = _fcn()
    head.loss_decode = _Recorder()
    g = torch.Generator().manual_seed(0)
    gts = [(torch.rand(3, 16, 16, generator=g) > 0.5).to(torch.uint8) for _ in range(2)]
    gts[1][:, 12:, :] = 255  # padding rows
    gts[0][1, :, :3] = 255   # ignored in one class only
    losses = head.loss_by_feat(torch.randn(2, 3, 8, 8), [_sample(x) for x in gts])
    pred, target, kwargs = head.loss_decode.seen
    assert pred.shape == (2, 3, 16, 16) and pred.dtype == torch.float32
    assert target.dtype == torch.uint8 and torch.equal(target, torch.stack(gts))
    assert torch.equal(kwargs['valid_mask'], torch.stack(gts) != 255)
    assert kwargs['ignore_index'] == 255
    assert set(losses) == {'loss_rec', 'dice_seg'}


def test_same_named_losses_are_summed():
    head = _fcn(loss_decode=[dict(type='MultiLabelBCELoss', loss_weight=1.0),
                             dict(type='MultiLabelBCELoss', loss_weight=2.0),
                             dict(type='MultiLabelDiceLoss')])
    gt = (torch.rand(3, 8, 8) > 0.5).to(torch.uint8)
    logits = torch.randn(1, 3, 8, 8)
    losses = head.loss_by_feat(logits, [_sample(gt)])
    single = MODELS.build(dict(type='MultiLabelBCELoss'))(logits, gt[None])
    assert losses['loss_bce'].item() == pytest.approx(3 * single.item(), rel=1e-6)
    assert 'loss_dice' in losses


def test_logged_dice_is_competition_dice_of_sigmoid_half():
    head = _fcn(num_classes=2)
    # class 0: P = top row, G = left column, one pixel ignored -> I=1, |P|=2, |G|=2
    # class 1: nothing predicted, nothing there -> 1
    logits = torch.tensor([[[5.0, 5.0], [-5.0, -5.0]], [[-5.0, -5.0], [-5.0, -5.0]]])[None]
    gt = torch.tensor([[[1, 0], [1, 255]], [[0, 0], [0, 0]]], dtype=torch.uint8)
    losses = head.loss_by_feat(logits, [_sample(gt)])
    expected = ((2 + 1e-4) / (4 + 1e-4) + 1.0) / 2
    assert losses['dice_seg'].item() == pytest.approx(expected, rel=1e-6)
    assert not losses['dice_seg'].requires_grad


def test_head_checks():
    with pytest.raises(ValueError, match='one output channel per class'):
        _fcn(out_channels=1)
    with pytest.raises(ConfigError, match='MultiLabelBCELoss'):
        _fcn(loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=True))
    with pytest.raises(ValueError, match='samplers'):
        _fcn(sampler=dict(type='OHEMPixelSampler'))
    head = _fcn()
    assert head.out_channels == 3 and head.multi_label
    with pytest.raises(ValueError, match=r'\(C=3, H, W\)'):
        head.loss_by_feat(torch.randn(1, 3, 4, 4),
                          [_sample(torch.zeros(1, 4, 4, dtype=torch.uint8))])
    assert type(_fcn().loss_decode).__name__ == 'MultiLabelBCELoss'  # the default
    assert _fcn(num_classes=1).out_channels == 1


def test_stock_ocr_gather_is_a_per_class_spatial_softmax():
    g = torch.Generator().manual_seed(0)
    feats, logits = torch.randn(1, 5, 3, 4, generator=g), torch.randn(1, 2, 3, 4, generator=g)
    context = SpatialGatherModule(scale=1)(feats, logits)  # (1, 5, 2, 1)
    for k in range(2):
        w = torch.softmax(logits[0, k].flatten(), 0)
        expected = (feats[0].reshape(5, -1) * w).sum(1)
        assert torch.allclose(context[0, :, k, 0], expected, atol=1e-6)
    # overlapping classes do not compete: class 1's logits leave class 0's region alone
    other = logits.clone()
    other[0, 1] += torch.randn(3, 4, generator=g) * 5
    assert torch.allclose(SpatialGatherModule(1)(feats, other)[:, :, 0], context[:, :, 0])


def test_sigmoid_gather_is_mean_feature_under_soft_mask():
    g = torch.Generator().manual_seed(1)
    feats, logits = torch.randn(2, 5, 3, 4, generator=g), torch.randn(2, 2, 3, 4, generator=g)
    context = SigmoidSpatialGatherModule(scale=1.0, eps=0.0)(feats, logits)
    assert context.shape == (2, 5, 2, 1)
    for n in range(2):
        for k in range(2):
            q = torch.sigmoid(logits[n, k])
            expected = [(feats[n, d] * q).sum() / q.sum() for d in range(5)]
            assert torch.allclose(context[n, :, k, 0], torch.stack(expected), atol=1e-6)


def test_ocr_head_gather_modes():
    cfg = dict(type='MultiLabelOCRHead', in_channels=4, channels=8, ocr_channels=4,
               num_classes=3, dropout_ratio=-1)
    soft = MODELS.build(cfg)
    assert type(soft.spatial_gather_module) is SpatialGatherModule
    sig = MODELS.build(dict(cfg, gather_mode='sigmoid'))
    assert isinstance(sig.spatial_gather_module, SigmoidSpatialGatherModule)
    out = sig.forward([torch.randn(2, 4, 8, 8)], torch.randn(2, 3, 8, 8))
    assert out.shape == (2, 3, 8, 8)
    with pytest.raises(ValueError, match='gather_mode'):
        MODELS.build(dict(cfg, gather_mode='argmax'))


def test_stock_data_preprocessor_pads_multilabel_masks_with_255():
    pre = MODELS.build(dict(type='SegDataPreProcessor', size=(6, 7), seg_pad_val=255))
    gt = torch.tensor([[[1, 0], [0, 1], [1, 1]], [[0, 0], [1, 1], [0, 1]]],
                      dtype=torch.uint8)  # (C=2, H=3, W=2)
    s = _sample(gt)
    out = pre(dict(inputs=[torch.zeros(3, 3, 2, dtype=torch.uint8)], data_samples=[s]),
              training=True)
    padded = out['data_samples'][0].gt_sem_seg.data
    assert padded.shape == (2, 6, 7) and padded.dtype == torch.uint8
    assert torch.equal(padded[:, :3, :2], gt)
    assert (padded[:, 3:, :] == 255).all() and (padded[:, :, 2:] == 255).all()
    assert tuple(out['data_samples'][0].metainfo['padding_size']) == (0, 5, 0, 3)
