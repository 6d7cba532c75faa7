# UperNet + Swin-B (window 7, ImageNet-22k), multi-label hand bones, 512x512 crops.
# Pretrained weights are downloaded by mmengine from the URL in the model base; offline,
# point model.backbone.init_cfg.checkpoint at a local copy, or run without:
#   --cfg-options model.backbone.init_cfg=None
_base_ = [
    '_base_/models/upernet_swin-b-w7-in22k.py', '_base_/datasets/hand_bone.py',
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
    decode_head=dict(type='MultiLabelUPerHead', num_classes=num_classes,
                     loss_decode=multilabel_losses),
    auxiliary_head=dict(type='MultiLabelFCNHead', num_classes=num_classes,
                        loss_decode=aux_losses),
    test_cfg=dict(mode='whole', threshold=0.5))
tta_model = dict(type='MultiLabelSegTTAModel')

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
