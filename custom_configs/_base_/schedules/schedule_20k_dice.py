# 20k iterations, AdamW + linear warm-up + poly decay, validation every 2k iterations,
# keep the best competition Dice (mDice of MultiLabelDiceMetric).
_base_ = ['./iter_20k_mdice.py', './adamw_poly_20k.py']
