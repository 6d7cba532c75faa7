# Mean teacher on camvid_half: 1/8 of the train images labelled (val_fold0.txt), the
# other 7/8 used without labels (train_fold0.txt). Same student, schedule and labelled
# images as the baseline fcn_r18-tiny_1xb8-2k_camvid-half-1of8-180x240.py; write the
# split first with the tools/kfold.py command given there. Then:
#   python tools/train.py custom_configs/camvid/meanteacher_fcn_r18-tiny_1xb8-2k_camvid-half-1of8-180x240.py
# One dataloader over a ConcatDataset; the 46 labelled images are repeated 7 times
# (RepeatDataset) so that a batch of 8 is a random mix of about half labelled, half
# unlabelled. Unlabelled samples have no LoadAnnotations (no gt_sem_seg): the model
# treats them as unlabelled. Validation uses the EMA teacher (predict_with='teacher').
_base_ = ['./fcn_r18-tiny_1xb8-2k_camvid-half-180x240.py']
camvid_root = '../shared/data/camvid_half'
split_dir = 'work_dirs/splits/camvid_half_k8'
crop_size = (180, 240)
img_scale = (240, 180)

student = {{_base_.model}}
model = dict(
    _delete_=True, type='MeanTeacherSegmentor', segmentor=student,
    unsup_weight=1.0, conf_thresh=0.9, ema_decay=0.99, start_iter=0,
    predict_with='teacher',
    strong_aug=dict(brightness=0.4, contrast=0.4, noise_std=0.1, blur_prob=0.5))

unlabelled_pipeline = [
    dict(type='LoadImageFromFileChecked'),
    dict(type='RandomResize', scale=img_scale, ratio_range=(0.75, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
_common = dict(type='BaseSegDataset', data_root='', img_suffix='.jpg',
               seg_map_suffix='.png', reduce_zero_label=False, ignore_index=255,
               metainfo=dict(classes={{_base_.classes}}, palette={{_base_.palette}}))
train_dataloader = dict(dataset=dict(
    _delete_=True, type='ConcatDataset', datasets=[
        dict(type='RepeatDataset', times=7, dataset=dict(
            **_common, ann_file=split_dir + '/val_fold0.txt',
            pipeline={{_base_.train_pipeline}},
            data_prefix=dict(img_path=camvid_root + '/train/images',
                             seg_map_path=camvid_root + '/train/labels'))),
        dict(**_common, ann_file=split_dir + '/train_fold0.txt',
             pipeline=unlabelled_pipeline,
             data_prefix=dict(img_path=camvid_root + '/train/images')),
    ]))
