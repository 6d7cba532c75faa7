# UperNet + BEiT-base on the recycling-trash COCO data (11 classes), 512x512 crops.
# Pretrained weights: BEiT-base (22k) converted for mmseg, as mmseg's own BEiT configs
# expect, at pretrain/beit_base_patch16_224_pt22k_ft22k.pth. Without them (e.g. a smoke
# run): --cfg-options model.pretrained=None
_base_ = [
    'mmseg::_base_/models/upernet_beit.py', '../_base_/datasets/trash_coco.py',
    'mmseg::_base_/default_runtime.py', '../_base_/schedules/schedule_20k_miou.py'
]
custom_imports = dict(imports=['mmseg_ext'], allow_failed_imports=False)
crop_size = (512, 512)
num_classes = 11
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    pretrained='pretrain/beit_base_patch16_224_pt22k_ft22k.pth',
    backbone=dict(img_size=crop_size),
    decode_head=dict(num_classes=num_classes),
    auxiliary_head=dict(num_classes=num_classes),
    # BEiT's position bias is built for img_size: infer in img_size windows
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(341, 341)))
optim_wrapper = dict(
    _delete_=True, type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=3e-5, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='LayerDecayOptimizerConstructor',
    paramwise_cfg=dict(num_layers=12, layer_decay_rate=0.9))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', power=1.0, begin=1500, end=20000, eta_min=0.0, by_epoch=False),
]
train_dataloader = dict(batch_size=2)
