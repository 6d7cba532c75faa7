# The demo model trained on labelled + pseudo-labelled images (mmengine ConcatDataset):
# the labelled training fold of the synthetic hand-bone data, plus the test images with
# the polygon JSON that tools/pseudo_label.py wrote from the first model's predictions.
#
#   python tools/inference.py custom_configs/demo/unet-s5-tiny_multilabel_1xb4-1500i_handbone-synth-128x128.py \
#       work_dirs/demo_handbone/iter_1500.pth --img-dir work_dirs/demo_handbone/data/test/DCM \
#       --out-dir work_dirs/demo_handbone/test_probs_full --out-size original
#   python tools/pseudo_label.py work_dirs/demo_handbone/test_probs_full \
#       --out-dir work_dirs/demo_handbone/pseudo [--pixel-conf 0.9 --max-uncertain 0.2]
#   python tools/train.py custom_configs/demo/unet-s5-tiny_multilabel_1xb4-1500i_handbone-synth-pseudo-128x128.py
_base_ = ['./unet-s5-tiny_multilabel_1xb4-1500i_handbone-synth-128x128.py']

data_root = 'work_dirs/demo_handbone/data'
pseudo_root = 'work_dirs/demo_handbone/pseudo'
train_dataloader = dict(dataset=dict(
    _delete_=True, type='ConcatDataset', datasets=[
        dict(type='HandBoneDataset', data_root=data_root + '/train', fold=0, num_folds=4,
             subset='train', pipeline={{_base_.train_pipeline}}),
        # accepted.txt lists the accepted images relative to the inference --img-dir;
        # img_path is relative to pseudo_root (data_root and data_prefix are joined)
        dict(type='HandBoneDataset', data_root=pseudo_root, ann_file='accepted.txt',
             data_prefix=dict(img_path='../data/test/DCM', seg_map_path='outputs_json'),
             pipeline={{_base_.train_pipeline}}),
    ]))
