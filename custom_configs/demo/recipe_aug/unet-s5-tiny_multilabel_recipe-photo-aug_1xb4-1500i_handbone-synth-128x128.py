# Variant: the demo's scale 0.9-1.1 and crop, plus CLAHE and brightness/contrast.
# One of the augmentation variants that chose the small-data recipe's augmentation:
# the demo UNet trained on synthetic hand bones, scored on a held-back split by
# tools/benchmark/bench_heldback.py (docs/cross_validation.md, "A small-data recipe").
_base_ = ['../unet-s5-tiny_multilabel_1xb4-1500i_handbone-synth-128x128.py']
crop_size = (128, 128)

train_pipeline = [
    dict(type='LoadImageFromFileChecked'),
    dict(type='LoadHandBoneAnnotations', rasterize=False),
    dict(type='RandomResize', scale=crop_size, ratio_range=(0.9, 1.1), keep_ratio=True),
    dict(type='RasterizePolygons'),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='Albumentations', transforms=[
        dict(type='CLAHE', clip_limit=(1.0, 3.0), p=0.5),
        dict(type='RandomBrightnessContrast', brightness_limit=0.2, contrast_limit=0.2,
             p=0.5),
    ]),
    dict(type='MultiLabelPad', size=crop_size),
    dict(type='PackMultiLabelSegInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
