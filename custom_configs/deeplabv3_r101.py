# DeepLabV3 + ResNet-101 (dilated, output stride 8), multi-label hand bones, 512x512.
# Pretrained weights (ImageNet ResNet-101-V1c): python tools/get_weights.py resnet101-v1c.
# Without them: --cfg-options model.pretrained=None
_base_ = [
    '_base_/models/deeplabv3_r101-d8.py', '_base_/handbone_multilabel_20k.py',
    # SGD suits the ImageNet ResNet (mmseg's DeepLabV3 recipe)
    '_base_/schedules/sgd_poly_20k.py',
]
num_classes = _base_.num_classes
model = dict(
    type='MultiLabelEncoderDecoder',
    decode_head=dict(type='MultiLabelASPPHead', num_classes=num_classes,
                     loss_decode={{_base_.multilabel_losses}}),
    auxiliary_head=dict(type='MultiLabelFCNHead', num_classes=num_classes,
                        loss_decode={{_base_.aux_losses}}),
    test_cfg=dict(mode='whole', threshold=0.5))
