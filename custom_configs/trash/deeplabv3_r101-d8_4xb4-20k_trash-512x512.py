# DeepLabV3 + ResNet-101 (V1c, output stride 8) on the recycling-trash COCO data.
# Pretrained: python tools/get_weights.py resnet101-v1c. Without: model.pretrained=None
_base_ = [
    '../_base_/models/deeplabv3_r101-d8.py', '../_base_/datasets/trash_coco.py',
    'mmseg::_base_/default_runtime.py', '../_base_/schedules/schedule_20k_miou.py'
]
custom_imports = dict(imports=['mmseg_ext'], allow_failed_imports=False)
num_classes = 11
model = dict(decode_head=dict(num_classes=num_classes),
             auxiliary_head=dict(num_classes=num_classes))
