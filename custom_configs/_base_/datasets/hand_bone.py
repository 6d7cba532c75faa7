# Hand-bone X-rays (multi-label, 29 overlapping classes) in the competition layout:
#   {data_root}/train/DCM/IDxxx/*.png + {data_root}/train/outputs_json/IDxxx/*.json
#   {data_root}/test/DCM/IDxxx/*.png
# Validation = fold `fold` of a patient-level GroupKFold over train/ (no patient in both).
# Masks are (H, W, C) uint8 in the pipeline and (C, H, W) uint8 once packed (255 = ignore).
dataset_type = 'HandBoneDataset'
data_root = 'data/hand_bone'
fold = 0
num_folds = 5
crop_size = (512, 512)

# Named augmentation steps of the multi-label X-ray configs. A config that inherits this
# file takes its base's train_pipeline and puts the steps it wants after the crop
# (index 5), so it states only what differs, e.g.
#     train_pipeline = _base_.train_pipeline
#     train_pipeline[5:5] = [_base_.lateral_flip, _base_.xray_exposure]
# lateral_flip swaps the channels of the lateral pairs when it flips, if the data set
# names them in metainfo flip_swap_classes (the hand-bone classes have none)
lateral_flip = dict(type='MultiLabelRandomFlip', prob=0.5)
small_rotation = dict(type='MultiLabelRandomRotate', prob=0.5, degree=10)
# exposure differences between X-ray machines: CLAHE and brightness/contrast
xray_exposure = dict(type='Albumentations', transforms=[
    dict(type='CLAHE', clip_limit=(1.0, 3.0), p=0.5),
    dict(type='RandomBrightnessContrast', brightness_limit=0.2, contrast_limit=0.2, p=0.5),
])

train_pipeline = [
    dict(type='LoadImageFromFileChecked'),
    # keep the polygons, rasterise after the resize: same mask as resizing a full-size
    # mask with nearest neighbour, ~5x cheaper (docs/handbone.md)
    dict(type='LoadHandBoneAnnotations', rasterize=False),
    dict(type='RandomResize', scale=crop_size, ratio_range=(0.8, 1.25), keep_ratio=True),
    dict(type='RasterizePolygons'),
    dict(type='RandomCrop', crop_size=crop_size),
    lateral_flip,
    small_rotation,
    dict(type='Albumentations', transforms=[
        dict(type='CLAHE', clip_limit=(2.0, 2.0), p=0.5),
        dict(type='RandomBrightnessContrast', brightness_limit=0.1, contrast_limit=0.1,
             p=0.5),
    ]),
    dict(type='MultiLabelPad', size=crop_size),
    dict(type='PackMultiLabelSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFileChecked'),
    dict(type='Resize', scale=crop_size, keep_ratio=True),
    # ground truth at the original size (the metric compares there); skipped for images
    # without JSON (the test split)
    dict(type='LoadHandBoneAnnotations'),
    dict(type='PackMultiLabelSegInputs'),
]
# Test-time augmentation: the tools build the views from test_pipeline, so a view
# is exactly its ratio times the test scale (mmseg_ext.config.tta); scales default to
# 0.75/1.0/1.25 kept inside the training scale range, flips to whether training
# flips. Name others with tta_views = dict(scales=(...), flip=True/False).
tta_views = dict()
train_dataloader = dict(
    batch_size=2, num_workers=4, persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root + '/train', fold=fold,
                 num_folds=num_folds, subset='train', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=2, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root + '/train', fold=fold,
                 num_folds=num_folds, subset='val', pipeline=test_pipeline))
# tools/test.py on the unlabelled test split: the metric is skipped (no ground truth);
# use tools/inference.py + tools/make_submission.py for the CSV.
test_dataloader = val_dataloader
val_evaluator = dict(type='MultiLabelDiceMetric')
test_evaluator = val_evaluator
