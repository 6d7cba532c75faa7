# The CPU demo: a small UNet with a multi-label sigmoid head on the synthetic hand-bone
# data (tools/make_synthetic_handbone.py writes it in the competition layout).
# Same components as the full configs (HandBoneDataset, polygon rasterisation after the
# resize, MultiLabel* head/segmentor, BCE + Dice, MultiLabelDiceMetric), small sizes.
_base_ = ['../_base_/models/unet-s5-d16_multilabel.py', '../_base_/datasets/hand_bone.py',
          'mmseg::_base_/default_runtime.py']
custom_imports = dict(imports=['mmseg_ext'], allow_failed_imports=False)

data_root = 'work_dirs/demo_handbone/data'
num_classes = 29
crop_size = (128, 128)
max_iters = 1500

# the UNet at a quarter of its width (16 base channels), no dropout
model = dict(
    data_preprocessor=dict(size=crop_size), backbone=dict(base_channels=16),
    decode_head=dict(in_channels=16, channels=16, dropout_ratio=0.0,
                     num_classes=num_classes))

train_pipeline = [
    dict(type='LoadImageFromFileChecked'),
    dict(type='LoadHandBoneAnnotations', rasterize=False),
    dict(type='RandomResize', scale=crop_size, ratio_range=(0.9, 1.1), keep_ratio=True),
    dict(type='RasterizePolygons'),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='MultiLabelPad', size=crop_size),
    dict(type='PackMultiLabelSegInputs'),
]
# hand_bone.py's test pipeline at this size
test_pipeline = _base_.test_pipeline
test_pipeline[1].scale = crop_size
tta_model = dict(type='MultiLabelSegTTAModel')
# TTA views built from test_pipeline by the tools (mmseg_ext.config.tta): default scales
# inside the training range, flips only where training flips
tta_views = dict()
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root + '/train', num_folds=4, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root + '/train', num_folds=4, pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=3e-3, weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='PolyLR', power=0.9, eta_min=1e-5, begin=50, end=max_iters, by_epoch=False),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters),
    visualization=dict(type='SegVisualizationHook'))
randomness = dict(seed=0)
