# U-Net decoder (full-resolution output, scSE attention) on a timm ConvNeXt-S encoder,
# multi-label hand bones (29 overlapping classes), 512x512 crops of 2048x2048 images.
# Needs timm (requirements/timm.txt). Weights (timm's ImageNet-22k->1k ConvNeXt-S):
#   python tools/get_weights.py convnext-small
# without them: --cfg-options model.backbone.pretrained=False
_base_ = ['../_base_/models/unet_convnext-s.py', '../_base_/handbone_multilabel_20k.py',
          '../_base_/schedules/adamw_poly_20k.py']
num_classes = _base_.num_classes
crop_size = (512, 512)
model = dict(
    data_preprocessor=dict(size=crop_size),
    decode_head=dict(num_classes=num_classes, loss_decode={{_base_.multilabel_losses}}))
# the decoder learns from scratch: 10x the encoder's learning rate
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'decode_head': dict(lr_mult=10.0)}))
