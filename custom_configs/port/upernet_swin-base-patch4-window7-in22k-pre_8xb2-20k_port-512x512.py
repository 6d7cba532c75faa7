# UperNet + Swin-B (ImageNet-22k pre-trained) on the port-structure data (5 classes).
# Pretrained: python tools/get_weights.py swin-base. Without: model.backbone.init_cfg=None
_base_ = [
    '../_base_/models/upernet_swin-b-w7-in22k.py', '../_base_/datasets/port_structures.py',
    'mmseg::_base_/default_runtime.py', '../_base_/schedules/iter_20k_miou.py',
    '../_base_/schedules/adamw_swin_20k.py'
]
custom_imports = dict(imports=['mmseg_ext'], allow_failed_imports=False)
model = dict(decode_head=dict(num_classes=5), auxiliary_head=dict(num_classes=5))
train_dataloader = dict(batch_size=2)
