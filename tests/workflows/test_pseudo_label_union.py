"""Labelled + pseudo-labelled training: the union config's ConcatDataset holds the
labelled fold and the accepted pseudo-labelled images, whose masks are the thresholded
probabilities, and the config trains two iterations."""
import os.path as osp

import numpy as np
import pytest
from conftest import REPO
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.runner import Runner
from probs_helpers import write_prob_folder

from mmseg_ext.datasets.synthetic.hand_bone import make_handbone_dataset
from mmseg_ext.utils.class_names import HAND_BONE_CLASSES
from mmseg_ext.workflows.pseudo_label import pseudo_label_folder

CONFIG = osp.join(REPO, 'custom_configs', 'demo',
                  'unet-s5-tiny_multilabel_1xb4-1500i_handbone-synth-pseudo-128x128.py')


@pytest.mark.slow
def test_union_of_labelled_and_pseudo_labelled_trains(tmp_path, fast_cpu):
    root = tmp_path / 'demo'
    make_handbone_dataset(str(root / 'data'), num_patients=4, images_per_patient=2,
                          size=(64, 64), num_test_patients=1, seed=5)
    test_dir = root / 'data' / 'test' / 'DCM'
    rels = sorted(str(p.relative_to(test_dir)) for p in test_dir.rglob('*.png'))
    assert len(rels) == 2
    # "predictions" for the test images: a confident square of class 27 (Radius)
    probs = np.full((29, 64, 64), 0.02, np.float32)
    probs[27, 20:40, 10:30] = 0.97
    folder = write_prob_folder(tmp_path / 'probs', {r: (probs, (64, 64)) for r in rels},
                               HAND_BONE_CLASSES)
    pseudo_label_folder(folder, str(root / 'pseudo'), progress=False)

    cfg = Config.fromfile(CONFIG)
    cfg.merge_from_dict({
        'train_dataloader.dataset.datasets.0.data_root': str(root / 'data' / 'train'),
        'train_dataloader.dataset.datasets.1.data_root': str(root / 'pseudo'),
        'val_dataloader.dataset.data_root': str(root / 'data' / 'train'),
        'train_cfg.max_iters': 2, 'train_cfg.val_interval': 2,
        'default_hooks.checkpoint.interval': 2, 'param_scheduler.0.end': 1,
        'param_scheduler.1.begin': 1, 'param_scheduler.1.end': 2,
        'train_dataloader.batch_size': 2, 'log_level': 'WARNING'})
    cfg.work_dir = str(tmp_path / 'work')
    cfg.visualizer.name = f'visualizer_pseudo_{tmp_path.name}'
    runner = Runner.from_cfg(cfg)
    union = runner.train_dataloader.dataset
    labelled, pseudo = union.datasets
    assert len(labelled) == 6 and len(pseudo) == 2   # 3 of 4 patients x 2, + 2 test
    assert len(union) == 8
    # a pseudo-labelled sample carries the thresholded prediction as its mask
    load = Compose([dict(type='LoadImageFromFileChecked'),
                    dict(type='LoadHandBoneAnnotations')])
    mask = load(pseudo.get_data_info(0))['gt_seg_map']
    expected = np.zeros((64, 64, 29), np.uint8)
    expected[20:40, 10:30, 27] = 1
    assert (mask == expected).all()
    runner.train()
    assert runner.iter == 2
