# mmseg's UNet-S5-D16 (5 stages, bottleneck at 1/16, 64 base channels, 29M parameters)
# with a multi-label FCN head on its full-resolution output: one sigmoid channel per
# class, BCE + Dice. Trains from scratch; no weights to fetch. The configs that use it
# set the class count and data_preprocessor.size (their crop); the CPU demo narrows it
# to 16 base channels.
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    type='MultiLabelEncoderDecoder',
    data_preprocessor=dict(
        type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_val=0, seg_pad_val=255,
        # the UNet halves its input 4 times: test images (any size, any TTA view) are
        # padded to a multiple of 16, and the padding is removed from the prediction
        test_cfg=dict(size_divisor=16)),
    backbone=dict(
        type='UNet', in_channels=3, base_channels=64, num_stages=5,
        strides=(1, 1, 1, 1, 1), enc_num_convs=(2, 2, 2, 2, 2), dec_num_convs=(2, 2, 2, 2),
        downsamples=(True, True, True, True), enc_dilations=(1, 1, 1, 1, 1),
        dec_dilations=(1, 1, 1, 1), norm_cfg=norm_cfg, act_cfg=dict(type='ReLU'),
        upsample_cfg=dict(type='InterpConv'), norm_eval=False),
    decode_head=dict(
        type='MultiLabelFCNHead', in_channels=64, in_index=4, channels=64, num_convs=1,
        concat_input=False, dropout_ratio=0.1, norm_cfg=norm_cfg, align_corners=False,
        loss_decode=[dict(type='MultiLabelBCELoss', loss_weight=1.0),
                     dict(type='MultiLabelDiceLoss', loss_weight=1.0)]),
    train_cfg=dict(),
    test_cfg=dict(mode='whole', threshold=0.5))
