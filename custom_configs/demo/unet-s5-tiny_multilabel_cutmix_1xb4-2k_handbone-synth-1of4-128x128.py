# Labelled-only baseline of the multi-label experiment with the student's augmentation
# (CutMix) and as many iterations as teacher + student (1000 + 1000).
_base_ = ['./unet-s5-tiny_multilabel_cutmix_1xb4-1k_handbone-synth-1of4-128x128.py']
max_iters = 2000
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='PolyLR', power=0.9, eta_min=1e-5, begin=50, end=max_iters, by_epoch=False),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters))
