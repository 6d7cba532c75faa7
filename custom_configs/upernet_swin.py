# UperNet + Swin-B (window 7, ImageNet-22k), multi-label hand bones, 512x512 crops.
# Pretrained weights: python tools/get_weights.py swin-base (into pretrain/). Without
# them: --cfg-options model.backbone.init_cfg=None
_base_ = ['_base_/models/upernet_swin-b-w7-in22k.py', '_base_/handbone_multilabel_20k.py',
          '_base_/schedules/adamw_swin_20k.py']
num_classes = _base_.num_classes
model = dict(
    type='MultiLabelEncoderDecoder',
    decode_head=dict(type='MultiLabelUPerHead', num_classes=num_classes,
                     loss_decode={{_base_.multilabel_losses}}),
    auxiliary_head=dict(type='MultiLabelFCNHead', num_classes=num_classes,
                        loss_decode={{_base_.aux_losses}}),
    test_cfg=dict(mode='whole', threshold=0.5))
