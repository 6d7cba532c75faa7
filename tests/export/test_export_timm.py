"""A U-Net on a timm encoder (ConvNeXt-S, the hand-bone config) through tools/export.py:
parity with torch on the same images, then tools/inference.py with the .onnx into
make_submission --check. CI runs it in the timm environment (``-m timm``)."""
import os
import os.path as osp

import numpy as np
import pytest
from conftest import REPO, require_timm, run_tool

from .onnx_models import require_onnx, write_checkpoint
from .test_export import TOLERANCE, assert_same_masks

pytestmark = [pytest.mark.timm, pytest.mark.slow]

CONFIG = 'custom_configs/unet/unet_convnext-s_4xb2-20k_handbone-512x512.py'


def test_timm_unet_exports_with_parity_and_submits(tmp_path, fast_cpu):
    require_timm()
    require_onnx()
    from mmseg_ext.datasets.synthetic.hand_bone import make_handbone_dataset
    from mmseg_ext.inference.predictor import build_predictor
    data = tmp_path / 'hands'
    make_handbone_dataset(str(data), num_patients=0, num_test_patients=1,
                          images_per_patient=2, size=(90, 72), seed=4)
    img_dir = str(data / 'test' / 'DCM')
    config = tmp_path / 'unet_timm_small.py'  # no pretrained file, 64-pixel test scale
    config.write_text(
        f"_base_ = ['{osp.join(REPO, CONFIG)}']\n"
        "model = dict(backbone=dict(pretrained=False))\n"
        "test_dataloader = dict(dataset=dict(pipeline=[\n"
        "    dict(type='LoadImageFromFileChecked'),\n"
        "    dict(type='Resize', scale=(64, 64), keep_ratio=True),\n"
        "    dict(type='PackMultiLabelSegInputs')]))\n")
    config = str(config)
    ckpt = write_checkpoint(config, tmp_path / 'unet_timm.pth')
    onnx = str(tmp_path / 'deploy' / 'unet_timm.onnx')
    proc = run_tool('tools/export.py', config, ckpt, '--out', onnx)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert '29 classes (multi-label), input N x 3 x H x W dynamic' in proc.stdout
    torch_p = build_predictor(config, ckpt, device='cpu')
    onnx_p = build_predictor(config, onnx, device='cpu')
    for name in sorted(os.listdir(osp.join(img_dir, 'ID001'))):
        img = osp.join(img_dir, 'ID001', name)
        expected, _ = torch_p.predict(img)
        got, _ = onnx_p.predict(img)
        assert got.shape == expected.shape and got.shape[0] == 29
        assert np.abs(got - expected).max() <= TOLERANCE
        assert assert_same_masks(got, expected, True) <= 1
    probs = tmp_path / 'probs'
    proc = run_tool('tools/inference.py', config, onnx, '--img-dir', img_dir, '--out-dir',
                    str(probs), '--device', 'cpu', '--no-progress')
    assert proc.returncode == 0, proc.stderr[-3000:]
    csv = tmp_path / 'sub.csv'
    proc = run_tool('tools/make_submission.py', str(probs), '--format', 'handbone',
                    '--img-dir', img_dir, '--out', str(csv), '--no-progress')
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = run_tool('tools/make_submission.py', '--check', str(csv), '--format', 'handbone',
                    '--img-dir', img_dir, '--no-progress')
    assert proc.returncode == 0 and 'check OK' in proc.stdout, proc.stdout[-3000:]
