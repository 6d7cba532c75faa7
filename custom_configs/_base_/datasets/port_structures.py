# Port structures (semi-supervised, 2022): 5 classes, 255 ignore, non-square .jpg images.
# Layout (data_root): train/labeled_images/*.jpg + train/labels/*.png,
#                     train/unlabeled_images/*.jpg, test/images/*.jpg
# PortStructuresDataset picks the folders from `subset`. The competition gives no
# validation split: make folds with
#   python tools/kfold.py folder data/port/train/labeled_images \
#       --labels data/port/train/labels --out data/port/folds -k 5
# and set ann_file='folds/train_fold0.txt' / 'folds/val_fold0.txt' (image stems).
dataset_type = 'PortStructuresDataset'
data_root = 'data/port'
crop_size = (512, 512)
img_scale = (1024, 576)  # (w, h) scale for RandomResize/Resize; images keep their ratio

train_pipeline = [
    dict(type='LoadImageFromFileChecked'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=img_scale, ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFileChecked'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
# Test-time augmentation: the tools build the views from test_pipeline, so a view
# is exactly its ratio times the test scale (mmseg_ext.config.tta); scales default to
# 0.75/1.0/1.25 kept inside the training scale range, flips to whether training
# flips. Name others with tta_views = dict(scales=(...), flip=True/False).
tta_views = dict()
infer_pipeline = [
    dict(type='LoadImageFromFileChecked'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=4, num_workers=4, persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, subset='labeled',
                 ann_file='folds/train_fold0.txt', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, subset='labeled',
                 ann_file='folds/val_fold0.txt', pipeline=test_pipeline))
test_dataloader = val_dataloader
# semi-supervised / pseudo-labelling input and the test images (no labels)
unlabeled_dataloader = dict(
    batch_size=1, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, subset='unlabeled',
                 pipeline=infer_pipeline, test_mode=True))
infer_dataloader = dict(
    batch_size=1, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, subset='test',
                 pipeline=infer_pipeline, test_mode=True))
# the metric was described as the mean of per-image IoU: both are reported
val_evaluator = [dict(type='IoUMetric', iou_metrics=['mIoU']),
                 dict(type='PerImageIoUMetric')]
test_evaluator = val_evaluator
