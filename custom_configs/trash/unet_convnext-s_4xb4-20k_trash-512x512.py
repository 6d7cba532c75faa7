# U-Net decoder (full resolution, scSE) on a timm ConvNeXt-S encoder, single-label
# (softmax) on the recycling-trash COCO data: the same model as the hand-bone U-Net
# config with UNetHead instead of MultiLabelUNetHead. Needs timm. Weights:
#   python tools/get_weights.py convnext-small
# (without them: --cfg-options model.backbone.pretrained=False)
_base_ = [
    '../_base_/models/unet_convnext-s.py', '../_base_/datasets/trash_coco.py',
    'mmseg::_base_/default_runtime.py', '../_base_/schedules/iter_20k_miou.py',
    '../_base_/schedules/adamw_poly_20k.py',
]
custom_imports = dict(imports=['mmseg_ext'], allow_failed_imports=False)
num_classes = 11
crop_size = (512, 512)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(size=crop_size),
    decode_head=dict(type='UNetHead', num_classes=num_classes,
                     loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)),
    test_cfg=dict(_delete_=True, mode='whole'))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'decode_head': dict(lr_mult=10.0)}))
