"""TTA views named in a config (``tta_views``) and built from its own test pipeline.

The views must be exactly the named ratios of what the test pipeline makes, at any image
size; default views keep to what the model was trained on (scales inside the training
range, flips only when training flips and the data set allows them); each way a view
leaves training is one warning line; bad ``tta_views`` are one error line.
"""
import logging
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from conftest import REPO, run_tool
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope
from test_tta import _Capture

from mmseg_ext.config.tta import (
    HFLIP_NATURAL_KEY,
    check_tta_config,
    config_test_pipeline,
    config_tta_pipeline,
    config_tta_views,
    training_flip_problem,
)
from mmseg_ext.utils.errors import ConfigError

pytestmark = pytest.mark.stacks

#: multi-label, trained at scales 0.9-1.1 of its test scale (128), never flipped
DEMO = osp.join(REPO, 'custom_configs', 'demo',
                'unet-s5-tiny_multilabel_1xb4-1500i_handbone-synth-128x128.py')
#: softmax, trained with flips, tested at the image's own size (no resize)
SHAPES = osp.join(REPO, 'custom_configs', 'demo', 'fcn_r18-tiny_shapes-64x80.py')


@pytest.fixture(autouse=True)
def _scope():
    import mmseg_ext
    mmseg_ext.register_all_modules()
    init_default_scope('mmseg')


@pytest.fixture
def warnings_seen():
    logger = MMLogger.get_current_instance()
    handler = _Capture()  # the handler of test_tta.py's log capture
    logger.addHandler(handler)
    yield lambda: [r.getMessage() for r in handler.records if r.levelno >= logging.WARNING]
    logger.removeHandler(handler)


def _rescaled(shape, ratio):
    """mmcv's keep-ratio rescale of an ``(H, W)`` image by ``ratio`` (its rounding)."""
    h, w = shape
    return int(h * ratio + 0.5), int(w * ratio + 0.5)


@pytest.mark.parametrize('size', [(300, 200), (97, 131), (1024, 768)])
def test_named_views_are_exact_ratios_of_the_test_scale(tmp_path, size):
    """Real images of three sizes through the built pipeline: each view is the named ratio
    times the image the test pipeline makes (found by running the test pipeline)."""
    cfg = Config.fromfile(DEMO)
    cfg.tta_views = dict(scales=(0.5, 1.0, 1.5), flip=True)
    img = str(tmp_path / 'ID001' / 'a.png')
    osp.isdir(osp.dirname(img)) or __import__('os').makedirs(osp.dirname(img))
    cv2.imwrite(img, np.full(size, 77, np.uint8))
    test = Compose(config_test_pipeline(cfg))(dict(img_path=img))
    test_shape = tuple(test['data_samples'].img_shape)
    data = Compose(config_tta_pipeline(cfg, DEMO))(dict(img_path=img))
    got = sorted((tuple(s.img_shape), bool(s.flip)) for s in data['data_samples'])
    want = sorted((_rescaled(test_shape, r), f) for r in (0.5, 1.0, 1.5)
                  for f in (False, True))
    assert got == want
    assert all(tuple(s.ori_shape) == size for s in data['data_samples'])


def test_default_views_keep_to_training(warnings_seen):
    demo = config_tta_views(Config.fromfile(DEMO), DEMO)
    assert demo.scales == (0.9, 1.0, 1.1) and demo.flip is False  # 0.9-1.1, no flips
    shapes = config_tta_views(Config.fromfile(SHAPES), SHAPES)
    assert shapes.scales == (0.75, 1.0, 1.25) and shapes.flip is True  # no range known
    cfg = Config.fromfile(DEMO)
    check_tta_config(cfg, DEMO)
    assert warnings_seen() == []  # the defaults never leave training


def test_flip_without_training_flips_warns_in_one_line(warnings_seen):
    cfg = Config.fromfile(DEMO)
    cfg.tta_views = dict(flip=True)
    check_tta_config(cfg, DEMO)
    msgs = warnings_seen()
    assert len(msgs) == 1 and 'the training pipeline never flips' in msgs[0], msgs


def test_scale_outside_training_range_warns_in_one_line(warnings_seen):
    cfg = Config.fromfile(DEMO)
    cfg.tta_views = dict(scales=(0.75, 1.0, 1.25))
    check_tta_config(cfg, DEMO)
    msgs = warnings_seen()
    assert len(msgs) == 1 and 'view scale 0.75, 1.25 lies outside the training scale ' \
        'range 0.90-1.10' in msgs[0], msgs


def test_explicit_tta_pipeline_wins_with_the_same_checks(warnings_seen):
    cfg = Config.fromfile(DEMO)
    built = config_tta_pipeline(cfg, DEMO)
    cfg.tta_pipeline = built
    cfg.tta_pipeline[2]['transforms'][0][0]['scale_factor'] = 0.5  # written by hand
    check_tta_config(cfg, DEMO)
    assert cfg.tta_pipeline[2]['transforms'][0][0]['scale_factor'] == 0.5  # kept as written
    msgs = warnings_seen()
    assert len(msgs) == 1 and 'view scale 0.5 lies outside' in msgs[0], msgs


def _unnatural(cfg):
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.setdefault('metainfo', {})[HFLIP_NATURAL_KEY] = False
    return cfg


def test_unnatural_flips_leave_tta_and_warn_in_training(warnings_seen):
    cfg = _unnatural(Config.fromfile(SHAPES))  # training flips
    assert config_tta_views(cfg, SHAPES).flip is False
    assert 'declares horizontal_flip_natural=False' in training_flip_problem(cfg)
    assert training_flip_problem(Config.fromfile(SHAPES)) is None
    cfg.tta_views = dict(flip=True)
    check_tta_config(cfg, SHAPES)
    msgs = warnings_seen()
    assert len(msgs) == 1 and 'declares horizontal_flip_natural=False' in msgs[0], msgs


@pytest.mark.parametrize('views,problem', [
    (dict(scales=[0]), 'scale 0 is not a positive number'),
    (dict(scales=[-1.0, 1.0]), 'scale -1.0 is not a positive number'),
    (dict(scales=['big']), "scale 'big' is not a positive number"),
    (dict(scales=[]), 'scales must be a non-empty list of positive numbers, got []'),
    (dict(scales=[float('nan')]), 'scale nan is not a positive number'),
    (dict(flip='yes'), "flip must be True or False, got 'yes'"),
    (dict(scale=[1.0]), "unknown key 'scale' (scales, flip)"),
])
def test_bad_views_are_one_config_error(views, problem):
    cfg = Config.fromfile(DEMO)
    cfg.tta_views = views
    with pytest.raises(ConfigError) as info:
        check_tta_config(cfg, DEMO)
    assert str(info.value) == f'{DEMO}: tta_views: {problem}'


@pytest.fixture(scope='module')
def demo_checkpoint(tmp_path_factory):
    from mmseg_ext.config.model import build_bare_model
    path = tmp_path_factory.mktemp('ckpt') / 'demo.pth'
    torch.save({'state_dict': build_bare_model(Config.fromfile(DEMO)).state_dict(),
                'meta': {}}, path)
    return str(path)


@pytest.mark.parametrize('option', ['tta_views.scales=[0]', 'tta_views.scales=[]',
                                    'tta_views.scales=abc'])
def test_inference_refuses_bad_views_in_one_line(tmp_path, demo_checkpoint, option):
    imgs = tmp_path / 'imgs'
    imgs.mkdir()
    cv2.imwrite(str(imgs / 'a.png'), np.full((64, 80), 90, np.uint8))
    out = tmp_path / 'out'
    proc = run_tool('tools/inference.py', DEMO, demo_checkpoint, '--img-dir', str(imgs),
                    '--out-dir', str(out), '--tta', '--no-progress', '--cfg-options', option)
    errors = [x for x in proc.stderr.splitlines() if x.startswith('error')]
    assert proc.returncode == 1 and 'Traceback' not in proc.stderr, proc.stderr[-2000:]
    assert len(errors) == 1 and errors[0].startswith(f'error: {DEMO}: tta_views: '), errors
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ['imgs']


def test_tools_test_warns_once_for_a_flipped_view_without_training_flips(
        tmp_path, demo_checkpoint):
    from mmseg_ext.datasets.synthetic.hand_bone import make_handbone_dataset
    make_handbone_dataset(str(tmp_path / 'd'), num_patients=3, images_per_patient=1,
                          size=(64, 80), num_test_patients=1, seed=3, progress=False)
    opts = [f'test_dataloader.dataset.data_root={tmp_path / "d" / "train"}',
            'test_dataloader.dataset.num_folds=3', 'test_dataloader.num_workers=0',
            'test_dataloader.persistent_workers=False', 'tta_views.flip=True',
            'log_level=WARNING']
    proc = run_tool('tools/test.py', DEMO, demo_checkpoint, '--tta', '--work-dir',
                    str(tmp_path / 'w'), '--cfg-options', *opts)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [x for x in (proc.stdout + proc.stderr).splitlines()
             if 'the training pipeline never flips' in x]
    assert len(lines) == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
