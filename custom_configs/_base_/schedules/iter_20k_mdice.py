# As iter_20k_miou.py, keeping the best competition Dice (mDice of MultiLabelDiceMetric).
_base_ = ['./iter_20k_miou.py']
default_hooks = dict(checkpoint=dict(save_best='mDice'))
