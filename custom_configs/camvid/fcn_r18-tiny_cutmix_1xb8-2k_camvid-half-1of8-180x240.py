# The CutMix student of fcn_r18-tiny_cutmix_1xb8-4k_camvid-half-1of8-180x240.py on a
# 2000-iteration schedule, meant to start from the labelled-only teacher's weights
# (tools/self_train.py --student-init teacher) so that teacher and student together run
# 4000 iterations. Its labelled-only twin is the same config with load_from set to the
# teacher's checkpoint:
#     python tools/train.py custom_configs/camvid/fcn_r18-tiny_cutmix_1xb8-2k_camvid-half-1of8-180x240.py \
#         --cfg-options load_from=TEACHER.pth
_base_ = ['./fcn_r18-tiny_cutmix_1xb8-4k_camvid-half-1of8-180x240.py']
max_iters = 2000
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=100),
    dict(type='PolyLR', eta_min=1e-5, power=0.9, begin=100, end=max_iters, by_epoch=False),
]
train_cfg = dict(max_iters=max_iters, val_interval=1000)
default_hooks = dict(checkpoint=dict(interval=1000))
