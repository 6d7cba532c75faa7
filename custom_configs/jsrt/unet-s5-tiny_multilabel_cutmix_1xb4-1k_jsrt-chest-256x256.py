# The jsrt CPU model (unet-s5-tiny_multilabel_1xb4-1k_jsrt-chest-256x256.py) with CutMix
# on the (5, H, W) masks: with probability 0.5 each image of a batch gets a box of
# another image of the batch with that image's labels. The strong augmentation of the
# self-training student (ST++: a student without one only copies its teacher), given to
# the labelled-only arms as well, so that a gain is the unlabelled images' and not the
# augmentation's (docs/semi_supervised.md, issue 31):
#
#   python tools/benchmark/bench_semi_room.py --work-dir work_dirs/semi_room_cutmix \
#       --config custom_configs/jsrt/unet-s5-tiny_multilabel_cutmix_1xb4-1k_jsrt-chest-256x256.py \
#       --fractions 8 1 --seeds 2
_base_ = ['./unet-s5-tiny_multilabel_1xb4-1k_jsrt-chest-256x256.py']
model = dict(data_preprocessor=dict(
    type='BatchAugmentSegDataPreProcessor',
    batch_augments=[dict(type='SegCutMix', prob=0.5)]))
