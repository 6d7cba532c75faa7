"""MeanTeacherSegmentor: confidence mask, unsup weight, no teacher gradient, stock Runner."""
import copy
import os
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.runner import Runner
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg.utils import register_all_modules

import mmseg_ext  # noqa: F401
from mmseg_ext.datasets.synthetic.shapes import SHAPES_CLASSES, make_shapes_dataset
from mmseg_ext.models.segmentors.mean_teacher import masked_cross_entropy, pseudo_labels

NUM_CLASSES = len(SHAPES_CLASSES)
NORM = dict(type='BN', requires_grad=True)
STUDENT = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(type='SegDataPreProcessor', mean=[128.0] * 3, std=[64.0] * 3,
                           bgr_to_rgb=True, pad_val=0, seg_pad_val=255, size=(32, 40)),
    backbone=dict(type='ResNetV1c', depth=18, stem_channels=8, base_channels=8,
                  num_stages=4, out_indices=(0, 1, 2, 3), dilations=(1, 1, 2, 4),
                  strides=(1, 2, 1, 1), norm_cfg=NORM, contract_dilation=True),
    decode_head=dict(type='FCNHead', in_channels=64, in_index=3, channels=16, num_convs=1,
                     concat_input=False, num_classes=NUM_CLASSES, norm_cfg=NORM,
                     align_corners=False,
                     loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)),
    train_cfg=dict(), test_cfg=dict(mode='whole'))


def build(**kwargs):
    register_all_modules(init_default_scope=True)
    return MODELS.build(dict(type='MeanTeacherSegmentor', segmentor=copy.deepcopy(STUDENT),
                             **kwargs))


def sample(labelled, h=32, w=40, seed=0):
    ds = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w)))
    if labelled:
        g = torch.Generator().manual_seed(seed)
        ds.gt_sem_seg = PixelData(data=torch.randint(0, NUM_CLASSES, (1, h, w), generator=g))
    return ds


def test_confidence_mask_against_slow_reference():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 4, 5, generator=g) * 2
    thr = 0.6
    got = pseudo_labels(logits.clone(), thr)
    # slow reference: per pixel softmax, max, argmax
    want = torch.empty(2, 4, 5, dtype=torch.long)
    for n in range(2):
        for y in range(4):
            for x in range(5):
                e = [float(np.exp(v)) for v in logits[n, :, y, x]]
                p = [v / sum(e) for v in e]
                want[n, y, x] = 255 if max(p) < thr else int(np.argmax(p))
    assert torch.equal(got, want)
    assert 0 < (want == 255).sum() < want.numel()  # the example exercises both cases
    student = torch.randn(2, 3, 4, 5, generator=g)
    ce, count = 0.0, 0
    for n in range(2):
        for y in range(4):
            for x in range(5):
                t = int(want[n, y, x])
                if t != 255:
                    ce -= float(F.log_softmax(student[n, :, y, x], 0)[t])
                    count += 1
    assert abs(float(masked_cross_entropy(student, want)) - ce / count) < 1e-5
    all_ignored = torch.full((2, 4, 5), 255, dtype=torch.long)
    assert float(masked_cross_entropy(student, all_ignored)) == 0.0


def test_unsup_weight_zero_and_no_teacher_gradient():
    torch.manual_seed(0)
    inputs = torch.randn(4, 3, 32, 40)
    samples = [sample(True, seed=1), sample(False), sample(True, seed=2), sample(False)]
    model = build(unsup_weight=0.0, conf_thresh=0.0)
    model.train()
    losses = model.loss(inputs, samples)
    assert float(losses['loss_unsup']) == 0.0
    model = build(unsup_weight=1.0, conf_thresh=0.0)
    model.train()
    losses = model.loss(inputs, samples)
    assert float(losses['loss_unsup']) > 0
    assert not model.teacher.training
    total = sum(v for k, v in losses.items() if 'loss' in k)
    total.backward()
    assert all(p.grad is None for p in model.teacher.parameters())
    assert all(not p.requires_grad for p in model.teacher.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for p in model.student.parameters())
    # first step copies the student; later steps follow decay (checked on one tensor)
    t0 = model.teacher.decode_head.conv_seg.weight.clone()
    s0 = model.student.decode_head.conv_seg.weight.detach().clone()
    assert torch.equal(t0, s0)
    with torch.no_grad():
        model.student.decode_head.conv_seg.weight.add_(1.0)
    model.ema_update()
    want = 0.99 * t0 + 0.01 * (s0 + 1.0)
    assert torch.allclose(model.teacher.decode_head.conv_seg.weight, want, atol=1e-6)


def write_split(root, names, path):
    with open(osp.join(root, path), 'w') as f:
        f.write(''.join(f'{n}\n' for n in names))


def test_two_iterations_with_stock_runner(tmp_path):
    root = make_shapes_dataset(str(tmp_path / 'shapes'), num_train=8, num_val=2,
                               size=(32, 40))
    stems = sorted(n[:-4] for n in os.listdir(osp.join(root, 'images', 'train')))
    write_split(root, stems[:2], 'labelled.txt')
    write_split(root, stems[2:], 'unlabelled.txt')
    common = dict(type='BaseSegDataset', data_root=root, img_suffix='.png',
                  seg_map_suffix='.png', metainfo=dict(classes=SHAPES_CLASSES))
    lab_pipe = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
                dict(type='RandomFlip', prob=0.5), dict(type='PackSegInputs')]
    unl_pipe = [dict(type='LoadImageFromFile'), dict(type='RandomFlip', prob=0.5),
                dict(type='PackSegInputs')]
    cfg = Config(dict(
        model=dict(type='MeanTeacherSegmentor', segmentor=copy.deepcopy(STUDENT),
                   unsup_weight=1.0, conf_thresh=0.5, ema_decay=0.9),
        work_dir=str(tmp_path / 'work'),
        train_dataloader=dict(
            batch_size=4, num_workers=0, sampler=dict(type='InfiniteSampler', shuffle=True),
            dataset=dict(type='ConcatDataset', datasets=[
                dict(**common, ann_file='labelled.txt', pipeline=lab_pipe,
                     data_prefix=dict(img_path='images/train',
                                      seg_map_path='labels/train')),
                dict(**common, ann_file='unlabelled.txt', pipeline=unl_pipe,
                     data_prefix=dict(img_path='images/train'))])),
        val_dataloader=dict(
            batch_size=1, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
            dataset=dict(**common, pipeline=[dict(type='LoadImageFromFile'),
                                             dict(type='LoadAnnotations'),
                                             dict(type='PackSegInputs')],
                         data_prefix=dict(img_path='images/val', seg_map_path='labels/val'))),
        val_evaluator=dict(type='IoUMetric', iou_metrics=['mIoU']),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=2, val_interval=2),
        val_cfg=dict(type='ValLoop'),
        optim_wrapper=dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3)),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False),
                           logger=dict(type='LoggerHook', interval=1)),
        default_scope='mmseg', randomness=dict(seed=0),
        env_cfg=dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))))
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.val_loop.run()
    assert 'mIoU' in metrics
    assert int(runner.model.ema_step) == 2
    ckpt = torch.load(osp.join(cfg.work_dir, 'iter_2.pth'), map_location='cpu',
                      weights_only=False)
    state = ckpt['state_dict']
    assert int(state['ema_step']) == 2
    key = 'teacher.decode_head.conv_seg.weight'
    assert torch.equal(state[key], runner.model.teacher.decode_head.conv_seg.weight)
    assert not torch.equal(state[key], state['student.decode_head.conv_seg.weight'])


def test_camvid_configs_parse_and_build():
    here = osp.join(osp.dirname(__file__), '..', '..', 'custom_configs', 'camvid')
    mt = Config.fromfile(osp.join(
        here, 'meanteacher_fcn_r18-tiny_1xb8-2k_camvid-half-1of8-180x240.py'))
    base = Config.fromfile(osp.join(here, 'fcn_r18-tiny_1xb8-2k_camvid-half-1of8-180x240.py'))
    assert base.train_dataloader.dataset.ann_file.endswith('val_fold0.txt')
    parts = mt.train_dataloader.dataset.datasets
    assert mt.train_dataloader.dataset.type == 'ConcatDataset'
    assert parts[0].dataset.ann_file == base.train_dataloader.dataset.ann_file
    assert parts[1].ann_file.endswith('train_fold0.txt')
    assert 'seg_map_path' not in parts[1].data_prefix
    assert all(t['type'] != 'LoadAnnotations' for t in parts[1].pipeline)
    register_all_modules(init_default_scope=True)
    model = MODELS.build(mt.model)
    assert model.predict_with == 'teacher' and model.conf_thresh == 0.9
    assert mt.model.segmentor == base.model


@pytest.mark.parametrize('config', [
    'custom_configs/camvid/meanteacher_fcn_r18-tiny_1xb8-2k_camvid-half-1of8-180x240.py',
    'custom_configs/jsrt/unimatch_unet-s5-tiny_multilabel_1xb4-1k_jsrt-chest-256x256.py'])
def test_the_bare_model_of_a_semi_supervised_config_builds(config):
    """What inference and test build before loading a checkpoint (before: the mean
    teacher refused the ``train_cfg`` set on the wrapper, a TypeError)."""
    from mmseg_ext.config.loading import load_config
    from mmseg_ext.config.model import build_bare_model
    repo = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    cfg = load_config(osp.join(repo, config))
    model = build_bare_model(cfg)
    assert type(model).__name__ == cfg.model.type


def test_stock_tta_model_merges_the_views_of_a_mean_teacher():
    """Round V-8: mmseg's SegTTAModel reads ``module.out_channels`` (and
    ``decode_head``); a mean teacher exposes its predictor's, so ``test.py --tta``
    merges the views instead of failing after the test loop. The merged prediction is
    the argmax of the mean softmax of the teacher's logits, computed here by hand."""
    from mmengine.config import ConfigDict
    from mmseg.models.segmentors import SegTTAModel
    torch.manual_seed(0)
    model = build()
    model.eval()
    model.teacher.test_cfg = ConfigDict(mode='whole')  # as a config file gives it
    model.student.test_cfg = ConfigDict(mode='whole')  # as a config file gives it
    assert model.out_channels == NUM_CLASSES == model.teacher.out_channels
    assert model.decode_head is model.teacher.decode_head
    assert model.align_corners is False and model.num_classes == NUM_CLASSES
    with torch.no_grad():  # logits that vary over the image
        torch.nn.init.normal_(model.teacher.decode_head.conv_seg.weight, std=5.0)
    tta = SegTTAModel(module=model)
    x = [torch.randn(1, 3, 32, 40), torch.randn(1, 3, 32, 40)]
    views = []
    with torch.no_grad():
        for inputs in x:
            views.append(model.predict(inputs, [sample(False)])[0])
            views[-1].set_metainfo(dict(img_path='a.png'))  # the merge copies it
        merged = tta.merge_preds([views])[0]
        logits = [model.teacher.encode_decode(inputs, [sample(False).metainfo]) for inputs in x]
    want = sum(F.softmax(lg[0], dim=0) for lg in logits).argmax(dim=0)
    assert torch.equal(merged.pred_sem_seg.data, want[None])  # PixelData: (1, H, W)
    assert len(want.unique()) > 1  # a prediction that varies over the image
    # the class names a tool sets reach both networks (either may predict)
    model.dataset_meta = dict(classes=tuple(SHAPES_CLASSES))
    assert model.teacher.dataset_meta['classes'] == model.student.dataset_meta['classes'] \
        == tuple(SHAPES_CLASSES)
