# U-Net decoder (full resolution, scSE) on a timm ResNeXt-101 32x8d (Instagram-1B weakly
# supervised, then ImageNet-1k), the encoder of the 2024 hand-bone UNet++ single model
# (Dice 0.9734)
# Multi-label hand bones, 512x512 crops. Needs timm. Weights:
#   python tools/get_weights.py timm:resnext101_32x8d.fb_wsl_ig1b_ft_in1k
# (without them: --cfg-options model.backbone.pretrained=False)
_base_ = ['./unet_convnext-s_4xb2-20k_handbone-512x512.py']

model = dict(
    backbone=dict(model_name='resnext101_32x8d.fb_wsl_ig1b_ft_in1k',
                  out_indices=(0, 1, 2, 3, 4),
                  checkpoint_path='pretrain/timm/resnext101_32x8d.fb_wsl_ig1b_ft_in1k.safetensors'),
    decode_head=dict(in_channels=[64, 256, 512, 1024, 2048], in_index=[0, 1, 2, 3, 4],
                     in_strides=[2, 4, 8, 16, 32]))
