# The CPU model of the semi-supervised measurements (docs/semi_supervised.md, issue 31)
# on the real chest X-rays of ../shared/data/jsrt_chest: the demo's small UNet (16 base
# channels, 5 stages) with the 5 chest classes, whole images resized to 256 px, 1000
# iterations. No horizontal flip: a flipped chest puts the heart on the wrong side, which
# no real chest does (docs/real_data.md). The labelled-only arms of
# tools/benchmark/bench_semi_room.py train this config on subsets of the training images:
#
#   python tools/benchmark/bench_semi_room.py --work-dir work_dirs/semi_room
_base_ = ['../demo/unet-s5-tiny_multilabel_1xb4-1500i_handbone-synth-128x128.py']

data_root = '../shared/data/jsrt_chest'
classes = ('right_lung', 'left_lung', 'heart', 'right_clavicle', 'left_clavicle')
flip_swap_classes = [('right_lung', 'left_lung'), ('right_clavicle', 'left_clavicle')]
metainfo = dict(classes=classes, flip_swap_classes=flip_swap_classes)
crop_size = (256, 256)
max_iters = 1000

model = dict(data_preprocessor=dict(size=crop_size),
             decode_head=dict(num_classes=len(classes)))
# the demo's steps at 256 px, with the exposure steps after the crop
train_pipeline = _base_.train_pipeline
train_pipeline[2].scale = train_pipeline[4].crop_size = train_pipeline[5].size = crop_size
train_pipeline.insert(5, _base_.xray_exposure)
test_pipeline = _base_.test_pipeline
test_pipeline[1].scale = crop_size
# validation: fold 0 of a 5-fold split by ID folder (patient); training: the other folds
train_dataloader = dict(dataset=dict(data_root=data_root + '/train', metainfo=metainfo,
                                     fold=0, num_folds=5, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(data_root=data_root + '/train', metainfo=metainfo,
                                   fold=0, num_folds=5, pipeline=test_pipeline))
test_dataloader = val_dataloader
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='PolyLR', power=0.9, eta_min=1e-5, begin=50, end=max_iters, by_epoch=False),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters, max_keep_ckpts=1),
                     logger=dict(interval=100))
