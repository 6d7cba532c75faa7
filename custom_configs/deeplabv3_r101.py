# DeepLabV3 + ResNet-101 (dilated, output stride 8), multi-label hand bones, 512x512.
# Pretrained weights (ImageNet) are named by mmseg's base as open-mmlab://resnet101_v1c and
# downloaded by mmengine; offline, run without:
#   --cfg-options model.pretrained=None
_base_ = [
    'mmseg::_base_/models/deeplabv3_r50-d8.py', '_base_/datasets/hand_bone.py',
    'mmseg::_base_/default_runtime.py', '_base_/schedules/schedule_20k_dice.py',
]
custom_imports = dict(imports=['mmseg_ext'], allow_failed_imports=False)

num_classes = 29
crop_size = (512, 512)
model = dict(
    type='MultiLabelEncoderDecoder',
    data_preprocessor=dict(size=crop_size),
    pretrained='open-mmlab://resnet101_v1c',
    backbone=dict(depth=101),
    decode_head=dict(type='MultiLabelASPPHead', num_classes=num_classes,
                     loss_decode=[dict(type='MultiLabelBCELoss', loss_weight=1.0),
                                  dict(type='MultiLabelDiceLoss', loss_weight=1.0)]),
    auxiliary_head=dict(type='MultiLabelFCNHead', num_classes=num_classes,
                        loss_decode=[dict(type='MultiLabelBCELoss', loss_weight=0.4),
                                     dict(type='MultiLabelDiceLoss', loss_weight=0.4)]),
    test_cfg=dict(mode='whole', threshold=0.5))
tta_model = dict(type='MultiLabelSegTTAModel')
# SGD suits the ImageNet ResNet (mmseg's DeepLabV3 recipe)
optim_wrapper = dict(
    _delete_=True, type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0005), clip_grad=None)
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=20000, by_epoch=False)]
