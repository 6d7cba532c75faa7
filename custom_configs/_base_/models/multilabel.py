# The losses the multi-label hand-bone models share: BCE + Dice on every head (the
# auxiliary heads at 0.4). A config lists this base and refers to the lists as
#   loss_decode={{_base_.multilabel_losses}} / {{_base_.aux_losses}}
# next to the multi-label head and segmentor types of its architecture, and sets
#   # (mmseg's default_runtime.py defines tta_model, and bases may not repeat a key).
multilabel_losses = [
    dict(type='MultiLabelBCELoss', loss_weight=1.0),
    dict(type='MultiLabelDiceLoss', loss_weight=1.0),
]
aux_losses = [
    dict(type='MultiLabelBCELoss', loss_weight=0.4),
    dict(type='MultiLabelDiceLoss', loss_weight=0.4),
]
