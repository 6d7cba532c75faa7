# Variant: the demo's scale 0.9-1.1 and crop, plus a flip swapping lateral classes,
# CLAHE and brightness/contrast, no rotation: the recipe's augmentation as shipped
# (custom_configs/recipes/unet-s5-d16_multilabel_1xb4-20k_xray-small-512x512.py, which
# a test keeps identical to this one apart from sizes).
# One of the augmentation variants that chose the small-data recipe's augmentation:
# the demo UNet trained on synthetic hand bones, scored on a held-back split by
# tools/benchmark/bench_heldback.py (docs/cross_validation.md, "A small-data recipe").
_base_ = ['../unet-s5-tiny_multilabel_1xb4-1500i_handbone-synth-128x128.py']

# the demo's pipeline with flip and the exposure steps after the crop
train_pipeline = _base_.train_pipeline
train_pipeline[5:5] = [_base_.lateral_flip, _base_.xray_exposure]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
