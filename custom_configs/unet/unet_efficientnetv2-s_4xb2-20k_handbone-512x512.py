# U-Net decoder (full resolution, scSE) on a timm EfficientNetV2-S (ImageNet-21k, then
# 1k)
# Multi-label hand bones, 512x512 crops. Needs timm. Weights:
#   python tools/get_weights.py timm:tf_efficientnetv2_s.in21k_ft_in1k
# (without them: --cfg-options model.backbone.pretrained=False)
_base_ = ['./unet_convnext-s_4xb2-20k_handbone-512x512.py']

model = dict(
    backbone=dict(model_name='tf_efficientnetv2_s.in21k_ft_in1k',
                  out_indices=(0, 1, 2, 3, 4),
                  checkpoint_path='pretrain/timm/tf_efficientnetv2_s.in21k_ft_in1k.safetensors'),
    decode_head=dict(in_channels=[24, 48, 64, 160, 256], in_index=[0, 1, 2, 3, 4],
                     in_strides=[2, 4, 8, 16, 32]))
