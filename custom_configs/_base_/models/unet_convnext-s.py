# U-Net decoder (full-resolution output) on a timm ConvNeXt-S encoder (levels at strides
# 4, 8, 16, 32 with 96/192/384/768 channels), multi-label. Needs timm
# (requirements/timm.txt). Weights: python tools/get_weights.py convnext-small (timm's
# ImageNet-22k->1k ConvNeXt-S from the Hugging Face Hub into pretrain/timm/); without
# them: --cfg-options model.backbone.pretrained=False (random initialisation).
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    type='MultiLabelEncoderDecoder',
    data_preprocessor=dict(
        type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_val=0, seg_pad_val=255,
        # ConvNeXt halves 5 times (stem 4x, then 3 stages): whole images padded to 32
        test_cfg=dict(size_divisor=32)),
    backbone=dict(type='TimmEncoder', model_name='convnext_small.fb_in22k_ft_in1k',
                  out_indices=(0, 1, 2, 3), pretrained=True,
                  checkpoint_path='pretrain/timm/convnext_small.fb_in22k_ft_in1k.safetensors',
                  drop_path_rate=0.3),
    decode_head=dict(
        type='MultiLabelUNetHead', in_channels=[96, 192, 384, 768], in_index=[0, 1, 2, 3],
        in_strides=[4, 8, 16, 32], decoder_channels=[256, 128, 64, 32, 16],
        attention='scse', dropout_ratio=0.0, norm_cfg=norm_cfg, align_corners=False,
        num_classes=29),
    train_cfg=dict(),
    test_cfg=dict(mode='whole', threshold=0.5))
