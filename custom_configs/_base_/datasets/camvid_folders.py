# CamVid-style image/label folders on mmseg's own BaseSegDataset: 11 classes, 255 ignore.
# Layout (data_root): {train,val,test}/images/<stem>.jpg + {train,val,test}/labels/<stem>.png
# (label values 0..10 = the classes below, 255 = void/unlabelled). SegNet's copy of CamVid
# stores void as 11 in trainannot/*.png: map 11 -> 255 once when preparing the folders.
dataset_type = 'BaseSegDataset'
data_root = 'data/camvid'
classes = ('Sky', 'Building', 'Pole', 'Road', 'Pavement', 'Tree', 'SignSymbol', 'Fence',
           'Car', 'Pedestrian', 'Bicyclist')
palette = [[128, 128, 128], [128, 0, 0], [192, 192, 128], [128, 64, 128], [60, 40, 222],
           [128, 128, 0], [192, 128, 128], [64, 64, 128], [64, 0, 128], [64, 64, 0],
           [0, 128, 192]]
crop_size = (360, 480)
img_scale = (480, 360)

train_pipeline = [
    dict(type='LoadImageFromFileChecked'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=img_scale, ratio_range=(0.75, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
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
_dataset = dict(type=dataset_type, data_root=data_root, img_suffix='.jpg',
                seg_map_suffix='.png', reduce_zero_label=False, ignore_index=255,
                metainfo=dict(classes=classes, palette=palette))
train_dataloader = dict(
    batch_size=4, num_workers=4, persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(**_dataset, pipeline=train_pipeline,
                 data_prefix=dict(img_path='train/images', seg_map_path='train/labels')))
val_dataloader = dict(
    batch_size=1, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(**_dataset, pipeline=test_pipeline,
                 data_prefix=dict(img_path='val/images', seg_map_path='val/labels')))
test_dataloader = val_dataloader
val_evaluator = [dict(type='IoUMetric', iou_metrics=['mIoU']),
                 dict(type='PerImageIoUMetric')]
test_evaluator = val_evaluator
