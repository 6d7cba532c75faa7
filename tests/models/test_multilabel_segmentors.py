"""Multi-label segmentors: geometry of post-processing, thresholds, slide/whole, TTA merge."""
import copy

import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

import mmseg_ext  # noqa: F401
from mmseg_ext.models.segmentors import resolve_thresholds
from mmseg_ext.utils.errors import ConfigError

init_default_scope('mmseg')
BN = dict(type='BN', requires_grad=True)
C = 3


def _model_cfg(test_cfg=None, **kw):
    cfg = dict(
        type='MultiLabelEncoderDecoder',
        data_preprocessor=dict(type='SegDataPreProcessor', size=(32, 32)),
        backbone=dict(type='ResNetV1c', depth=18, stem_channels=8, base_channels=8,
                      out_indices=(0, 1, 2, 3), dilations=(1, 1, 2, 4),
                      strides=(1, 2, 1, 1), norm_cfg=BN, contract_dilation=True),
        decode_head=dict(type='MultiLabelFCNHead', in_channels=64, in_index=3, channels=8,
                         num_convs=1, num_classes=C, norm_cfg=BN),
        test_cfg=test_cfg if test_cfg is not None else dict(mode='whole'))
    cfg.update(kw)
    return cfg


def _model(test_cfg=None, identity=True, **kw):
    """A tiny model; ``identity``: encode_decode returns the first C input channels, so
    every expected output can be written down from the input."""
    model = MODELS.build(_model_cfg(test_cfg, **kw)).eval()
    if identity:
        model.calls = 0

        def encode_decode(inputs, batch_img_metas):
            model.calls += 1
            return inputs[:, :C].clone()
        model.encode_decode = encode_decode
    return model


def _meta(**kw):
    meta = dict(ori_shape=(4, 5), img_shape=(4, 5), pad_shape=(4, 5),
                padding_size=[0, 0, 0, 0])
    meta.update(kw)
    return meta


def test_whole_inference_removes_padding_and_unflips():
    model = _model()
    logits = torch.randn(1, C, 6, 8)
    for direction, dim in (('horizontal', -1), ('vertical', -2)):
        sample = SegDataSample(metainfo=_meta(padding_size=[0, 3, 0, 2], flip=True,
                                              flip_direction=direction))
        out = model.predict(logits.clone(), [sample])[0]
        expected = logits[0, :, :4, :5].flip(dim)
        assert torch.equal(out.seg_logits.data, expected)
        assert out.pred_sem_seg.data.dtype == torch.uint8
        assert torch.equal(out.pred_sem_seg.data, (expected > 0).to(torch.uint8))


def test_resize_to_original_shape():
    model = _model()
    level = torch.tensor([-1.0, 0.3, 2.0]).view(1, C, 1, 1)
    sample = SegDataSample(metainfo=_meta(ori_shape=(9, 11), img_shape=(4, 5)))
    out = model.predict(level.expand(1, C, 4, 5).clone(), [sample])[0]
    assert out.seg_logits.data.shape == (C, 9, 11)
    assert torch.allclose(out.seg_logits.data, level[0].expand(C, 9, 11))
    assert out.pred_sem_seg.data.shape == (C, 9, 11)
    assert out.pred_sem_seg.data.flatten(1).tolist() == [[0] * 99, [1] * 99, [1] * 99]


def _constant_prob(probs, size=(4, 5)):
    p = torch.tensor(probs).view(1, C, 1, 1)
    return torch.logit(p).expand(1, C, *size).clone()


def test_thresholds_number_list_and_dict():
    inputs = _constant_prob([0.4, 0.55, 0.65])

    def pred(model):
        out = model.predict(inputs.clone(), [SegDataSample(metainfo=_meta())])[0]
        return out.pred_sem_seg.data[:, 0, 0].tolist()

    assert pred(_model()) == [0, 1, 1]                                   # default 0.5
    assert pred(_model(dict(mode='whole', threshold=0.6))) == [0, 0, 1]
    assert pred(_model(dict(mode='whole', threshold=[0.3, 0.6, 0.7]))) == [1, 0, 0]
    by_name = _model(dict(mode='whole', threshold={'b': 0.6, 'a': 0.35}))
    by_name.dataset_meta = dict(classes=('a', 'b', 'c'))
    assert pred(by_name) == [1, 0, 1]
    from_cfg = _model(dict(mode='whole', threshold={'c': 0.7}, classes=['a', 'b', 'c']))
    assert pred(from_cfg) == [0, 1, 0]


def test_threshold_errors():
    with pytest.raises(ValueError, match='threshold: 2 values, but there are 3 classes'):
        _model(dict(mode='whole', threshold=[0.5, 0.5]))
    with pytest.raises(ValueError, match=r"unknown class name\(s\) \['d'\]"):
        _model(dict(mode='whole', threshold={'d': 0.5}, classes=['a', 'b', 'c']))
    with pytest.raises(ValueError, match=r'\[0, 1\]'):
        _model(dict(mode='whole', threshold=1.5))
    no_names = _model(dict(mode='whole', threshold={'a': 0.5}))  # names resolved later
    with pytest.raises(ValueError, match='dataset_meta'):
        no_names.predict(torch.zeros(1, C, 4, 5), [SegDataSample(metainfo=_meta())])
    with pytest.raises(ValueError, match='2 class names'):
        resolve_thresholds({'a': 0.5}, 3, ['a', 'b'])
    assert resolve_thresholds(None, 2) == [0.5, 0.5]


def test_test_cfg_classes_in_another_order_than_the_model_is_refused():
    """Round V-2: ``test_cfg.classes`` reversed against the model's own class list
    (``dataset_meta``, set from the checkpoint) would move the threshold of 'a' to the
    channel of 'c': refused, not applied."""
    inputs = _constant_prob([0.4, 0.55, 0.65])
    model = _model(dict(mode='whole', threshold={'a': 0.99}, classes=['c', 'b', 'a']))
    model.dataset_meta = dict(classes=('a', 'b', 'c'))
    with pytest.raises(ConfigError) as info:
        model.predict(inputs.clone(), [SegDataSample(metainfo=_meta())])
    assert str(info.value) == (
        "model.test_cfg.classes is not the model's class list (dataset_meta) in order: "
        "class 0 is 'c' there but 'a' in the model's class list (dataset_meta), so a "
        'threshold given by name would apply to another channel (test_cfg.classes is not '
        'needed when the names are known)')
    same = _model(dict(mode='whole', threshold={'a': 0.3}, classes=['a', 'b', 'c']))
    same.dataset_meta = dict(classes=('a', 'b', 'c'))  # the same order: accepted
    out = same.predict(inputs.clone(), [SegDataSample(metainfo=_meta())])[0]
    assert out.pred_sem_seg.data[:, 0, 0].tolist() == [1, 1, 1]  # 0.4 > 0.3


def test_set_class_names_resolves_thresholds_by_name_and_names_the_config():
    """Round V-2/V-6: the tools give the model the checkpoint's class names, so a
    threshold by name needs no ``test_cfg.classes``; one in another order is refused
    up front, naming the config."""
    from mmseg_ext.models.segmentors.postprocess import set_class_names
    model = _model(dict(mode='whole', threshold={'b': 0.6}))
    set_class_names(model, ['a', 'b', 'c'], 'cfg.py')
    assert model.dataset_meta == dict(classes=('a', 'b', 'c'))
    assert model.class_thresholds().tolist() == pytest.approx([0.5, 0.6, 0.5])
    reversed_ = _model(dict(mode='whole', threshold={'b': 0.6}, classes=['c', 'b', 'a']))
    with pytest.raises(ConfigError) as info:
        set_class_names(reversed_, ['a', 'b', 'c'], 'cfg.py')
    assert str(info.value).startswith(
        "cfg.py: model.test_cfg.classes is not the model's class list (dataset_meta) in "
        "order: class 0 is 'c' there but 'a' in")


def test_check_test_cfg_classes_against_the_data_set():
    """Round V-2: a config whose ``test_cfg.classes`` is not its test data set's class
    list is refused when read; the same list, or none, passes."""
    from mmengine.config import Config

    from mmseg_ext.config.checks import check_test_cfg_classes
    data = dict(dataset=dict(type='BaseSegDataset', metainfo=dict(classes=('a', 'b', 'c'))))

    def cfg(classes):
        test_cfg = dict(mode='whole', threshold={'a': 0.4})
        if classes is not None:
            test_cfg['classes'] = classes
        return Config(dict(model=dict(type='MultiLabelEncoderDecoder', test_cfg=test_cfg),
                           test_dataloader=data))
    with pytest.raises(ConfigError) as info:
        check_test_cfg_classes(cfg(['a', 'c', 'b']), 'x.py', ('test_dataloader',))
    assert str(info.value) == (
        'x.py: model.test_cfg.classes is not the class list of test_dataloader.dataset '
        "in order: class 1 is 'c' there but 'b' in the class list of "
        'test_dataloader.dataset, so a threshold given by name would apply to another '
        'channel (test_cfg.classes is not needed when the names are known)')
    with pytest.raises(ConfigError, match='^x.py: model.test_cfg.classes names 2 classes, '
                       'the class list of test_dataloader.dataset 3$'):
        check_test_cfg_classes(cfg(['a', 'b']), 'x.py', ('test_dataloader',))
    check_test_cfg_classes(cfg(['a', 'b', 'c']), 'x.py', ('test_dataloader',))
    check_test_cfg_classes(cfg(None), 'x.py', ('test_dataloader',))
    from mmseg_ext.utils.errors import InvalidArgumentError
    with pytest.raises(InvalidArgumentError) as info:  # the list came from --cfg-options
        check_test_cfg_classes(cfg(['a', 'c', 'b']), 'x.py', ('test_dataloader',),
                               {'model.test_cfg.classes': ['a', 'c', 'b']})
    assert str(info.value).startswith('cfg_options: model.test_cfg.classes is not the '
                                      'class list of test_dataloader.dataset in order')


def test_slide_inference_stitches_windows():
    model = _model(dict(mode='slide', crop_size=(16, 16), stride=(8, 8)))
    inputs = torch.randn(1, C, 24, 40)
    sample = SegDataSample(metainfo=_meta(ori_shape=(24, 40), img_shape=(24, 40),
                                          pad_shape=(24, 40)))
    out = model.predict(inputs.clone(), [sample])[0]
    assert model.calls == 2 * 4  # h: 0, 8; w: 0, 8, 16, 24
    assert torch.allclose(out.seg_logits.data, inputs[0], atol=1e-6)


def test_real_network_whole_and_slide_shapes():
    for test_cfg in (dict(mode='whole'), dict(mode='slide', crop_size=(16, 16),
                                              stride=(12, 12))):
        model = _model(test_cfg, identity=False)
        sample = SegDataSample(metainfo=_meta(ori_shape=(20, 30), img_shape=(24, 28),
                                              pad_shape=(24, 28)))
        with torch.no_grad():
            out = model.predict(torch.randn(1, 3, 24, 28), [sample])[0]
        assert out.seg_logits.data.shape == (C, 20, 30)
        assert out.seg_logits.data.dtype == torch.float32
        assert out.pred_sem_seg.data.shape == (C, 20, 30)
        assert set(out.pred_sem_seg.data.unique().tolist()) <= {0, 1}


def test_multi_label_flag_and_head_check():
    model = _model()
    assert model.multi_label is True
    assert MODELS.get('MultiLabelCascadeEncoderDecoder').multi_label is True
    assert MODELS.get('MultiLabelSegTTAModel').multi_label is True
    cfg = _model_cfg()
    cfg['decode_head'] = dict(cfg['decode_head'], type='FCNHead')
    with pytest.raises(ConfigError, match='not a multi-label head'):
        MODELS.build(cfg)
    cfg = _model_cfg(auxiliary_head=dict(type='FCNHead', in_channels=32, in_index=2,
                                         channels=8, num_convs=1, num_classes=C))
    with pytest.raises(ConfigError, match='FCNHead is not a multi-label head'):
        MODELS.build(cfg)


def test_tta_merge_averages_probabilities():
    model = _model(dict(mode='whole', threshold=[0.5, 0.4, 0.6]))
    tta = MODELS.build(dict(type='MultiLabelSegTTAModel', module=model))
    g = torch.Generator().manual_seed(0)
    views = []
    for _ in range(3):
        s = SegDataSample(metainfo=_meta(img_path='x.png'))
        s.seg_logits = PixelData(data=torch.randn(C, 4, 5, generator=g) * 3)
        s.gt_sem_seg = PixelData(data=torch.zeros(C, 4, 5, dtype=torch.uint8))
        views.append(s)
    merged = tta.merge_preds([views])[0]
    mean = torch.zeros(C, 4, 5)
    for c in range(C):
        for y in range(4):
            for x in range(5):
                vals = [1 / (1 + torch.exp(-v.seg_logits.data[c, y, x])) for v in views]
                mean[c, y, x] = sum(vals) / 3
    assert torch.allclose(torch.sigmoid(merged.seg_logits.data), mean, atol=1e-5)
    thr = torch.tensor([0.5, 0.4, 0.6]).view(C, 1, 1)
    assert torch.equal(merged.pred_sem_seg.data, (mean > thr).to(torch.uint8))
    assert merged.pred_sem_seg.data.dtype == torch.uint8
    assert merged.img_path == 'x.png' and 'gt_sem_seg' in merged


def test_tta_test_step_unflips_views_before_averaging():
    model = _model()
    tta = MODELS.build(dict(type='MultiLabelSegTTAModel', module=model))
    img = torch.randn(C, 4, 5)
    base = _meta(ori_shape=(4, 5))
    plain = SegDataSample(metainfo=dict(base, flip=False))
    hflip = SegDataSample(metainfo=dict(base, flip=True, flip_direction='horizontal'))
    vflip = SegDataSample(metainfo=dict(base, flip=True, flip_direction='vertical'))
    data = dict(inputs=[[img], [img.flip(-1)], [img.flip(-2)]],
                data_samples=[[plain], [hflip], [vflip]])
    merged = tta.test_step(copy.deepcopy(data))[0]
    # every view un-flips to the same logits, so the mean probability is sigmoid(img)
    assert torch.allclose(torch.sigmoid(merged.seg_logits.data), torch.sigmoid(img),
                          atol=1e-5)
    # mixing flipped and unflipped views without un-flipping would give another answer
    wrong = (torch.sigmoid(img) + torch.sigmoid(img.flip(-1)) + torch.sigmoid(img.flip(-2))) / 3
    assert not torch.allclose(torch.sigmoid(merged.seg_logits.data), wrong, atol=1e-3)


def test_tta_with_real_network_equals_mean_of_views():
    model = _model(identity=False)
    tta = MODELS.build(dict(type='MultiLabelSegTTAModel', module=model)).eval()
    img = torch.randint(0, 255, (3, 24, 28), dtype=torch.uint8)
    big = torch.nn.functional.interpolate(img[None].float(), size=(36, 42))[0]
    metas = [dict(ori_shape=(24, 28), img_shape=(24, 28), flip=False),
             dict(ori_shape=(24, 28), img_shape=(24, 28), flip=True,
                  flip_direction='horizontal'),
             dict(ori_shape=(24, 28), img_shape=(36, 42), flip=False)]
    views = [img, img.flip(-1), big]
    data = dict(inputs=[[v] for v in views],
                data_samples=[[SegDataSample(metainfo=m)] for m in metas])
    with torch.no_grad():
        merged = tta.test_step(copy.deepcopy(data))[0]
        probs = [model.test_step(dict(inputs=[v], data_samples=[SegDataSample(metainfo=m)]))
                 [0].seg_logits.data.sigmoid() for v, m in zip(views, metas)]
    mean = sum(probs) / 3
    assert merged.seg_logits.data.shape == (C, 24, 28)
    assert torch.allclose(torch.sigmoid(merged.seg_logits.data), mean, atol=1e-5)
    assert torch.equal(merged.pred_sem_seg.data, (mean > 0.5).to(torch.uint8))


def test_test_cfg_plain_dict_is_accepted():
    model = MODELS.build(_model_cfg(test_cfg=None))
    assert isinstance(model.test_cfg, ConfigDict) and model.test_cfg.mode == 'whole'
