# Recycling trash (11 classes, COCO polygons), read straight from the COCO files by
# mmseg_ext's CocoSemanticDataset: no offline PNG step. Layout (data_root):
#   train.json  val.json  test.json  batch_01_vt/0024.jpg ...  (file_name relative to root)
# Override the root for every split, e.g.
#   --cfg-options train_dataloader.dataset.data_root=/data/trash \
#                 val_dataloader.dataset.data_root=/data/trash \
#                 test_dataloader.dataset.data_root=/data/trash
# Folds (tools/kfold.py coco train_all.json --out folds): point ann_file at
#   folds/train_fold0.json and folds/val_fold0.json.
dataset_type = 'CocoSemanticDataset'
data_root = 'data/trash'
classes = ('Background', 'General trash', 'Paper', 'Paper pack', 'Metal', 'Glass',
           'Plastic', 'Styrofoam', 'Plastic bag', 'Battery', 'Clothing')
palette = [[0, 0, 0], [192, 0, 128], [0, 128, 192], [0, 128, 64], [128, 0, 0],
           [64, 0, 128], [64, 0, 192], [192, 128, 64], [192, 192, 128], [64, 64, 128],
           [128, 0, 192]]
crop_size = (512, 512)
img_scale = (512, 512)
# Where annotations overlap the later-painted one wins: 'area_desc' (large first, small
# objects stay on top), 'polygon_length' (the baseline's order) or 'file'.
draw_order = 'area_desc'

train_pipeline = [
    dict(type='LoadImageFromFileChecked'),
    dict(type='LoadCocoAnnotations'),
    dict(type='RandomResize', scale=img_scale, ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFileChecked'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    # after Resize: the label map stays at the original size, as mmseg's LoadAnnotations
    dict(type='LoadCocoAnnotations'),
    dict(type='PackSegInputs'),
]
# images without annotations (test.json): no LoadCocoAnnotations
infer_pipeline = [
    dict(type='LoadImageFromFileChecked'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='PackSegInputs'),
]
# Test-time augmentation: the tools build the views from test_pipeline, so a view
# is exactly its ratio times the test scale (mmseg_ext.config.tta); scales default to
# 0.75/1.0/1.25 kept inside the training scale range, flips to whether training
# flips. Name others with tta_views = dict(scales=(...), flip=True/False).
tta_views = dict()
_dataset = dict(
    type=dataset_type, data_root=data_root, data_prefix=dict(img_path=''),
    metainfo=dict(classes=classes, palette=palette), background_name='Background',
    draw_order=draw_order, iscrowd='paint')
train_dataloader = dict(
    batch_size=4, num_workers=4, persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(**_dataset, ann_file='train.json', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(**_dataset, ann_file='val.json', pipeline=test_pipeline))
test_dataloader = val_dataloader
# the unlabelled test images in test.json order (the submission's row order)
infer_dataloader = dict(
    batch_size=1, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(**_dataset, ann_file='test.json', pipeline=infer_pipeline,
                 test_mode=True))
# mIoU of one confusion matrix over the set (the baseline's) and per-class IoU, plus the
# mean of per-image mIoU (how the leaderboard was described): keys mIoU, mIoU_per_image.
val_evaluator = [dict(type='IoUMetric', iou_metrics=['mIoU']),
                 dict(type='PerImageIoUMetric')]
test_evaluator = val_evaluator
