"""The ``views`` hash of a probability folder's ``source`` record (round W: W-6, the
threshold is post-processing and does not count; W-10, the data preprocessor does)."""
import hashlib
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
from conftest import REPO

from mmseg_ext.inference.source import (
    VIEWS_VERSION,
    inference_settings,
    model_identity,
    prediction_source,
    views_hash,
)

HANDBONE = osp.join(REPO, 'custom_configs/demo/unet-s5-tiny_multilabel_1xb4-1500i_'
                    'handbone-synth-128x128.py')
MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]


def fake(test_cfg=None, pipeline='P', swap=(), predict_with=None, dp_test_cfg=None, **dp):
    """A predictor as views_hash reads it: a segmentor with ``test_cfg`` and a stock
    data preprocessor (``dp``: mean/std/bgr_to_rgb/pad_val; ``dp_test_cfg``: its
    test-time padding, default ``size_divisor=16``)."""
    from mmseg.models.data_preprocessor import SegDataPreProcessor
    settings = dict(mean=MEAN, std=STD, bgr_to_rgb=True, pad_val=0,
                    test_cfg=dp_test_cfg or dict(size_divisor=16))
    settings.update(dp)
    model = torch.nn.Module()
    model.test_cfg = test_cfg
    model.data_preprocessor = SegDataPreProcessor(**settings)
    if predict_with is not None:
        model.predict_with = predict_with
    return SimpleNamespace(model=model, pipeline=pipeline, flip_swap_pairs=tuple(swap))


def test_post_processing_keys_do_not_change_the_views():
    """W-6: ``threshold`` (and ``classes``, the names thresholds may be given by) act
    after the probabilities; ``crop_size``/``stride`` are not read in whole mode."""
    base = views_hash(fake(dict(mode='whole', threshold=0.5)))
    assert views_hash(fake(dict(mode='whole', threshold=0.3))) == base
    assert views_hash(fake(dict(mode='whole', threshold=[0.2, 0.7],
                                classes=['a', 'b']))) == base
    assert views_hash(fake(None)) == base  # no test_cfg: whole-image inference
    assert views_hash(fake(dict(mode='whole', crop_size=(64, 64), stride=(32, 32)))) == base
    assert inference_settings(dict(mode='whole', threshold=0.3, classes=['a'])) == \
        dict(mode='whole')


@pytest.mark.parametrize('other', [
    dict(test_cfg=dict(mode='slide', crop_size=(64, 64), stride=(32, 32))),
    dict(pipeline='Q'),
    dict(swap=[(0, 1)]),
    dict(predict_with='student'),
    dict(mean=[0, 0, 0]),                                # W-10: the normalisation ...
    dict(std=[1, 1, 1]),
    dict(bgr_to_rgb=False),                              # ... the channel order ...
    dict(pad_val=255),                                   # ... and the test padding
    dict(dp_test_cfg=dict(size_divisor=32)),
    dict(dp_test_cfg=dict(size=(128, 128)))])
def test_what_changes_the_probabilities_changes_the_views(other):
    """W-10: another input normalisation, channel order or test padding gives other
    probabilities, so other views (refused as "the same views" before); so do the
    window-by-window mode, the pipeline, the swap pairs and a wrapper's network."""
    base = views_hash(fake(dict(mode='whole', threshold=0.5)))
    other = dict(other)
    test_cfg = other.pop('test_cfg', dict(mode='whole', threshold=0.5))
    assert views_hash(fake(test_cfg, **other)) != base


def test_window_settings_count_in_slide_mode():
    slide = views_hash(fake(dict(mode='slide', crop_size=(64, 64), stride=(32, 32))))
    assert views_hash(fake(dict(mode='slide', crop_size=(64, 64), stride=(48, 48)))) != slide
    assert views_hash(fake(dict(mode='slide', crop_size=[64, 64], stride=[32, 32],
                                threshold=0.2))) == slide


@pytest.fixture(scope='module')
def handbone(tmp_path_factory):
    from robustness.cv_fakes import model_checkpoint
    return model_checkpoint(HANDBONE, tmp_path_factory.mktemp('src') / 'm.pth')


def test_real_predictors_threshold_and_mean(handbone):
    """The W-6 and W-10 runs of round W on the demo U-Net: ``model.test_cfg.threshold``
    keeps the views, ``model.data_preprocessor.mean`` changes them; the checkpoint is
    named by the sha256 of its bytes."""
    from mmseg_ext.inference.predictor import build_predictor
    plain = build_predictor(HANDBONE, handbone)
    thr = build_predictor(HANDBONE, handbone, cfg_options={'model.test_cfg.threshold': 0.3})
    mean0 = build_predictor(HANDBONE, handbone,
                            cfg_options={'model.data_preprocessor.mean': [0, 0, 0]})
    first = prediction_source(plain, HANDBONE, handbone, False, 'native')
    assert first['checkpoint_sha256'] == hashlib.sha256(open(handbone, 'rb').read()
                                                        ).hexdigest()
    assert prediction_source(thr, HANDBONE, handbone, False, 'original')['views'] == \
        first['views']
    assert prediction_source(mean0, HANDBONE, handbone, False, 'native')['views'] != \
        first['views']
    assert 'onnx_sha256' not in first and 'exported_from' not in first
    # the record says which formula hashed its views (a record without it is 1)
    assert first['views_version'] == 2
    assert model_identity(first).views_version == 2
    assert model_identity({k: v for k, v in first.items() if k != 'views_version'}
                          ).views_version == 1


def test_the_views_formula_is_version_2():
    """X-6: a folder's ``views`` compares only with hashes of its own formula
    (``views_version``). This pins version 2's hash of one predictor (the formula of
    commit 47a50e2, which also gave round X's folders the hash 13b7d1e86c35bd61 that
    this code gives them): a change of :func:`views_hash` that moves it must raise
    ``VIEWS_VERSION`` (and this pin), or old and new folders of one model at two sizes
    are averaged as two models."""
    assert VIEWS_VERSION == 2
    assert views_hash(fake(dict(mode='whole', threshold=0.5))) == 'e66eddf0e448848f'
