# Multi-label semi-supervised experiment, labelled-only teacher: the demo's UNet on 1/4 of
# the patients of a synthetic hand-bone training pool (3 of 12 patients, 6 images), 1000
# iterations, validated on 8 other patients. Data and split files, from the repo root:
#   python tools/make_synthetic_handbone.py --out work_dirs/semisup_handbone/train_pool \
#       --patients 12 --test-patients 0 --seed 1
#   python tools/make_synthetic_handbone.py --out work_dirs/semisup_handbone/val_set \
#       --patients 8 --test-patients 0 --seed 2
#   python tools/kfold.py handbone work_dirs/semisup_handbone/train_pool/train -k 4 \
#       --seed 0 --out work_dirs/semisup_handbone/splits
# (val_fold0.txt: the 3 labelled patients; train_fold0.txt: the 9 unlabelled ones).
_base_ = ['./unet-s5-tiny_multilabel_1xb4-1500i_handbone-synth-128x128.py']
pool = 'work_dirs/semisup_handbone/train_pool/train'
max_iters = 1000
train_dataloader = dict(dataset=dict(
    data_root=pool, fold=None, ann_file='../../splits/val_fold0.txt'))
val_dataloader = dict(dataset=dict(
    data_root='work_dirs/semisup_handbone/val_set/train', fold=None))
test_dataloader = val_dataloader
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='PolyLR', power=0.9, eta_min=1e-5, begin=50, end=max_iters, by_epoch=False),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters))
