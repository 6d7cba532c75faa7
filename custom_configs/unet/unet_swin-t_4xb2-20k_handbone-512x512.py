# U-Net decoder (full resolution, scSE) on a timm Swin-T (hierarchical transformer,
# window 7, ImageNet-22k then 1k); timm returns its levels channels-last, TimmEncoder
# channels-first. img_size=512 sizes its position tables; strict_img_size=False pads
# other input sizes
# Multi-label hand bones, 512x512 crops. Needs timm. Weights:
#   python tools/get_weights.py timm:swin_tiny_patch4_window7_224.ms_in22k_ft_in1k
# (without them: --cfg-options model.backbone.pretrained=False)
_base_ = ['./unet_convnext-s_4xb2-20k_handbone-512x512.py']

model = dict(
    backbone=dict(model_name='swin_tiny_patch4_window7_224.ms_in22k_ft_in1k',
                  out_indices=(0, 1, 2, 3), img_size=512, strict_img_size=False,
                  checkpoint_path='pretrain/timm/swin_tiny_patch4_window7_224.ms_in22k_ft_in1k.safetensors'),
    decode_head=dict(in_channels=[96, 192, 384, 768], in_index=[0, 1, 2, 3],
                     in_strides=[4, 8, 16, 32]))
