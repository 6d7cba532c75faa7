# The CPU demo: a small UNet with a multi-label sigmoid head on the synthetic hand-bone
# data (tools/make_synthetic_handbone.py writes it in the competition layout).
# Same components as the full configs (HandBoneDataset, polygon rasterisation after the
# resize, MultiLabel* head/segmentor, BCE + Dice, MultiLabelDiceMetric), small sizes.
_base_ = ['../_base_/datasets/hand_bone.py', 'mmseg::_base_/default_runtime.py']
custom_imports = dict(imports=['mmseg_ext'], allow_failed_imports=False)

data_root = 'work_dirs/demo_handbone/data'
num_classes = 29
crop_size = (128, 128)
max_iters = 1500
norm_cfg = dict(type='BN', requires_grad=True)

model = dict(
    type='MultiLabelEncoderDecoder',
    data_preprocessor=dict(
        type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_val=0, seg_pad_val=255,
        # the UNet halves its input 4 times: test images (any size, any TTA view) are
        # padded to a multiple of 16, and the padding is removed from the prediction
        size=crop_size, test_cfg=dict(size_divisor=16)),
    backbone=dict(
        # 5 stages (bottleneck at 1/16): the context tells neighbouring finger bones apart
        type='UNet', in_channels=3, base_channels=16, num_stages=5,
        strides=(1, 1, 1, 1, 1), enc_num_convs=(2, 2, 2, 2, 2), dec_num_convs=(2, 2, 2, 2),
        downsamples=(True, True, True, True), enc_dilations=(1, 1, 1, 1, 1),
        dec_dilations=(1, 1, 1, 1), norm_cfg=norm_cfg, act_cfg=dict(type='ReLU'),
        upsample_cfg=dict(type='InterpConv'), norm_eval=False),
    decode_head=dict(
        type='MultiLabelFCNHead', in_channels=16, in_index=4, channels=16, num_convs=1,
        concat_input=False, dropout_ratio=0.0, num_classes=num_classes,
        norm_cfg=norm_cfg, align_corners=False,
        loss_decode=[dict(type='MultiLabelBCELoss', loss_weight=1.0),
                     dict(type='MultiLabelDiceLoss', loss_weight=1.0)]),
    train_cfg=dict(),
    test_cfg=dict(mode='whole', threshold=0.5))

train_pipeline = [
    dict(type='LoadImageFromFileChecked'),
    dict(type='LoadHandBoneAnnotations', rasterize=False),
    dict(type='RandomResize', scale=crop_size, ratio_range=(0.9, 1.1), keep_ratio=True),
    dict(type='RasterizePolygons'),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='MultiLabelPad', size=crop_size),
    dict(type='PackMultiLabelSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFileChecked'),
    dict(type='Resize', scale=crop_size, keep_ratio=True),
    dict(type='LoadHandBoneAnnotations'),
    dict(type='PackMultiLabelSegInputs'),
]
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
