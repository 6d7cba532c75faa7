# The ceiling of the 1/8-labelled comparison: every CamVid training image labelled (367),
# the same model, augmentation (CutMix) and 6000 iterations.
#   python tools/train.py custom_configs/camvid/fcn_r18-tiny_cutmix_1xb8-6k_camvid-half-180x240.py
_base_ = ['./fcn_r18-tiny_cutmix_1xb8-6k_camvid-half-1of8-180x240.py']
train_dataloader = dict(dataset=dict(
    data_root='../shared/data/camvid_half', ann_file='',
    data_prefix=dict(img_path='train/images', seg_map_path='train/labels')))
