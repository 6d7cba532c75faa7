# One of the augmentation variants of the small-data recipe measured on the real chest
# X-rays (docs/cross_validation.md, "The augmentation, measured on real X-rays"): the
# CPU model of ../unet-s5-tiny_multilabel_1xb4-1k_jsrt-chest-256x256.py (which has the
# demo scale 0.9-1.1, crop and the exposure steps, the "photo" row), trained on the
# pool patients and scored on held-back patients by tools/benchmark/bench_heldback.py.
# Variant: + a horizontal flip swapping the lateral classes (the recipe as shipped).
_base_ = ['../unet-s5-tiny_multilabel_1xb4-1k_jsrt-chest-256x256.py']

# the flip after the crop, before the exposure step
train_pipeline = _base_.train_pipeline
train_pipeline[5:5] = [_base_.lateral_flip]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
