# A small stock mmseg model (ResNet-18 at 1/4 width + FCN head) on the synthetic
# "shapes" folder data (mmseg_ext.datasets.synthetic.make_shapes_dataset).
# Trains in well under a minute on 2 CPU cores; used by the tests as the stock baseline.
_base_ = ['../_base_/models/fcn_r18-tiny.py', 'mmseg::_base_/default_runtime.py']
custom_imports = dict(imports=['mmseg_ext'], allow_failed_imports=False)

data_root = 'work_dirs/demo_shapes/data'
crop_size = (64, 80)
classes = ('background', 'disc', 'square', 'triangle')

data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    decode_head=dict(channels=32, num_convs=1, concat_input=False, dropout_ratio=0.0,
                     num_classes=len(classes)))

train_pipeline = [
    dict(type='LoadImageFromFileChecked'),
    dict(type='LoadAnnotations'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFileChecked'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
dataset_common = dict(
    type='BaseSegDataset', data_root=data_root, img_suffix='.png',
    seg_map_suffix='.png', metainfo=dict(classes=classes), reduce_zero_label=False)
# TTA views built from test_pipeline by the tools (mmseg_ext.config.tta): default scales
# inside the training range, flips only where training flips
tta_views = dict()
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(**dataset_common, pipeline=train_pipeline,
                 data_prefix=dict(img_path='images/train', seg_map_path='labels/train')))
val_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(**dataset_common, pipeline=test_pipeline,
                 data_prefix=dict(img_path='images/val', seg_map_path='labels/val')))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator

optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=3e-3, weight_decay=1e-4))
param_scheduler = [dict(type='PolyLR', eta_min=1e-5, power=0.9, begin=0, end=120,
                        by_epoch=False)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=120, val_interval=120)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=120),
    visualization=dict(type='SegVisualizationHook'))
randomness = dict(seed=0)
