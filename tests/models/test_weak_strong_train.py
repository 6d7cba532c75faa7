"""Weak-to-strong training end to end with the shipped configs on tiny data: tools/train.py
(2 iterations, the fixed labelled/unlabelled batch split), then tools/inference.py with
the checkpoint, and the checkpoint's student weights in the plain student config."""
import glob
import os
import os.path as osp

import numpy as np
import pytest
import torch
from conftest import REPO, run_tool
from mmengine.config import Config

from mmseg_ext.config.model import build_bare_model
from mmseg_ext.io.prob_file import read_probs
from mmseg_ext.models.segmentors.weak_strong import student_state_dict

JSRT = 'custom_configs/jsrt/unimatch_unet-s5-tiny_multilabel_1xb4-1k_jsrt-chest-256x256.py'
JSRT_PLAIN = 'custom_configs/jsrt/unet-s5-tiny_multilabel_1xb4-1k_jsrt-chest-256x256.py'
CAMVID = 'custom_configs/camvid/unimatch_fcn_r18-tiny_1xb8-2k_camvid-half-1of8-180x240.py'
TRAIN = 'train_dataloader.dataset.datasets'
CHEST = ('right_lung', 'left_lung', 'heart', 'right_clavicle', 'left_clavicle')
#: two iterations, a batch of 2 labelled + 2 unlabelled images
SHORT = ['train_cfg.max_iters=2', 'train_cfg.val_interval=2',
         'default_hooks.checkpoint.interval=2', 'default_hooks.logger.interval=1',
         'train_dataloader.batch_size=4', 'train_dataloader.batch_sampler.labelled_per_batch=2',
         'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
         'val_dataloader.num_workers=0', 'val_dataloader.persistent_workers=False']
#: the jsrt config at 64 px
JSRT_64 = [f'{TRAIN}.0.pipeline.2.scale=(64,64)', f'{TRAIN}.0.pipeline.4.crop_size=(64,64)',
           f'{TRAIN}.0.pipeline.6.size=(64,64)', f'{TRAIN}.1.pipeline.1.scale=(64,64)',
           f'{TRAIN}.1.pipeline.2.crop_size=(64,64)', f'{TRAIN}.1.pipeline.3.size=(64,64)',
           'val_dataloader.dataset.pipeline.1.scale=(64,64)']


def _write(path, lines):
    path.write_text(''.join(f'{line}\n' for line in lines))
    return str(path)


def _train_log(work):
    (log,) = glob.glob(f'{work}/*/*.log')
    return open(log).read()


@pytest.mark.slow
def test_multilabel_hand_bone_layout_trains_and_predicts(tmp_path):
    data = tmp_path / 'data'
    proc = run_tool('tools/make_synthetic_handbone.py', '--out', str(data), '--patients',
                    '5', '--size', '32x32', '--test-patients', '1')
    assert proc.returncode == 0, proc.stderr
    dcm = f'{data}/train/DCM'
    stems = sorted(osp.relpath(p, dcm)[:-4] for p in glob.glob(f'{dcm}/*/*.png'))
    # fold 0 of 5 by patient (the config's validation) is ID003 for this data; the
    # other four patients: two labelled, two unlabelled
    pool = [s for s in stems if not s.startswith('ID003/')]
    labelled = _write(tmp_path / 'labelled.txt', pool[:4])
    unlabelled = _write(tmp_path / 'unlabelled.txt', pool[4:])
    # the unlabelled images' JSONs are never read: break them
    for stem in pool[4:]:
        with open(f'{data}/train/outputs_json/{stem}.json', 'w') as f:
            f.write('{broken')
    options = [f'{TRAIN}.0.ann_file={labelled}', f'{TRAIN}.1.ann_file={unlabelled}',
               f'{TRAIN}.0.data_prefix.img_path={dcm}',
               f'{TRAIN}.0.data_prefix.seg_map_path={data}/train/outputs_json',
               f'{TRAIN}.1.data_prefix.img_path={dcm}',
               f'val_dataloader.dataset.data_root={data}/train', *JSRT_64, *SHORT]
    work = tmp_path / 'work'
    proc = run_tool('tools/train.py', JSRT, '--work-dir', str(work), '--cfg-options',
                    *options, env={'OMP_NUM_THREADS': '1'})
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = _train_log(work)
    for key in ('decode.loss_bce', 'loss_unsup_s1', 'loss_unsup_s2', 'loss_unsup_fp',
                'unsup_conf_ratio', 'mDice'):
        assert key in log, key
    ckpt = work / 'iter_2.pth'
    state = torch.load(ckpt, map_location='cpu', weights_only=False)['state_dict']
    assert state and all(k.startswith('student.') for k in state)
    # the student's weights fit the plain labelled-only config exactly
    plain = build_bare_model(Config.fromfile(osp.join(REPO, JSRT_PLAIN)))
    plain.load_state_dict(student_state_dict(state), strict=True)

    probs = tmp_path / 'probs'
    proc = run_tool('tools/inference.py', JSRT, str(ckpt), '--img-dir',
                    f'{data}/test/DCM', '--out-dir', str(probs), '--no-progress',
                    env={'OMP_NUM_THREADS': '1'})
    assert proc.returncode == 0, proc.stderr[-3000:]
    files = sorted(glob.glob(f'{probs}/*/*.npz'))
    assert len(files) == 2
    stored, meta = read_probs(files[0])
    assert meta.task == 'multi-label' and meta.classes == CHEST
    assert stored.shape == (5, 256, 256)     # the config's test scale (no option given)


@pytest.mark.slow
def test_multiclass_folders_train_and_predict(tmp_path, shapes_root):
    root = shapes_root
    names = sorted(n[:-4] for n in os.listdir(f'{root}/images/train'))
    labelled = _write(tmp_path / 'labelled.txt', names[:2])
    unlabelled = _write(tmp_path / 'unlabelled.txt', names[2:])
    options = [f'{TRAIN}.0.ann_file={labelled}', f'{TRAIN}.1.ann_file={unlabelled}',
               f'{TRAIN}.0.data_prefix.img_path={root}/images/train',
               f'{TRAIN}.0.data_prefix.seg_map_path={root}/labels/train',
               f'{TRAIN}.1.data_prefix.img_path={root}/images/train',
               f'{TRAIN}.0.img_suffix=.png', f'{TRAIN}.1.img_suffix=.png',
               f'val_dataloader.dataset.data_root={root}',
               'val_dataloader.dataset.data_prefix.img_path=images/val',
               'val_dataloader.dataset.data_prefix.seg_map_path=labels/val',
               'val_dataloader.dataset.img_suffix=.png',
               'model.segmentor.data_preprocessor.size=(32,40)',
               f'{TRAIN}.0.pipeline.2.scale=(40,32)', f'{TRAIN}.0.pipeline.3.crop_size=(32,40)',
               f'{TRAIN}.1.pipeline.1.scale=(40,32)', f'{TRAIN}.1.pipeline.2.crop_size=(32,40)',
               *SHORT]
    work = tmp_path / 'work'
    proc = run_tool('tools/train.py', CAMVID, '--work-dir', str(work), '--cfg-options',
                    *options, env={'OMP_NUM_THREADS': '1'})
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = _train_log(work)
    for key in ('decode.loss_ce', 'aux.loss_ce', 'loss_unsup_s1', 'loss_unsup_fp', 'mIoU'):
        assert key in log, key
    probs = tmp_path / 'probs'
    proc = run_tool('tools/inference.py', CAMVID, str(work / 'iter_2.pth'), '--img-dir',
                    f'{root}/images/val', '--out-dir', str(probs), '--no-progress',
                    env={'OMP_NUM_THREADS': '1'})
    assert proc.returncode == 0, proc.stderr[-3000:]
    files = sorted(glob.glob(f'{probs}/*.npz'))
    assert len(files) == 3
    stored, meta = read_probs(files[0])
    assert meta.task == 'multi-class' and len(meta.classes) == 11
    probs = stored.astype(np.float64).sum(0) / 255       # softmax: sums to 1 per pixel
    assert np.all(np.abs(probs - 1) <= 11 / 510 + 1e-9)
