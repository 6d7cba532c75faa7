# UperNet + Swin-B (ImageNet-22k pre-trained, window 7) on the recycling-trash COCO data.
# Pretrained: python tools/get_weights.py swin-base. Without: model.backbone.init_cfg=None
_base_ = [
    '../_base_/models/upernet_swin-b-w7-in22k.py', '../_base_/datasets/trash_coco.py',
    'mmseg::_base_/default_runtime.py', '../_base_/schedules/iter_20k_miou.py',
    '../_base_/schedules/adamw_swin_20k.py'
]
custom_imports = dict(imports=['mmseg_ext'], allow_failed_imports=False)
num_classes = 11
model = dict(decode_head=dict(num_classes=num_classes),
             auxiliary_head=dict(num_classes=num_classes))
train_dataloader = dict(batch_size=2)
