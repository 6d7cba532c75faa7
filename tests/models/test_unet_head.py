"""The U-Net decode head: logits at the input's resolution for any input size, on top of
a real encoder (mmseg's ResNet, levels at strides 4..32), trained through the segmentor."""
import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmseg_ext  # noqa: F401
from mmseg_ext.models.heads.unet_head import SCSEModule, UNetDecoderBlock
from mmseg_ext.utils.errors import ConfigError

init_default_scope('mmseg')

RESNET = dict(type='ResNetV1c', depth=18, stem_channels=8, base_channels=8,
              out_indices=(0, 1, 2, 3), norm_cfg=dict(type='BN', requires_grad=True))


def _segmentor(head_type='MultiLabelUNetHead', num_classes=3, **head):
    multi = head_type.startswith('MultiLabel')
    loss = dict(type='MultiLabelBCELoss') if multi else dict(type='CrossEntropyLoss')
    cfg = dict(
        type='MultiLabelEncoderDecoder' if multi else 'EncoderDecoder',
        data_preprocessor=dict(type='SegDataPreProcessor', mean=[0, 0, 0], std=[1, 1, 1],
                               pad_val=0, seg_pad_val=255),
        backbone=RESNET,
        decode_head=dict(type=head_type, in_channels=[8, 16, 32, 64], in_index=[0, 1, 2, 3],
                         in_strides=[4, 8, 16, 32], decoder_channels=[32, 16, 16, 8, 8],
                         num_classes=num_classes, norm_cfg=dict(type='BN'),
                         loss_decode=loss, **head),
        test_cfg=ConfigDict(mode='whole'))
    return MODELS.build(cfg)


@pytest.mark.parametrize('size', [(64, 64), (65, 97), (33, 47), (96, 32)])
@pytest.mark.parametrize('head_type', ['MultiLabelUNetHead', 'UNetHead'])
def test_logits_are_at_the_input_size(size, head_type):
    """Through the segmentor (inference) the head's own logits, before any resize by
    mmseg, have the input's exact size; sizes not divisible by 32 included."""
    model = _segmentor(head_type).eval()
    x = torch.rand(1, 3, *size)
    feats = model.extract_feat(x)
    meta = dict(img_shape=size, ori_shape=size, pad_shape=size)
    with torch.no_grad():
        logits = model.decode_head._forward_at(list(feats), size)
        assert logits.shape == (1, 3, *size)
        out = model.predict(x, [SegDataSample(metainfo=meta)])
    assert out[0].seg_logits.data.shape == (3, *size)
    # called without the input size (a bare forward), the head predicts at stride 1
    # of the finest level: 4x its size
    with torch.no_grad():
        bare = model.decode_head(list(feats))
    assert bare.shape[-2:] == tuple(4 * s for s in feats[0].shape[-2:])


def test_stride_2_levels_and_the_channel_plan():
    """Levels at strides 2..32 need one doubling (5 blocks: 4 skips + 1); the default
    channels halve from 256."""
    head = MODELS.build(dict(type='UNetHead', in_channels=[4, 8, 16, 32, 64],
                             in_index=[0, 1, 2, 3, 4], in_strides=[2, 4, 8, 16, 32],
                             num_classes=2))
    assert head.decoder_channels == (256, 128, 64, 32, 16) and head.channels == 16
    assert [b.conv1.conv.in_channels for b in head.blocks] == [64 + 32, 256 + 16,
                                                               128 + 8, 64 + 4, 32 + 0]
    feats = [torch.rand(1, c, 50 // s, 70 // s) for c, s in zip([4, 8, 16, 32, 64],
                                                                [2, 4, 8, 16, 32])]
    assert head._forward_at(feats, (50, 70)).shape == (1, 2, 50, 70)


def test_training_step_and_gradients_reach_the_encoder():
    model = _segmentor(attention='scse').train()
    x = torch.rand(2, 3, 45, 61)
    samples = []
    for _ in range(2):
        s = SegDataSample(metainfo=dict(img_shape=(45, 61), pad_shape=(45, 61)))
        s.gt_sem_seg = PixelData(data=(torch.rand(3, 45, 61) > 0.5).to(torch.uint8))
        samples.append(s)
    losses = model.loss(x, samples)
    total = sum(v for k, v in losses.items() if 'loss' in k)
    total.backward()
    assert torch.isfinite(total)
    assert model.backbone.stem[0].weight.grad.abs().sum() > 0
    assert any(isinstance(m, SCSEModule) for m in model.decode_head.modules())


def test_scse_gates_are_a_channel_and_a_spatial_product():
    torch.manual_seed(0)
    m = SCSEModule(8, reduction=4)
    x = torch.rand(2, 8, 5, 6)
    cse = m.channel_gate(x)
    sse = m.spatial_gate(x)
    assert cse.shape == (2, 8, 1, 1) and sse.shape == (2, 1, 5, 6)
    assert torch.allclose(m(x), x * cse + x * sse)


def test_a_block_upsamples_to_the_skip_or_doubles():
    block = UNetDecoderBlock(4, 2, 3, None, None, dict(type='ReLU'), None, 'nearest', False)
    x = torch.rand(1, 4, 5, 7)
    assert block(x, torch.rand(1, 2, 9, 13)).shape == (1, 3, 9, 13)
    plain = UNetDecoderBlock(4, 0, 3, None, None, dict(type='ReLU'), None, 'bilinear', False)
    assert plain(x).shape == (1, 3, 10, 14)
    assert plain(x, size=(11, 15)).shape == (1, 3, 11, 15)


@pytest.mark.parametrize('bad, words', [
    (dict(in_strides=[4, 8, 16]), 'one entry per level'),
    (dict(in_strides=[4, 8, 12, 32]), 'powers of 2'),
    (dict(in_strides=[3, 6, 12, 24]), 'powers of 2'),
    (dict(decoder_channels=[16, 16]), 'decoder_channels needs 5 values'),
    (dict(attention='cbam'), "attention must be None or 'scse'"),
])
def test_bad_settings_are_config_errors(bad, words):
    cfg = dict(type='MultiLabelUNetHead', in_channels=[8, 16, 32, 64], in_index=[0, 1, 2, 3],
               in_strides=[4, 8, 16, 32], num_classes=3)
    cfg.update(bad)
    with pytest.raises(ConfigError, match=words):
        MODELS.build(cfg)


def test_training_on_a_padded_batch_predicts_at_the_padded_size(monkeypatch):
    """The data preprocessor pads 45x61 images to 64x64; the head's logits must cover the
    padded batch (stack_batch leaves img_shape at the unpadded size)."""
    model = _segmentor().train()
    model.data_preprocessor.size = (64, 64)
    samples = []
    for _ in range(2):
        s = SegDataSample(metainfo=dict(img_shape=(45, 61), ori_shape=(45, 61)))
        s.gt_sem_seg = PixelData(data=(torch.rand(3, 45, 61) > 0.5).to(torch.uint8))
        samples.append(s)
    data = model.data_preprocessor(dict(inputs=[torch.randint(0, 255, (3, 45, 61),
                                                              dtype=torch.uint8)] * 2,
                                        data_samples=samples), True)
    assert data['inputs'].shape[-2:] == (64, 64)
    sizes = []
    real = model.decode_head._forward_at
    monkeypatch.setattr(model.decode_head, '_forward_at',
                        lambda feats, size: sizes.append(tuple(size)) or real(feats, size))
    model.loss(data['inputs'], data['data_samples'])
    assert sizes == [(64, 64)]


def test_levels_of_other_channels_are_one_config_error():
    """A head configured for other channels than the encoder gives: one line naming
    both, at the first forward (any segmentor, any encoder)."""
    head = MODELS.build(dict(type='UNetHead', in_channels=[8, 16], in_index=[0, 1],
                             in_strides=[4, 8], num_classes=2))
    with pytest.raises(ConfigError, match=r'in_channels \[8, 16\], but the backbone '
                       r'levels \[0, 1\] have \[8, 32\] channels'):
        head([torch.rand(1, 8, 8, 8), torch.rand(1, 32, 4, 4)])
