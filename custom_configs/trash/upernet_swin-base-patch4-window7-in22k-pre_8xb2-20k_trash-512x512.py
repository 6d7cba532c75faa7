# UperNet + Swin-B (ImageNet-22k pre-trained, window 7) on the recycling-trash COCO data.
# Without the download (offline): --cfg-options model.backbone.init_cfg=None
_base_ = [
    '../_base_/models/upernet_swin-b-w7-in22k.py', '../_base_/datasets/trash_coco.py',
    'mmseg::_base_/default_runtime.py', '../_base_/schedules/schedule_20k_miou.py'
]
custom_imports = dict(imports=['mmseg_ext'], allow_failed_imports=False)
crop_size = (512, 512)
num_classes = 11
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    decode_head=dict(num_classes=num_classes),
    auxiliary_head=dict(num_classes=num_classes))
# AdamW; no weight decay for position tables and norms
optim_wrapper = dict(
    _delete_=True, type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(custom_keys={
        'absolute_pos_embed': dict(decay_mult=0.),
        'relative_position_bias_table': dict(decay_mult=0.),
        'norm': dict(decay_mult=0.)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', power=1.0, begin=1500, end=20000, eta_min=0.0, by_epoch=False),
]
train_dataloader = dict(batch_size=2)
