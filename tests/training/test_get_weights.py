"""tools/get_weights.py: conversion to mmseg keys (offline, from a checkpoint in the
original BEiT layout built here), checksums, no second download, and the offline error;
train/test refuse a missing weights file in one line that names the tool."""
import hashlib
import os.path as osp

import pytest
import torch
from conftest import REPO, run_tool

from mmseg_ext.models.weights_catalog import WEIGHTS, PretrainedWeights
from mmseg_ext.training.weights import fetch_weights, is_valid

pytestmark = pytest.mark.stacks

TINY_BEIT = dict(img_size=(32, 32), patch_size=16, embed_dims=32, num_layers=2,
                 num_heads=2, out_indices=(1,))


def original_beit_layout(num_layers=2, dim=32, heads=2, window=2):
    """A random state dict named as Microsoft's BEiT release names it (``blocks.i``,
    ``norm1``, ``mlp.fc1``, ``patch_embed.proj``), written out here by hand."""
    torch.manual_seed(0)
    table = (2 * window - 1) ** 2 + 3
    state = {'cls_token': torch.randn(1, 1, dim),
             'patch_embed.proj.weight': torch.randn(dim, 3, 16, 16),
             'patch_embed.proj.bias': torch.randn(dim)}
    for i in range(num_layers):
        b = f'blocks.{i}.'
        state.update({
            b + 'gamma_1': torch.randn(dim), b + 'gamma_2': torch.randn(dim),
            b + 'norm1.weight': torch.randn(dim), b + 'norm1.bias': torch.randn(dim),
            b + 'attn.q_bias': torch.randn(dim), b + 'attn.v_bias': torch.randn(dim),
            b + 'attn.relative_position_bias_table': torch.randn(table, heads),
            b + 'attn.qkv.weight': torch.randn(3 * dim, dim),
            b + 'attn.proj.weight': torch.randn(dim, dim), b + 'attn.proj.bias': torch.randn(dim),
            b + 'norm2.weight': torch.randn(dim), b + 'norm2.bias': torch.randn(dim),
            b + 'mlp.fc1.weight': torch.randn(4 * dim, dim), b + 'mlp.fc1.bias': torch.randn(4 * dim),
            b + 'mlp.fc2.weight': torch.randn(dim, 4 * dim), b + 'mlp.fc2.bias': torch.randn(dim),
        })
    state['head.weight'] = torch.randn(10, dim)  # the classifier: not part of the backbone
    return state


#: original name -> mmseg name, the mapping mmseg's BEiT expects (written independently).
def expected_mmseg_name(name):
    name = name.replace('patch_embed.proj.', 'patch_embed.projection.')
    name = name.replace('blocks.', 'layers.').replace('.norm1.', '.ln1.')
    name = name.replace('.norm2.', '.ln2.').replace('.mlp.fc1.', '.ffn.layers.0.0.')
    return name.replace('.mlp.fc2.', '.ffn.layers.1.')


def test_beit_is_converted_and_loads_into_a_small_beit(tmp_path):
    from mmseg.models.backbones import BEiT
    original = original_beit_layout()
    src = tmp_path / 'beit_original.pth'
    torch.save({'model': original}, src)
    out = tmp_path / 'pretrain'
    tiny = tiny_beit_config(tmp_path)
    proc = run_tool('tools/get_weights.py', 'beit-base', '--url', src.as_uri(),
                    '--out-dir', str(out), '--no-progress', '--config', tiny)
    assert proc.returncode == 0, proc.stderr
    target = out / WEIGHTS['beit-base'].filename
    assert proc.stdout.strip() == (f'beit-base: {target} (downloaded from {src.as_uri()} '
                                   f'and converted; fits the backbone of '
                                   f'{osp.relpath(tiny, REPO)})')
    converted = torch.load(target, weights_only=True)
    for name, value in original.items():
        assert torch.equal(converted[expected_mmseg_name(name)], value), name
    model = BEiT(**TINY_BEIT)
    own = model.state_dict()
    backbone = {k: v for k, v in converted.items() if k in own}
    # every backbone tensor but the fixed position index comes from the checkpoint
    assert set(own) - set(backbone) == {f'layers.{i}.attn.relative_position_index'
                                        for i in range(2)}
    missing, _ = model.load_state_dict(backbone, strict=False)
    assert all('relative_position_index' in k for k in missing)
    assert torch.equal(model.layers[1].ffn.layers[1].weight, original['blocks.1.mlp.fc2.weight'])
    outs = model(torch.randn(1, 3, 32, 32))
    assert outs[0].shape == (1, 32, 2, 2) and torch.isfinite(outs[0]).all()
    # a second run finds the valid file and downloads nothing
    again = run_tool('tools/get_weights.py', 'beit-base', '--url', src.as_uri(),
                     '--out-dir', str(out), '--no-progress')
    assert again.returncode == 0
    assert again.stdout.strip() == f'beit-base: {target} (already there and valid)'


def tiny_beit_config(tmp_path):
    """upernet_beit.py with the backbone of ``TINY_BEIT`` (what the tiny file fits)."""
    path = tmp_path / 'tiny_beit.py'
    path.write_text(f"_base_ = ['{osp.join(REPO, 'custom_configs', 'upernet_beit.py')}']\n"
                    "model = dict(backbone=dict(img_size=(32, 32), embed_dims=32, "
                    "num_layers=2, num_heads=2, out_indices=(1,)))\n")
    return str(path)


def test_a_file_that_does_not_fit_the_config_backbone_is_not_published(tmp_path):
    """The tiny BEiT converts and holds BEiT keys, but it is not BEiT-B: checked against
    upernet_beit.py (the default for beit-base) it is refused, naming what differs."""
    src = tmp_path / 'beit_original.pth'
    torch.save({'model': original_beit_layout()}, src)
    out = tmp_path / 'pretrain'
    proc = run_tool('tools/get_weights.py', 'beit-base', '--url', src.as_uri(),
                    '--out-dir', str(out), '--no-progress')
    assert proc.returncode == 1, proc.stdout
    assert 'Traceback' not in proc.stderr
    lines = [x for x in proc.stderr.splitlines() if x.startswith('error:')]
    assert len(lines) == 1
    assert lines[0].startswith(f'error: {src.as_uri()}: does not fit the backbone of '
                               f'{osp.join(REPO, "custom_configs", "upernet_beit.py")} (')
    assert 'keys missing (layers.2.' in lines[0] and 'of another shape' in lines[0]
    assert lines[0].endswith('; nothing written')
    assert not out.exists()  # nothing published: the folder the run made is removed


def _fake(tmp_path, data: bytes, prefix: str):
    path = tmp_path / 'weights_src.pth'
    path.write_bytes(data)
    return path, PretrainedWeights(
        name='fake', filename=f'fake-{prefix}.pth', urls=(path.as_uri(),),
        check_key='x', override='model.pretrained=None', description='test',
        sha256_prefix=prefix)


def test_checksum_is_verified(tmp_path):
    data = b'weights of a test'
    good = hashlib.sha256(data).hexdigest()[:8]
    src, weights = _fake(tmp_path, data, good)
    result = fetch_weights(weights, str(tmp_path / 'out'), progress=False)
    assert result.status == 'downloaded' and open(result.path, 'rb').read() == data
    assert is_valid(result.path, weights) == (True, '')
    _, wrong = _fake(tmp_path, data, '00000000')
    from mmseg_ext.utils.errors import DownloadError
    with pytest.raises(DownloadError, match=f'SHA-256 {good}..., expected 00000000'):
        fetch_weights(wrong, str(tmp_path / 'out2'), progress=False)
    assert not (tmp_path / 'out2').exists()  # the folder the run made is removed


def test_offline_is_one_line_and_leaves_nothing(tmp_path):
    out = tmp_path / 'pretrain'
    url = 'http://127.0.0.1:9/beit.pth'   # port 9 (discard): connection refused
    proc = run_tool('tools/get_weights.py', 'beit-base', '--url', url, '--out-dir', str(out),
                    '--no-progress')
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and 'Traceback' not in proc.stderr
    assert lines[0].startswith(f'error: beit-base: download failed ({url}: ')
    assert lines[0].endswith('copy beit_base_patch16_224_pt22k_ft22k.pth into '
                             f'{out}/ yourself, or train from scratch with the config '
                             'setting model.pretrained=None')
    assert not out.exists()  # nothing published: the folder the run made is removed


def test_unknown_name_and_list(tmp_path):
    # a fresh interpreter: the stack's import notices (mmcv's MultiScaleDeformableAttention
    # warning) came before the error line there (round G)
    proc = run_tool('tools/get_weights.py', 'vit-huge', subprocess_run=True)
    assert proc.returncode == 2  # a command-line problem
    assert proc.stderr.strip() == ('error: NAME: unknown weights \'vit-huge\' (known: '
                                   'beit-base, swin-base, hrnetv2-w18, resnet101-v1c, '
                                   'mit-b2, convnext-small, efficientnetv2-s, '
                                   'resnext101-32x8d, '
                                   'swin-tiny, all, or timm:<model>)')
    listed = run_tool('tools/get_weights.py', '--list', '--out-dir', str(tmp_path))
    assert listed.returncode == 0
    for w in WEIGHTS.values():
        assert w.filename in listed.stdout


def test_missing_pretrained_weights_name_the_tool(tmp_path):
    """The headline command without the BEiT weights: one line naming get_weights.py."""
    if osp.exists(osp.join(REPO, 'pretrain', WEIGHTS['beit-base'].filename)):
        pytest.skip('the BEiT weights are present in this checkout')
    proc = run_tool('tools/train.py', 'custom_configs/upernet_beit.py',
                    '--work-dir', str(tmp_path / 'w'))
    assert proc.returncode == 1 and 'Traceback' not in proc.stderr
    assert [line for line in proc.stderr.splitlines() if line.startswith('error')] == [
        'error: pretrain/beit_base_patch16_224_pt22k_ft22k.pth not found: python '
        'tools/get_weights.py beit-base (or --cfg-options model.pretrained=None to train '
        'from scratch)']


def test_testing_a_checkpoint_does_not_need_the_backbone_weights(tmp_path):
    """test.py loads a whole checkpoint, so the pretrained file is not asked for; a
    checkpoint that does not fit the model is refused in one line instead."""
    ckpt = tmp_path / 'x.pth'
    torch.save({'state_dict': {'backbone.cls_token': torch.zeros(1, 1, 768)}}, ckpt)
    proc = run_tool('tools/test.py', 'custom_configs/upernet_beit.py', str(ckpt),
                    '--work-dir', str(tmp_path / 'w'), '--cfg-options',
                    f'test_dataloader.dataset.data_root={tmp_path / "data"}')
    errors = [line for line in proc.stderr.splitlines() if line.startswith('error')]
    assert proc.returncode == 1 and 'Traceback' not in proc.stderr, proc.stderr[-2000:]
    assert 'get_weights' not in proc.stderr
    assert len(errors) == 1 and errors[0].startswith(
        f'error: {ckpt}: does not fit the model of custom_configs/upernet_beit.py (')
    assert 'missing keys (backbone.patch_embed.projection.weight' in errors[0]


def test_missing_load_from_is_one_line(tmp_path):
    proc = run_tool('tools/train.py', 'custom_configs/demo/fcn_r18-tiny_shapes-64x80.py',
                    '--cfg-options', f'load_from={tmp_path}/gone.pth')
    assert proc.returncode == 1
    assert [line for line in proc.stderr.splitlines() if line.startswith('error')] == [
        f'error: {tmp_path}/gone.pth: checkpoint file not found']
    assert osp.isdir(tmp_path)


@pytest.mark.parametrize('content', ['foreign', 'garbage'])
def test_foreign_file_is_not_published_and_the_url_is_named(tmp_path, content):
    """A file without BEiT keys converts to nothing usable, and a file that is no
    checkpoint does not load: both name the URL (not the temporary file), exit 1 and
    leave nothing in the output folder."""
    src = tmp_path / 'other.pth'
    if content == 'foreign':
        torch.save({'model': {'conv1.weight': torch.zeros(4, 3, 3, 3)}}, src)
    else:
        src.write_bytes(b'not a checkpoint')
    out = tmp_path / 'pretrain'
    proc = run_tool('tools/get_weights.py', 'beit-base', '--url', src.as_uri(),
                    '--out-dir', str(out), '--no-progress')
    assert proc.returncode == 1, proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f'error: {src.as_uri()}: ')
    if content == 'foreign':
        assert 'does not hold beit-base weights' in lines[0]
    else:
        assert 'does not load as a checkpoint' in lines[0]
    assert '.part' not in lines[0]
    assert not out.exists()  # nothing published: the folder the run made is removed


def test_missing_timm_weights_name_the_tool(tmp_path):
    """The U-Net/ConvNeXt config without its timm weights file: one line naming the
    shortcut, before anything is built (timm itself is not needed for this)."""
    path = 'pretrain/timm/convnext_small.fb_in22k_ft_in1k.safetensors'
    if osp.exists(osp.join(REPO, path)):
        pytest.skip('the ConvNeXt weights are present in this checkout')
    proc = run_tool('tools/train.py', 'custom_configs/unet/unet_convnext-s_4xb2-20k_'
                    'handbone-512x512.py', '--work-dir', str(tmp_path / 'w'))
    assert proc.returncode == 1 and 'Traceback' not in proc.stderr
    assert [line for line in proc.stderr.splitlines() if line.startswith('error')] == [
        f'error: {path} not found: python tools/get_weights.py convnext-small (or '
        '--cfg-options model.backbone.pretrained=False to train from scratch)']
    assert not (tmp_path / 'w').exists()
