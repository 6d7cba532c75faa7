# UperNet + BEiT-base at 512x512: mmseg's UperNet-BEiT base with BEiT-base (ImageNet-22k)
# weights converted for mmseg at pretrain/beit_base_patch16_224_pt22k_ft22k.pth
# (python tools/get_weights.py beit-base downloads and converts them).
# BEiT's relative position bias is built for img_size, so inference slides 512 windows,
# and a test image (or TTA view) smaller than 512 on a side is padded to 512 first (the
# padding is cut from the prediction): any image size predicts.
# Without the weights: --cfg-options model.pretrained=None
_base_ = ['mmseg::_base_/models/upernet_beit.py']
model = dict(
    data_preprocessor=dict(size=(512, 512), test_cfg=dict(size=(512, 512))),
    pretrained='pretrain/beit_base_patch16_224_pt22k_ft22k.pth',
    backbone=dict(img_size=(512, 512)),
    test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(341, 341)))
