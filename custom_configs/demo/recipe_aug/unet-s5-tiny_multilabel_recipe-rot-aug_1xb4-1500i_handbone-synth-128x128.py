# Variant: the demo's scale 0.9-1.1 and crop, plus rotation +-10 degrees (p = 0.5).
# One of the augmentation variants that chose the small-data recipe's augmentation:
# the demo UNet trained on synthetic hand bones, scored on a held-back split by
# tools/benchmark/bench_heldback.py (docs/cross_validation.md, "A small-data recipe").
_base_ = ['../unet-s5-tiny_multilabel_1xb4-1500i_handbone-synth-128x128.py']

# the demo's pipeline with rotation +-10 after the crop
train_pipeline = _base_.train_pipeline
train_pipeline[5:5] = [_base_.small_rotation]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
