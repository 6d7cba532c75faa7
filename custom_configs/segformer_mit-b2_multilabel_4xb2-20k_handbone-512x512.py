# SegFormer (MiT-B2 encoder, all-MLP decoder at 1/4) for the multi-label hand bones,
# 512x512 crops: mmseg's SegFormer with the multi-label head (MultiLabelSegformerHead,
# the same mixin as every other multi-label head) and segmentor.
# Weights (MiT-B2 ImageNet, mmseg keys): python tools/get_weights.py mit-b2
# (without them: --cfg-options model.backbone.init_cfg=None)
_base_ = ['mmseg::_base_/models/segformer_mit-b0.py', '_base_/handbone_multilabel_20k.py',
          '_base_/schedules/adamw_poly_20k.py']
num_classes = _base_.num_classes
crop_size = (512, 512)
norm_cfg = dict(type='BN', requires_grad=True)  # SyncBN needs a process group
model = dict(
    type='MultiLabelEncoderDecoder',
    data_preprocessor=dict(size=crop_size, test_cfg=dict(size_divisor=32)),
    backbone=dict(embed_dims=64, num_layers=[3, 4, 6, 3], num_heads=[1, 2, 5, 8],
                  init_cfg=dict(type='Pretrained',
                                checkpoint='pretrain/mit_b2_20220624-66e8bf70.pth')),
    decode_head=dict(type='MultiLabelSegformerHead', in_channels=[64, 128, 320, 512],
                     channels=256, norm_cfg=norm_cfg, num_classes=num_classes,
                     loss_decode={{_base_.multilabel_losses}}),
    test_cfg=dict(mode='whole', threshold=0.5))
# SegFormer's recipe: AdamW 6e-5, the decoder at 10x
optim_wrapper = dict(
    optimizer=dict(lr=6e-5),
    paramwise_cfg=dict(custom_keys={'pos_block': dict(decay_mult=0.0),
                                    'norm': dict(decay_mult=0.0),
                                    'head': dict(lr_mult=10.0)}))
