# Labelled-only baseline of the mean-teacher experiment: the same model and schedule as
# fcn_r18-tiny_1xb8-2k_camvid-half-180x240.py, trained on 1/8 of the camvid_half train
# images (46 of 367). Write the split once, from the repo root (fold 0 of a stratified
# 8-fold split: val_fold0.txt = labelled 1/8, train_fold0.txt = the other 7/8):
#   python tools/kfold.py folder ../shared/data/camvid_half/train/images \
#       --labels ../shared/data/camvid_half/train/labels -k 8 --seed 0 \
#       --out work_dirs/splits/camvid_half_k8
# then: python tools/train.py custom_configs/camvid/fcn_r18-tiny_1xb8-2k_camvid-half-1of8-180x240.py
_base_ = ['./fcn_r18-tiny_1xb8-2k_camvid-half-180x240.py']
camvid_root = '../shared/data/camvid_half'
split_dir = 'work_dirs/splits/camvid_half_k8'
# data_root='' : ann_file and data_prefix are taken relative to the working directory
train_dataloader = dict(dataset=dict(
    data_root='', ann_file=split_dir + '/val_fold0.txt',
    data_prefix=dict(img_path=camvid_root + '/train/images',
                     seg_map_path=camvid_root + '/train/labels')))
