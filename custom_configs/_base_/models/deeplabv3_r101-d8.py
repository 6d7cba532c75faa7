# DeepLabV3 + ResNet-101-V1c (dilated, output stride 8) at 512x512: mmseg's DeepLabV3
# base with the 101-layer ResNet and its ImageNet weights.
# Without the weights: --cfg-options model.pretrained=None
_base_ = ['mmseg::_base_/models/deeplabv3_r50-d8.py']
model = dict(
    data_preprocessor=dict(size=(512, 512)),
    pretrained='open-mmlab://resnet101_v1c',
    backbone=dict(depth=101))
