# Weak-to-strong consistency (UniMatch style, docs/semi_supervised.md) on camvid_half
# with 1/8 of the train images labelled (val_fold0.txt, 46) and the other 7/8 used
# without labels (train_fold0.txt, 321): the student, schedule (2000 iterations) and
# labelled images of fcn_r18-tiny_1xb8-2k_camvid-half-1of8-180x240.py, wrapped in
# WeakToStrongSegmentor, each batch 8 labelled + 8 unlabelled images
# (LabelledRatioBatchSampler over ConcatDataset([labelled, unlabelled])). Write the split
# first with the tools/kfold.py command given in that config. Then:
#   python tools/train.py custom_configs/camvid/unimatch_fcn_r18-tiny_1xb8-2k_camvid-half-1of8-180x240.py
# Other lists (paths relative to the working directory) with these exact keys:
#   train_dataloader.dataset.datasets.0.ann_file=LABELLED.txt
#   train_dataloader.dataset.datasets.1.ann_file=UNLABELLED.txt
# Student settings live under model.segmentor; the method's under model.
_base_ = ['./fcn_r18-tiny_1xb8-2k_camvid-half-1of8-180x240.py']
camvid_root = '../shared/data/camvid_half'
split_dir = 'work_dirs/splits/camvid_half_k8'
crop_size = (180, 240)
img_scale = (240, 180)

student = {{_base_.model}}
model = dict(
    _delete_=True, type='WeakToStrongSegmentor', segmentor=student,
    conf_thresh=0.95, unsup_weight=1.0, unsup_norm='confident',
    num_strong=2, feature_perturbation=True, fp_dropout=0.5, fp_share=0.5,
    cutmix=dict(prob=0.5, area_range=(0.02, 0.4), ratio_range=(0.3, 1 / 0.3)),
    strong_aug=dict(brightness=0.4, contrast=0.4, noise_std=0.1, blur_prob=0.5))

# the weak view: the labelled pipeline's geometry, no photometric change
unlabelled_pipeline = [
    dict(type='LoadImageFromFileChecked'),
    dict(type='RandomResize', scale=img_scale, ratio_range=(0.75, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
metainfo = dict(classes={{_base_.classes}}, palette={{_base_.palette}})
train_dataloader = dict(
    batch_size=16,
    batch_sampler=dict(type='LabelledRatioBatchSampler', labelled_per_batch=8),
    dataset=dict(_delete_=True, type='ConcatDataset', datasets=[
        dict(type='BaseSegDataset', data_root='', img_suffix='.jpg', seg_map_suffix='.png',
             reduce_zero_label=False, ignore_index=255, metainfo=metainfo,
             ann_file=split_dir + '/val_fold0.txt', pipeline={{_base_.train_pipeline}},
             data_prefix=dict(img_path=camvid_root + '/train/images',
                              seg_map_path=camvid_root + '/train/labels')),
        dict(type='UnlabelledImageDataset', data_root='', img_suffix='.jpg',
             ann_file=split_dir + '/train_fold0.txt',
             data_prefix=dict(img_path=camvid_root + '/train/images'),
             metainfo_from=dict(type='BaseSegDataset', metainfo=metainfo),
             pipeline=unlabelled_pipeline),
    ]))
