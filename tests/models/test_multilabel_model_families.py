"""Wire-through: tiny multi-label models train one step and predict on CPU.

The four families are built from mmseg's own ``_base_/models`` configs through
``mmseg::`` inheritance, with the heads swapped for the multi-label ones and the
backbones scaled down (the overrides below are the ones the real configs scale up).
"""
import copy

import pytest
import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmseg_ext  # noqa: F401

init_default_scope('mmseg')
C = 3
BN = dict(type='BN', requires_grad=True)


def _losses(weight):
    return [dict(type='MultiLabelBCELoss', loss_weight=weight),
            dict(type='MultiLabelDiceLoss', loss_weight=weight)]


def _batch(size, n=2, seed=0, shapes=None):
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for i in range(n):
        h, w = shapes[i] if shapes else size
        inputs.append(torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g))
        s = SegDataSample(metainfo=dict(ori_shape=(h, w), img_shape=(h, w)))
        s.gt_sem_seg = PixelData(data=(torch.rand(C, h, w, generator=g) > 0.6)
                                 .to(torch.uint8))
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


def _train_and_predict(model, size, shapes=None):
    data = _batch(size, shapes=shapes)
    model.train()
    before = [p.detach().clone() for p in model.parameters()]
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    log_vars = model.train_step(copy.deepcopy(data), wrapper)
    assert torch.isfinite(log_vars['loss']) and log_vars['loss'] > 0
    assert any(k.endswith('dice_seg') for k in log_vars)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    model.eval()
    test_batches = [copy.deepcopy(data)]
    if shapes:  # stock preprocessing needs one size per test batch: one image at a time
        test_batches = [dict(inputs=[i], data_samples=[copy.deepcopy(s)])
                        for i, s in zip(data['inputs'], data['data_samples'])]
    with torch.no_grad():
        outputs = [out for batch in test_batches for out in model.test_step(batch)]
    for out, inp in zip(outputs, data['inputs']):
        shape = (C, *inp.shape[1:])
        assert out.seg_logits.data.shape == shape and out.seg_logits.data.dtype == torch.float32
        assert out.pred_sem_seg.data.shape == shape and out.pred_sem_seg.data.dtype == torch.uint8
        assert torch.equal(out.pred_sem_seg.data,
                           (out.seg_logits.data.sigmoid() > 0.5).to(torch.uint8))
    return log_vars


def test_tiny_resnet_fcn_with_auxiliary_head():
    model = MODELS.build(dict(
        type='MultiLabelEncoderDecoder',
        data_preprocessor=dict(type='SegDataPreProcessor', mean=[128.0] * 3, std=[64.0] * 3,
                               size=(32, 32), seg_pad_val=255,
                               test_cfg=dict(size_divisor=32)),
        backbone=dict(type='ResNetV1c', depth=18, stem_channels=16, base_channels=16,
                      out_indices=(0, 1, 2, 3), dilations=(1, 1, 2, 4),
                      strides=(1, 2, 1, 1), norm_cfg=BN, contract_dilation=True),
        decode_head=dict(type='MultiLabelFCNHead', in_channels=128, in_index=3, channels=16,
                         num_convs=1, num_classes=C, norm_cfg=BN, loss_decode=_losses(1.0)),
        auxiliary_head=dict(type='MultiLabelFCNHead', in_channels=64, in_index=2,
                            channels=8, num_convs=1, num_classes=C, norm_cfg=BN,
                            loss_decode=dict(type='MultiLabelBCELoss', loss_weight=0.4)),
        train_cfg=dict(), test_cfg=dict(mode='whole')))
    log_vars = _train_and_predict(model, (32, 32))
    assert {'decode.loss_bce', 'decode.loss_dice', 'decode.dice_seg', 'aux.loss_bce',
            'aux.dice_seg'} <= set(log_vars)
    # a batch of two sizes: the preprocessor pads image and (C, H, W) mask with 255 for
    # training, pads the images at test time; predictions come back at each image's size
    _train_and_predict(model, None, shapes=[(32, 32), (27, 30)])


def _uper_heads(in_channels, aux_in_channels):
    """The multi-label UperNet head and FCN auxiliary head over ``in_channels`` levels."""
    return dict(
        decode_head=dict(type='MultiLabelUPerHead', in_channels=in_channels,
                         channels=32, num_classes=C, loss_decode=_losses(1.0)),
        auxiliary_head=dict(type='MultiLabelFCNHead', in_channels=aux_in_channels,
                            channels=16, num_classes=C, loss_decode=_losses(0.4)))


FAMILIES = {
    'upernet_beit': dict(
        type='MultiLabelEncoderDecoder',
        backbone=dict(img_size=(64, 64), embed_dims=32, num_layers=4, num_heads=2,
                      mlp_ratio=2, out_indices=(0, 1, 2, 3), drop_path_rate=0.0),
        neck=dict(embed_dim=32), **_uper_heads([32, 32, 32, 32], 32)),
    'upernet_swin': dict(
        type='MultiLabelEncoderDecoder',
        backbone=dict(pretrain_img_size=64, embed_dims=16, depths=[1, 1, 1, 1],
                      num_heads=[1, 2, 2, 4], window_size=4, drop_path_rate=0.0),
        **_uper_heads([16, 32, 64, 128], 64)),
    'ocrnet_hr18': dict(
        type='MultiLabelCascadeEncoderDecoder',
        backbone=dict(extra=dict(
            stage1=dict(num_modules=1, num_branches=1, block='BOTTLENECK', num_blocks=(1,),
                        num_channels=(16,)),
            stage2=dict(num_modules=1, num_branches=2, block='BASIC', num_blocks=(1, 1),
                        num_channels=(8, 16)),
            stage3=dict(num_modules=1, num_branches=3, block='BASIC', num_blocks=(1, 1, 1),
                        num_channels=(8, 16, 32)),
            stage4=dict(num_modules=1, num_branches=4, block='BASIC',
                        num_blocks=(1, 1, 1, 1), num_channels=(8, 16, 32, 64)))),
        decode_head=[
            dict(type='MultiLabelFCNHead', in_channels=[8, 16, 32, 64], channels=120,
                 in_index=(0, 1, 2, 3), input_transform='resize_concat', kernel_size=1,
                 num_convs=1, concat_input=False, dropout_ratio=-1, num_classes=C,
                 norm_cfg=BN, align_corners=False, loss_decode=_losses(0.4)),
            dict(type='MultiLabelOCRHead', in_channels=[8, 16, 32, 64],
                 in_index=(0, 1, 2, 3), input_transform='resize_concat', channels=32,
                 ocr_channels=16, dropout_ratio=-1, num_classes=C, norm_cfg=BN,
                 align_corners=False, loss_decode=_losses(1.0)),
        ]),
    'deeplabv3_r50-d8': dict(
        type='MultiLabelEncoderDecoder',
        backbone=dict(depth=18, stem_channels=16, base_channels=16),
        decode_head=dict(type='MultiLabelASPPHead', in_channels=128, channels=32,
                         num_classes=C, loss_decode=_losses(1.0)),
        auxiliary_head=dict(type='MultiLabelFCNHead', in_channels=64, channels=16,
                            num_classes=C, loss_decode=_losses(0.4))),
}


@pytest.mark.parametrize('family', list(FAMILIES))
def test_family_builds_from_mmseg_base_and_runs(family, tmp_path):
    overrides = dict(FAMILIES[family], pretrained=None,
                     data_preprocessor=dict(size=(64, 64)),
                     test_cfg=dict(mode='whole', threshold=0.5))
    overrides['backbone'] = dict(overrides['backbone'], init_cfg=None)
    path = tmp_path / f'{family}_multilabel.py'
    path.write_text(f"_base_ = ['mmseg::_base_/models/{family}.py']\n"
                    f"model = {overrides!r}\n")
    cfg = Config.fromfile(str(path))
    model = revert_sync_batchnorm(MODELS.build(cfg.model))  # SyncBN -> BN off a cluster
    assert model.multi_label
    heads = model.decode_head if isinstance(model.decode_head, torch.nn.ModuleList) \
        else [model.decode_head]
    assert all(h.multi_label and h.out_channels == C for h in heads)
    _train_and_predict(model, (64, 64))
