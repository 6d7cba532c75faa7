# The ceiling of the multi-label experiment: all 12 patients of the pool labelled, the
# same model, augmentation (CutMix) and 2000 iterations.
_base_ = ['./unet-s5-tiny_multilabel_cutmix_1xb4-2k_handbone-synth-1of4-128x128.py']
train_dataloader = dict(dataset=dict(ann_file=''))
