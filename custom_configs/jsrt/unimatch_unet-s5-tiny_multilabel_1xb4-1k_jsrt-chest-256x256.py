# Weak-to-strong consistency (UniMatch style, docs/semi_supervised.md) on the real chest
# X-rays of ../shared/data/jsrt_chest: the labelled-only config
# unet-s5-tiny_multilabel_1xb4-1k_jsrt-chest-256x256.py (same student, schedule, 1000
# iterations, validation on fold 0 of 5 by ID folder) wrapped in
# MultiLabelWeakToStrongSegmentor, each batch 4 labelled + 4 unlabelled images
# (LabelledRatioBatchSampler over ConcatDataset([labelled, unlabelled])).
#
# The two image lists (one stem per line, relative to train/DCM, as tools/kfold.py
# handbone writes them: ID001/image1661130828152_R) are paths relative to the working
# directory (data_root='' as in the camvid 1of8 configs). Neither may hold an image of
# the validation fold; the unlabelled list is the pool's other images, whose JSONs are
# never read. Set them with these exact keys (variables of this file cannot be
# overridden after it is read):
#   train_dataloader.dataset.datasets.0.ann_file=LABELLED.txt
#   train_dataloader.dataset.datasets.1.ann_file=UNLABELLED.txt
# Data elsewhere: train_dataloader.dataset.datasets.0.data_prefix.img_path=ROOT/train/DCM,
#   train_dataloader.dataset.datasets.0.data_prefix.seg_map_path=ROOT/train/outputs_json,
#   train_dataloader.dataset.datasets.1.data_prefix.img_path=ROOT/train/DCM,
#   val_dataloader.dataset.data_root=ROOT/train.
# Student settings live under model.segmentor (model.segmentor.data_preprocessor.size,
# model.segmentor.decode_head...); the method's under model (conf_thresh, num_strong,
# feature_perturbation, unsup_weight, cutmix, unsup_norm).
#   python tools/train.py custom_configs/jsrt/unimatch_unet-s5-tiny_multilabel_1xb4-1k_jsrt-chest-256x256.py \
#       --work-dir work_dirs/unimatch_jsrt --cfg-options \
#       train_dataloader.dataset.datasets.0.ann_file=LABELLED.txt \
#       train_dataloader.dataset.datasets.1.ann_file=UNLABELLED.txt
_base_ = ['./unet-s5-tiny_multilabel_1xb4-1k_jsrt-chest-256x256.py']

data_root = _base_.data_root
metainfo = _base_.metainfo
crop_size = _base_.crop_size

student = {{_base_.model}}
model = dict(
    _delete_=True, type='MultiLabelWeakToStrongSegmentor', segmentor=student,
    conf_thresh=0.95, unsup_weight=1.0, unsup_norm='confident',
    # two strong views (photometric + CutMix) at 1/4 each, feature dropout at 1/2
    num_strong=2, feature_perturbation=True, fp_dropout=0.5, fp_share=0.5,
    cutmix=dict(prob=0.5, area_range=(0.02, 0.4), ratio_range=(0.3, 1 / 0.3)),
    strong_aug=dict(brightness=0.4, contrast=0.4, noise_std=0.1, blur_prob=0.5))

# the weak view: the labelled pipeline's geometry, no photometric change
unlabelled_pipeline = [
    dict(type='LoadImageFromFileChecked'),
    dict(type='RandomResize', scale=crop_size, ratio_range=(0.9, 1.1), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='MultiLabelPad', size=crop_size),
    dict(type='PackMultiLabelSegInputs'),
]
train_dataloader = dict(
    batch_size=8,
    batch_sampler=dict(type='LabelledRatioBatchSampler', labelled_per_batch=4),
    dataset=dict(_delete_=True, type='ConcatDataset', datasets=[
        dict(type='HandBoneDataset', data_root='', metainfo=metainfo,
             data_prefix=dict(img_path=data_root + '/train/DCM',
                              seg_map_path=data_root + '/train/outputs_json'),
             ann_file='work_dirs/splits/jsrt_semi/labelled.txt', fold=None,
             pipeline={{_base_.train_pipeline}}),
        dict(type='UnlabelledImageDataset', data_root='',
             data_prefix=dict(img_path=data_root + '/train/DCM'), img_suffix='.png',
             ann_file='work_dirs/splits/jsrt_semi/unlabelled.txt',
             metainfo_from=dict(type='HandBoneDataset', metainfo=metainfo),
             pipeline=unlabelled_pipeline),
    ]))
