# The hand-bone task as the card's configs train it: the data set (29 overlapping
# classes, patient-level folds, multi-label pipelines), BCE + Dice on every head,
# mmseg's default runtime, 20k iterations keeping the best mDice, and the multi-label
# TTA merge. A config lists a model base, this file and an optimizer base:
#   _base_ = ['_base_/models/<model>.py', '_base_/handbone_multilabel_20k.py',
#             '_base_/schedules/<optimizer>.py']
# and gives its heads the multi-label types with num_classes={{_base_.num_classes}},
# loss_decode={{_base_.multilabel_losses}} (auxiliary heads: aux_losses).
_base_ = ['./models/multilabel.py', './datasets/hand_bone.py',
          'mmseg::_base_/default_runtime.py', './schedules/iter_20k_mdice.py']
custom_imports = dict(imports=['mmseg_ext'], allow_failed_imports=False)

num_classes = 29
tta_model = dict(type='MultiLabelSegTTAModel')
