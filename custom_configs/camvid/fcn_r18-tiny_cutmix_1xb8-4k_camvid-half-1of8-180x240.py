# The 1/8-labelled CamVid model with CutMix (p=0.5, a box of another image of the batch
# and its label pasted in) on top of the base's photometric and scale augmentation, 4000
# iterations. Two uses:
# - the student of the self-training recipe (tools/self_train.py adds the
#   pseudo-labelled images to this config's labelled set):
#     python tools/self_train.py \
#         custom_configs/camvid/fcn_r18-tiny_1xb8-2k_camvid-half-1of8-180x240.py \
#         custom_configs/camvid/fcn_r18-tiny_cutmix_1xb8-4k_camvid-half-1of8-180x240.py \
#         --unlabelled ../shared/data/camvid_half/train/images \
#         --unlabelled-list work_dirs/splits/camvid_half_k8/train_fold0.txt \
#         --work-dir work_dirs/selftrain_camvid
# - a labelled-only baseline with the same augmentation (train.py on it directly).
# Split files: see fcn_r18-tiny_1xb8-2k_camvid-half-1of8-180x240.py.
_base_ = ['./fcn_r18-tiny_1xb8-2k_camvid-half-1of8-180x240.py']
max_iters = 4000
model = dict(data_preprocessor=dict(
    type='BatchAugmentSegDataPreProcessor',
    batch_augments=[dict(type='SegCutMix', prob=0.5)]))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=100),
    dict(type='PolyLR', eta_min=1e-5, power=0.9, begin=100, end=max_iters, by_epoch=False),
]
train_cfg = dict(max_iters=max_iters, val_interval=2000)
default_hooks = dict(checkpoint=dict(interval=2000))
