# 20k iterations, SGD + poly decay, validation every 2k, keep the best mIoU checkpoint.
_base_ = ['./iter_20k_miou.py', './sgd_poly_20k.py']
