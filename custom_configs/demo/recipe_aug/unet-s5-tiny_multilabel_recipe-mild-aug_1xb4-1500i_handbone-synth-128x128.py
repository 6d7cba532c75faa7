# Variant: the demo's scale 0.9-1.1 and crop, plus flip (swapping lateral classes),
# rotation +-10 degrees, CLAHE and brightness/contrast.
# One of the augmentation variants that chose the small-data recipe's augmentation:
# the demo UNet trained on synthetic hand bones, scored on a held-back split by
# tools/benchmark/bench_heldback.py (docs/cross_validation.md, "A small-data recipe").
_base_ = ['../unet-s5-tiny_multilabel_1xb4-1500i_handbone-synth-128x128.py']

# the demo's pipeline (scale 0.9-1.1, crop) with flip, rotation +-10 and the
# exposure steps after the crop
train_pipeline = _base_.train_pipeline
train_pipeline[5:5] = [_base_.lateral_flip, _base_.small_rotation, _base_.xray_exposure]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
