# Labelled-only baseline (46 of the 367 CamVid training images) with the self-training
# student's augmentation (CutMix) and as many iterations as teacher + student together
# (2000 + 4000): python tools/train.py custom_configs/camvid/fcn_r18-tiny_cutmix_1xb8-6k_camvid-half-1of8-180x240.py
_base_ = ['./fcn_r18-tiny_cutmix_1xb8-4k_camvid-half-1of8-180x240.py']
max_iters = 6000
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=100),
    dict(type='PolyLR', eta_min=1e-5, power=0.9, begin=100, end=max_iters, by_epoch=False),
]
train_cfg = dict(max_iters=max_iters, val_interval=2000)
