# UperNet + BEiT-base, multi-label (29 hand bones, sigmoid per class), 512x512 crops.
# The card's entry point:  python tools/train.py custom_configs/upernet_beit.py
#
# Pretrained weights: BEiT-base (ImageNet-22k) converted for mmseg, expected at
# pretrain/beit_base_patch16_224_pt22k_ft22k.pth:  python tools/get_weights.py beit-base
# (downloads the official checkpoint and converts it with mmseg's beit2mmseg). Without
# them (smoke runs, CPU tests): --cfg-options model.pretrained=None
_base_ = ['_base_/models/upernet_beit-b_512.py', '_base_/handbone_multilabel_20k.py',
          '_base_/schedules/adamw_beit-layer-decay_20k.py']
num_classes = _base_.num_classes
model = dict(
    type='MultiLabelEncoderDecoder',
    decode_head=dict(type='MultiLabelUPerHead', num_classes=num_classes,
                     loss_decode={{_base_.multilabel_losses}}),
    auxiliary_head=dict(type='MultiLabelFCNHead', num_classes=num_classes,
                        loss_decode={{_base_.aux_losses}}),
    # threshold: 0.5, a list of 29 values, or {class_name: t} (others keep 0.5)
    test_cfg=dict(threshold=0.5))
