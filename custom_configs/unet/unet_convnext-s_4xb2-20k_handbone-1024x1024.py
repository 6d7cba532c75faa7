# As unet_convnext-s_4xb2-20k_handbone-512x512.py at twice the resolution: 1024x1024
# crops of images resized to 1024 (2048x2048 originals), whole-image inference at 1024.
# Thin structures (finger tips) keep twice the pixels; about 4x the memory and time.
_base_ = ['./unet_convnext-s_4xb2-20k_handbone-512x512.py']

crop_size = (1024, 1024)
model = dict(data_preprocessor=dict(size=crop_size))
train_pipeline = [
    dict(type='LoadImageFromFileChecked'),
    dict(type='LoadHandBoneAnnotations', rasterize=False),
    dict(type='RandomResize', scale=crop_size, ratio_range=(0.8, 1.25), keep_ratio=True),
    dict(type='RasterizePolygons'),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='MultiLabelRandomFlip', prob=0.5),
    dict(type='MultiLabelRandomRotate', prob=0.5, degree=10),
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
    dict(type='LoadHandBoneAnnotations'),
    dict(type='PackMultiLabelSegInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
