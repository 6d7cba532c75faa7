# DeepLabV3 + ResNet-101 on CamVid (11 classes, 360x480) in image/label folders.
# Pretrained: python tools/get_weights.py resnet101-v1c. Without: model.pretrained=None
_base_ = [
    '../_base_/models/deeplabv3_r101-d8.py', '../_base_/datasets/camvid_folders.py',
    'mmseg::_base_/default_runtime.py', '../_base_/schedules/schedule_20k_miou.py'
]
custom_imports = dict(imports=['mmseg_ext'], allow_failed_imports=False)
num_classes = 11
model = dict(
    data_preprocessor=dict(size=(360, 480)),
    decode_head=dict(num_classes=num_classes),
    auxiliary_head=dict(num_classes=num_classes))
