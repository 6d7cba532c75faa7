# DeepLabV3 + ResNet-101-V1c (dilated, output stride 8) at 512x512: mmseg's DeepLabV3
# base with the 101-layer ResNet and its ImageNet weights (open-mmlab://resnet101_v1c) as a
# local file: python tools/get_weights.py resnet101-v1c
# Without the weights: --cfg-options model.pretrained=None
_base_ = ['mmseg::_base_/models/deeplabv3_r50-d8.py']
model = dict(
    data_preprocessor=dict(size=(512, 512)),
    pretrained='pretrain/resnet101_v1c-e67eebb6.pth',
    backbone=dict(depth=101))
