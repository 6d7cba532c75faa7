# UperNet + BEiT-base on the recycling-trash COCO data (11 classes), 512x512 crops.
# Pretrained weights: BEiT-base (22k) converted for mmseg, as mmseg's own BEiT configs
# expect, at pretrain/beit_base_patch16_224_pt22k_ft22k.pth. Without them (e.g. a smoke
# run): --cfg-options model.pretrained=None
_base_ = [
    '../_base_/models/upernet_beit-b_512.py', '../_base_/datasets/trash_coco.py',
    'mmseg::_base_/default_runtime.py', '../_base_/schedules/iter_20k_miou.py',
    '../_base_/schedules/adamw_beit-layer-decay_20k.py'
]
custom_imports = dict(imports=['mmseg_ext'], allow_failed_imports=False)
num_classes = 11
model = dict(decode_head=dict(num_classes=num_classes),
             auxiliary_head=dict(num_classes=num_classes))
train_dataloader = dict(batch_size=2)
