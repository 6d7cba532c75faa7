"""Every shipped model predicts an image of any size: odd, non-square, smaller than its
crop, and its smallest TTA view; the prediction comes back at the image's size. Models
whose backbone needs a size pad to it (BEiT to its window, the demo UNet to a multiple
of 16) and cut the padding off the prediction."""
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from config_smoke import SHRINK
from conftest import REPO
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import init_default_scope

pytestmark = [pytest.mark.stacks, pytest.mark.slow]

CONFIGS = {
    'upernet_beit.py': 'beit', 'upernet_swin.py': 'swin', 'ocrnet_hr18.py': 'hrnet',
    'deeplabv3_r101.py': 'resnet',
    'trash/upernet_beit-base_8xb2-20k_trash-512x512.py': 'beit',
    'port/upernet_swin-base-patch4-window7-in22k-pre_8xb2-20k_port-512x512.py': 'swin',
    'camvid/fcn_r18-tiny_1xb8-2k_camvid-half-180x240.py': 'none',
    'demo/fcn_r18-tiny_shapes-64x80.py': 'none',
    'demo/unet-s5-tiny_multilabel_1xb4-1500i_handbone-synth-128x128.py': 'none',
}
H, W = 37, 53


@pytest.fixture(scope='module')
def odd_image(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('odd') / 'odd.png')
    cv2.imwrite(path, np.random.default_rng(0).integers(0, 255, (H, W, 3), np.uint8))
    return path


def _views(pipeline, img):
    from mmseg_ext.inference.predictor import _drop_annotation_loaders
    data = Compose(_drop_annotation_loaders(pipeline))(dict(img_path=img))
    inputs, samples = data['inputs'], data['data_samples']
    if not isinstance(inputs, list):
        return [(inputs, samples)]
    return list(zip(inputs, samples))


@pytest.mark.parametrize('config', list(CONFIGS), ids=[osp.basename(c)[:-3] for c in CONFIGS])
def test_odd_sized_image_predicts_at_its_size(config, odd_image, fast_cpu):
    import mmseg_ext  # noqa: F401
    from mmseg_ext.config.model import build_bare_model
    from mmseg_ext.config.tta import config_test_pipeline, config_tta_pipeline
    init_default_scope('mmseg')
    cfg = Config.fromfile(osp.join(REPO, 'custom_configs', config))
    cfg.merge_from_dict(SHRINK[CONFIGS[config]])
    test = config_test_pipeline(cfg)
    if CONFIGS[config] != 'none':  # shrunk backbones: test at the image's own scale
        train = cfg.train_dataloader.dataset.get('pipeline') or []
        for step in [*test, *train]:  # training too: the TTA views keep to its range
            if step['type'] in ('Resize', 'RandomResize'):
                step['scale'] = (W, H)
    tta = config_tta_pipeline(cfg, config)  # its views built from that test pipeline
    model = build_bare_model(cfg).eval()
    test_view = _views(test, odd_image)
    smallest = min(_views(tta, odd_image), key=lambda v: v[1].img_shape[0])
    assert smallest[1].img_shape[0] < test_view[0][1].img_shape[0]
    for inputs, sample in test_view + [smallest]:
        with torch.no_grad():
            out = model.test_step(dict(inputs=[inputs], data_samples=[sample]))[0]
        assert tuple(out.seg_logits.shape[-2:]) == (H, W)
        assert torch.isfinite(out.seg_logits.data).all()
