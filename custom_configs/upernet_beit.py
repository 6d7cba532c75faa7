# UperNet + BEiT-base, multi-label (29 hand bones, sigmoid per class), 512x512 crops.
# The card's entry point:  python tools/train.py custom_configs/upernet_beit.py
#
# Pretrained weights: BEiT-base (ImageNet-22k) converted for mmseg, expected at
# pretrain/beit_base_patch16_224_pt22k_ft22k.pth (mmseg's tools/model_converters/beit2mmseg.py
# converts the official checkpoint). Without them (smoke runs, CPU tests):
#   --cfg-options model.pretrained=None
_base_ = [
    'mmseg::_base_/models/upernet_beit.py', '_base_/datasets/hand_bone.py',
    'mmseg::_base_/default_runtime.py', '_base_/schedules/schedule_20k_dice.py',
]
custom_imports = dict(imports=['mmseg_ext'], allow_failed_imports=False)

num_classes = 29
crop_size = (512, 512)
multilabel_losses = [
    dict(type='MultiLabelBCELoss', loss_weight=1.0),
    dict(type='MultiLabelDiceLoss', loss_weight=1.0),
]
aux_losses = [
    dict(type='MultiLabelBCELoss', loss_weight=0.4),
    dict(type='MultiLabelDiceLoss', loss_weight=0.4),
]
model = dict(
    type='MultiLabelEncoderDecoder',
    data_preprocessor=dict(size=crop_size),
    pretrained='pretrain/beit_base_patch16_224_pt22k_ft22k.pth',
    backbone=dict(img_size=crop_size),
    decode_head=dict(type='MultiLabelUPerHead', num_classes=num_classes,
                     loss_decode=multilabel_losses),
    auxiliary_head=dict(type='MultiLabelFCNHead', num_classes=num_classes,
                        loss_decode=aux_losses),
    # BEiT's relative position bias is built for img_size: infer in 512 windows.
    # threshold: 0.5, a list of 29 values, or {class_name: t} (others keep 0.5)
    test_cfg=dict(mode='slide', crop_size=crop_size, stride=(341, 341), threshold=0.5))
tta_model = dict(type='MultiLabelSegTTAModel')

optim_wrapper = dict(
    _delete_=True, type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=3e-5, betas=(0.9, 0.999), weight_decay=0.05),
    constructor='LayerDecayOptimizerConstructor',
    paramwise_cfg=dict(num_layers=12, layer_decay_rate=0.9))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1500),
    dict(type='PolyLR', power=1.0, begin=1500, end=20000, eta_min=0.0, by_epoch=False),
]
