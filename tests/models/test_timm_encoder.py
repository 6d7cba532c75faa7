"""timm encoders as backbones: levels channels-first at their strides, head checks, the
U-Net config trained, tested and used for inference through the tools."""
import glob
import json
import os.path as osp

import pytest
import torch
from conftest import require_timm, run_tool
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import mmseg_ext  # noqa: F401
from mmseg_ext.utils.errors import ConfigError

pytestmark = pytest.mark.timm

UNET_512 = 'custom_configs/unet/unet_convnext-s_4xb2-20k_handbone-512x512.py'


@pytest.fixture(autouse=True)
def _timm():
    require_timm()
    init_default_scope('mmseg')


@pytest.mark.parametrize('name, strides', [
    ('resnet18', (2, 4, 8, 16, 32)),
    ('convnext_atto', (4, 8, 16, 32)),
    ('efficientnet_b0', (2, 4, 8, 16, 32)),
])
def test_levels_are_channels_first_at_their_strides(name, strides):
    enc = MODELS.build(dict(type='TimmEncoder', model_name=name))
    assert enc.strides == strides
    x = torch.rand(1, 3, 64, 96)
    feats = enc(x)
    assert [f.shape[1] for f in feats] == list(enc.out_channels)
    assert [tuple(f.shape[2:]) for f in feats] == [(64 // s, 96 // s) for s in strides]


def test_a_channels_last_transformer_encoder_is_returned_channels_first():
    """timm's Swin returns (N, H, W, C) levels; the encoder gives (N, C, H, W)."""
    enc = MODELS.build(dict(type='TimmEncoder', model_name='swin_tiny_patch4_window7_224',
                            img_size=(224, 224), embed_dim=24, depths=(1, 1, 1, 1),
                            num_heads=(1, 1, 2, 2)))
    assert enc.channels_last_output
    feats = enc(torch.rand(1, 3, 224, 224))
    assert [tuple(f.shape[1:]) for f in feats] == [
        (c, 224 // s, 224 // s) for c, s in zip(enc.out_channels, enc.strides)]
    assert enc.out_channels == (24, 48, 96, 192) and enc.strides == (4, 8, 16, 32)


def test_channels_last_memory_format_gives_the_same_levels():
    torch.manual_seed(0)
    plain = MODELS.build(dict(type='TimmEncoder', model_name='resnet18')).eval()
    fast = MODELS.build(dict(type='TimmEncoder', model_name='resnet18',
                             channels_last=True)).eval()
    fast.load_state_dict(plain.state_dict())
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(plain(x), fast(x)):
            assert torch.allclose(a, b, atol=1e-5)


def test_a_head_reading_other_channels_is_refused_at_build():
    cfg = dict(type='MultiLabelEncoderDecoder',
               backbone=dict(type='TimmEncoder', model_name='convnext_atto',
                             out_indices=(0, 1, 2, 3)),
               decode_head=dict(type='MultiLabelUNetHead', in_channels=[96, 192, 384, 768],
                                in_index=[0, 1, 2, 3], in_strides=[4, 8, 16, 32],
                                num_classes=3))
    with pytest.raises(ConfigError, match=r'in_channels \[96, 192, 384, 768\], but the '
                       r'convnext_atto levels \[0, 1, 2, 3\] have \[40, 80, 160, 320\]'):
        MODELS.build(cfg)


def test_unknown_model_and_offline_weights_are_one_line(monkeypatch):
    with pytest.raises(ConfigError, match="timm has no model 'convnext_tinyy'"):
        MODELS.build(dict(type='TimmEncoder', model_name='convnext_tinyy'))
    with pytest.raises(ConfigError, match=r"out_indices \(0, 9\) do not fit the levels of "
                       "'resnet18'"):
        MODELS.build(dict(type='TimmEncoder', model_name='resnet18', out_indices=(0, 9)))
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    monkeypatch.setenv('HF_HOME', '/nonexistent/hf')
    with pytest.raises(ConfigError, match='cannot load the weights of'):
        MODELS.build(dict(type='TimmEncoder', model_name='convnext_atto', pretrained=True))


@pytest.mark.slow
def test_unet_config_trains_then_tests_and_infers_at_full_resolution(tmp_path):
    """The shipped U-Net/ConvNeXt-S config without pretrained weights: 2 iterations on
    synthetic hand bones (tools/train.py), then tools/test.py and tools/inference.py
    on its checkpoint; probabilities at the image's own size."""
    data = tmp_path / 'data'
    assert run_tool('tools/make_synthetic_handbone.py', '--out', str(data), '--patients',
                    '3', '--size', '64x64').returncode == 0
    root = f'{data}/train'
    opts = ['model.backbone.pretrained=False', 'model.backbone.drop_path_rate=0.0',
            f'train_dataloader.dataset.data_root={root}',
            f'val_dataloader.dataset.data_root={root}',
            f'test_dataloader.dataset.data_root={root}', 'train_dataloader.dataset.num_folds=3',
            'val_dataloader.dataset.num_folds=3', 'test_dataloader.dataset.num_folds=3',
            'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
            'val_dataloader.num_workers=0', 'val_dataloader.persistent_workers=False',
            'test_dataloader.num_workers=0', 'test_dataloader.persistent_workers=False',
            'model.data_preprocessor.size=(64,64)',
            'train_dataloader.dataset.pipeline.2.scale=(64,64)',
            'train_dataloader.dataset.pipeline.4.crop_size=(64,64)',
            'train_dataloader.dataset.pipeline.8.size=(64,64)',
            'val_dataloader.dataset.pipeline.1.scale=(64,64)',
            'test_dataloader.dataset.pipeline.1.scale=(64,64)',
            'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
            'default_hooks.checkpoint.interval=2', 'default_hooks.logger.interval=1',
            'param_scheduler.0.end=1', 'param_scheduler.1.begin=1',
            'param_scheduler.1.end=2', 'log_level=WARNING']
    work = tmp_path / 'work'
    proc = run_tool('tools/train.py', UNET_512, '--work-dir', str(work), '--cfg-options', *opts)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = str(work / 'iter_2.pth')
    (scalars,) = glob.glob(f'{work}/*/vis_data/scalars.json')
    rows = [json.loads(line) for line in open(scalars)]
    assert any('mDice' in r for r in rows) and any('loss' in r for r in rows)
    proc = run_tool('tools/test.py', UNET_512, ckpt, '--work-dir', str(tmp_path / 't'),
                    '--cfg-options', *opts)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / 'probs'
    proc = run_tool('tools/inference.py', UNET_512, ckpt, '--img-dir', f'{data}/test/DCM',
                    '--out-dir', str(out), '--out-size', 'original', '--no-progress',
                    '--cfg-options', *opts)
    assert proc.returncode == 0, proc.stderr[-3000:]
    index = json.load(open(out / 'index.json'))
    assert index['task'] == 'multi-label' and len(index['classes']) == 29
    assert all(e['shape'] == [29, 64, 64] for e in index['images'])
    assert osp.isfile(ckpt)


TIMM_CONFIGS = sorted(glob.glob('custom_configs/unet/*.py')) + [
    'custom_configs/trash/unet_convnext-s_4xb4-20k_trash-512x512.py']


@pytest.mark.parametrize('config', TIMM_CONFIGS, ids=[osp.basename(c) for c in TIMM_CONFIGS])
def test_every_timm_config_builds_and_predicts_at_the_input_size(config):
    """Each shipped timm config with random weights: its head reads the encoder's
    levels (checked at build), and the logits have the input's size (65x97: not a
    multiple of 32)."""
    from mmseg.structures import SegDataSample

    from mmseg_ext.config.loading import load_config
    from mmseg_ext.config.model import build_bare_model
    cfg = load_config(config, {'model.backbone.pretrained': False})
    model = build_bare_model(cfg).eval()
    classes = 29 if 'handbone' in config else 11
    size = (65, 97)
    sample = SegDataSample(metainfo=dict(img_shape=size, ori_shape=size))
    image = torch.randint(0, 256, (3, *size), dtype=torch.uint8)
    with torch.no_grad():
        feats = model.extract_feat(torch.rand(1, 3, 96, 128))
        assert [f.shape[1] for f in feats] == list(model.backbone.out_channels)
        # the test path: the data preprocessor pads to a multiple of 32, the head
        # predicts at that padded size, the segmentor removes the padding
        out = model.test_step(dict(inputs=[image], data_samples=[sample]))
    assert out[0].seg_logits.data.shape == (classes, *size)
    with torch.no_grad():
        assert model.decode_head(list(feats)).shape[-2:] == (96, 128)  # stride 1
