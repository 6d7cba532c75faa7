"""Shared pieces of the export tests: the optional packages, tiny checkpoints, images."""
import os
import os.path as osp

import pytest
import torch
from conftest import REPO

#: the demo U-Net (multi-label, 29 classes) and the tiny FCN (multi-class, 4 classes)
UNET = 'custom_configs/demo/unet-s5-tiny_multilabel_1xb4-1500i_handbone-synth-128x128.py'
FCN = 'custom_configs/demo/fcn_r18-tiny_shapes-64x80.py'


def require_onnx():
    """Skip where the export extra is missing, unless ``MMSEG_EXT_REQUIRE_ONNX=1`` (CI,
    whose environments install it), where its absence is a failure."""
    for name in ('onnx', 'onnxscript', 'onnxruntime'):
        try:
            __import__(name)
        except ImportError as exc:
            if os.environ.get('MMSEG_EXT_REQUIRE_ONNX') == '1':
                pytest.fail(f'{name} does not import ({exc}) where CI installed it')
            pytest.skip(f'{name} is not installed (requirements/export.txt)')


def write_checkpoint(config, path, seed=0, cfg_options=None):
    """A checkpoint of ``config``'s model with random weights whose last layer is scaled
    up, so that few probabilities sit near a threshold (a trained model's are spread
    too); returns ``path``."""
    from mmseg_ext.config.loading import load_config
    from mmseg_ext.config.model import build_bare_model
    cfg = load_config(osp.join(REPO, config), cfg_options)
    torch.manual_seed(seed)
    model = build_bare_model(cfg)
    state = model.state_dict()
    for key in state:
        if 'conv_seg' in key:
            state[key] = state[key] * 32
    torch.save({'state_dict': state, 'meta': {}}, path)
    return str(path)


def listing(folder):
    """Every path under ``folder`` (files and folders, hidden ones too), sorted."""
    out = []
    for root, dirs, files in os.walk(folder):
        out += [osp.relpath(osp.join(root, n), folder) for n in dirs + files]
    return sorted(out)
