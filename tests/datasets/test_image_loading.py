"""One image reader behind every shipped config: 16-bit images scaled by their real bit
depth, unreadable files named in one error, multi-class configs included."""
import glob
import os.path as osp

import cv2
import numpy as np
import pytest
from conftest import REPO
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmseg_ext.utils.errors import DataFileError

pytestmark = pytest.mark.stacks
SHIPPED = sorted(p for p in glob.glob(osp.join(REPO, 'custom_configs', '**', '*.py'),
                                      recursive=True) if '_base_' not in p)


def _pipelines(cfg):
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(key)
        dataset = (loader or {}).get('dataset') or {}
        for ds in dataset.get('datasets', [dataset]):  # ConcatDataset configs
            if ds.get('pipeline'):
                yield f'{key}.dataset.pipeline', ds['pipeline']
    from mmseg_ext.config.tta import config_tta_pipeline
    yield 'the TTA pipeline', config_tta_pipeline(cfg, 'config')
    for key in ('infer_pipeline', 'unlabelled_pipeline'):
        if cfg.get(key):
            yield key, cfg[key]


@pytest.mark.slow
def test_every_shipped_pipeline_loads_with_the_checked_reader():
    seen = 0
    for path in SHIPPED:
        cfg = Config.fromfile(path)
        for where, pipeline in _pipelines(cfg):
            loaders = [s['type'] for s in pipeline if 'LoadImage' in str(s.get('type'))]
            assert loaders == ['LoadImageFromFileChecked'], (path, where, loaders)
            seen += 1
    assert seen >= 3 * len(SHIPPED)


def _camvid_test_pipeline():
    from mmengine.dataset import Compose

    import mmseg_ext  # noqa: F401
    init_default_scope('mmseg')
    cfg = Config.fromfile(osp.join(REPO, 'custom_configs', 'camvid',
                                   'fcn_r18-tiny_1xb8-2k_camvid-half-180x240.py'))
    steps = [s for s in cfg.test_pipeline if 'Annotations' not in s['type']]
    return Compose(steps)


def test_12_bit_png_reaches_a_multiclass_model_at_full_range(tmp_path):
    img = np.zeros((18, 24, 3), np.uint16)
    img[..., 0] = 4000          # 12-bit data in a 16-bit PNG (max 4095)
    img[:9, :, 1] = 2048
    path = str(tmp_path / 'x.png')
    cv2.imwrite(path, img)
    data = _camvid_test_pipeline()(dict(img_path=path))
    got = data['inputs'].numpy()  # (3, H, W) uint8, BGR as stored
    # round(v * 255 / 4095): 4000 -> 249, 2048 -> 128 (stock loading: 15 and 8)
    assert got[0].max() == 249 and got[1].max() == 128


@pytest.mark.parametrize('content,problem', [
    (b'', 'cannot decode image'), (b'not an image at all', 'cannot decode image')])
def test_unreadable_image_is_one_error_naming_the_file(tmp_path, content, problem):
    path = tmp_path / 'bad.jpg'
    path.write_bytes(content)
    with pytest.raises(DataFileError, match=f'{path}: {problem}'):
        _camvid_test_pipeline()(dict(img_path=str(path)))


def test_truncated_png_is_one_error(tmp_path):
    good = tmp_path / 'good.png'
    cv2.imwrite(str(good), np.random.default_rng(0).integers(0, 255, (64, 64, 3),
                                                             dtype=np.uint8))
    bad = tmp_path / 'trunc.png'
    bad.write_bytes(good.read_bytes()[:200])
    with pytest.raises(DataFileError, match=f'{bad}: cannot decode image'):
        _camvid_test_pipeline()(dict(img_path=str(bad)))
