# The small-data recipe (custom_configs/recipes/) on the real chest X-rays of
# ../shared/data/jsrt_chest (JSRT/SCR, 124 images at 1024 px, 5 overlapping classes,
# two lateral pairs), at 512 px: whole images resized to 512, no crop. The real-data
# benchmark of docs/cross_validation.md runs it through tools/cv.py:
#
#   python tools/cv.py custom_configs/jsrt/unet-s5-d16_multilabel_1xb4-2k_jsrt-chest-512x512.py \
#       -k 5 --work-dir work_dirs/cv_jsrt_512
_base_ = ['../recipes/unet-s5-d16_multilabel_1xb4-20k_xray-small-512x512.py']

data_root = '../shared/data/jsrt_chest'
img_scale = (512, 512)
crop_size = (512, 512)
max_iters = 2000

model = dict(data_preprocessor=dict(size=crop_size))
# the recipe's pipeline at 512 px
train_pipeline = _base_.train_pipeline
train_pipeline[2].scale = img_scale
test_pipeline = _base_.test_pipeline
test_pipeline[1].scale = img_scale
train_dataloader = dict(dataset=dict(data_root=data_root + '/train', pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(data_root=data_root + '/train', pipeline=test_pipeline))
test_dataloader = val_dataloader
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=200),
    dict(type='PolyLR', power=0.9, eta_min=1e-6, begin=200, end=max_iters, by_epoch=False),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
