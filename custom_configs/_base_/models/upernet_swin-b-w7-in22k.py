# UperNet + Swin-B (window 7, ImageNet-22k pre-trained) at 512x512: mmseg's UperNet-Swin
# base with the Swin-B widths and its pre-trained weights, a local file:
#   python tools/get_weights.py swin-base
# Without them: --cfg-options model.backbone.init_cfg=None
_base_ = ['mmseg::_base_/models/upernet_swin.py']
checkpoint_file = 'pretrain/swin_base_patch4_window7_224_22k_20220317-4f79f7c0.pth'
model = dict(
    data_preprocessor=dict(size=(512, 512)),
    backbone=dict(
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint_file),
        embed_dims=128, depths=[2, 2, 18, 2], num_heads=[4, 8, 16, 32], window_size=7,
        use_abs_pos_embed=False, drop_path_rate=0.3, patch_norm=True),
    decode_head=dict(in_channels=[128, 256, 512, 1024]),
    auxiliary_head=dict(in_channels=512))
