# OCRNet + HRNetV2-W18 on the recycling-trash COCO data (11 classes), 512x512 crops.
# Pretrained: HRNetV2-W18 (ImageNet) as a local file: python tools/get_weights.py hrnetv2-w18
# Without it: --cfg-options model.pretrained=None
_base_ = [
    'mmseg::_base_/models/ocrnet_hr18.py', '../_base_/datasets/trash_coco.py',
    'mmseg::_base_/default_runtime.py', '../_base_/schedules/schedule_20k_miou.py'
]
custom_imports = dict(imports=['mmseg_ext'], allow_failed_imports=False)
crop_size = (512, 512)
num_classes = 11
norm_cfg = dict(type='SyncBN', requires_grad=True)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    pretrained='pretrain/hrnetv2_w18-00eb2006.pth',
    decode_head=[
        dict(type='FCNHead', in_channels=[18, 36, 72, 144], channels=sum([18, 36, 72, 144]),
             in_index=(0, 1, 2, 3), input_transform='resize_concat', kernel_size=1,
             num_convs=1, concat_input=False, dropout_ratio=-1, num_classes=num_classes,
             norm_cfg=norm_cfg, align_corners=False,
             loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False,
                              loss_weight=0.4)),
        dict(type='OCRHead', in_channels=[18, 36, 72, 144], in_index=(0, 1, 2, 3),
             input_transform='resize_concat', channels=512, ocr_channels=256,
             dropout_ratio=-1, num_classes=num_classes, norm_cfg=norm_cfg,
             align_corners=False,
             loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False,
                              loss_weight=1.0)),
    ])
