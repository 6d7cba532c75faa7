# The student of the multi-label self-training experiment: the labelled-only teacher's
# config with CutMix on the (29, H, W) masks. tools/self_train.py adds the pseudo-labelled
# patients (polygon JSON) to its 3 labelled ones:
#   python tools/self_train.py \
#       custom_configs/demo/unet-s5-tiny_multilabel_1xb4-1k_handbone-synth-1of4-128x128.py \
#       custom_configs/demo/unet-s5-tiny_multilabel_cutmix_1xb4-1k_handbone-synth-1of4-128x128.py \
#       --unlabelled work_dirs/semisup_handbone/train_pool/train/DCM \
#       --unlabelled-list work_dirs/semisup_handbone/splits/train_fold0.txt \
#       --img-suffix .png --work-dir work_dirs/semisup_handbone/selftrain
_base_ = ['./unet-s5-tiny_multilabel_1xb4-1k_handbone-synth-1of4-128x128.py']
model = dict(data_preprocessor=dict(
    type='BatchAugmentSegDataPreProcessor',
    batch_augments=[dict(type='SegCutMix', prob=0.5)]))
