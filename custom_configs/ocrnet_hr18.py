# OCRNet + HRNetV2-W18 (cascade: FCN head -> OCR head), multi-label hand bones, 512x512.
# Pretrained weights (ImageNet, open-mmlab://msra/hrnetv2_w18) as a local file:
#   python tools/get_weights.py hrnetv2-w18
# Without them: --cfg-options model.pretrained=None
_base_ = ['mmseg::_base_/models/ocrnet_hr18.py', '_base_/handbone_multilabel_20k.py',
          '_base_/schedules/adamw_poly_20k.py']
num_classes = _base_.num_classes
crop_size = (512, 512)
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    type='MultiLabelCascadeEncoderDecoder',
    pretrained='pretrain/hrnetv2_w18-00eb2006.pth',
    data_preprocessor=dict(size=crop_size),
    decode_head=[
        dict(type='MultiLabelFCNHead', in_channels=[18, 36, 72, 144], channels=270,
             in_index=(0, 1, 2, 3), input_transform='resize_concat', kernel_size=1,
             num_convs=1, concat_input=False, dropout_ratio=-1, num_classes=num_classes,
             norm_cfg=norm_cfg, align_corners=False, loss_decode={{_base_.aux_losses}}),
        dict(type='MultiLabelOCRHead', in_channels=[18, 36, 72, 144],
             in_index=(0, 1, 2, 3), input_transform='resize_concat', channels=512,
             ocr_channels=256, dropout_ratio=-1, num_classes=num_classes,
             norm_cfg=norm_cfg, align_corners=False,
             loss_decode={{_base_.multilabel_losses}}),
    ],
    test_cfg=dict(mode='whole', threshold=0.5))
