# CPU config: a small ResNet-18 (1/4 width, no pre-training) + FCN head on camvid_half
# (CamVid downscaled to 240x180, 367 train / 101 val, 11 classes + 255 ignore), read by
# mmseg's BaseSegDataset. Sized for about 15 minutes on 2 CPU cores. Run from the repo:
#   python tools/train.py custom_configs/camvid/fcn_r18-tiny_1xb8-2k_camvid-half-180x240.py
_base_ = [
    '../_base_/models/fcn_r18-tiny.py', '../_base_/datasets/camvid_folders.py',
    'mmseg::_base_/default_runtime.py', '../_base_/schedules/schedule_20k_miou.py'
]
custom_imports = dict(imports=['mmseg_ext'], allow_failed_imports=False)
data_root = '../shared/data/camvid_half'
crop_size = (180, 240)
img_scale = (240, 180)
num_classes = 11
max_iters = 2000
norm_cfg = {{_base_.norm_cfg}}

data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    decode_head=dict(channels=64, num_convs=2, concat_input=True, dropout_ratio=0.1,
                     num_classes=num_classes),
    auxiliary_head=dict(
        type='FCNHead', in_channels=64, in_index=2, channels=32, num_convs=1,
        concat_input=False, dropout_ratio=0.1, num_classes=num_classes, norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4)))

# camvid_folders.py's pipelines at this size; the images are tested at their own size
train_pipeline = _base_.train_pipeline
train_pipeline[2].scale = img_scale
train_pipeline[3].crop_size = crop_size
test_pipeline = _base_.test_pipeline
del test_pipeline[1]  # Resize
tta_views = dict()
train_dataloader = dict(
    batch_size=8, num_workers=1, persistent_workers=True,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=1, persistent_workers=True,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(
    _delete_=True, type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=3e-3, betas=(0.9, 0.999), weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=100),
    dict(type='PolyLR', eta_min=1e-5, power=0.9, begin=100, end=max_iters, by_epoch=False),
]
train_cfg = dict(max_iters=max_iters, val_interval=1000)
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(interval=1000, max_keep_ckpts=1, save_best='mIoU', rule='greater'))
env_cfg = dict(cudnn_benchmark=False)
randomness = dict(seed=0)
