"""tools/inference.py end to end on a tiny trained model (multi-class), the multi-label
path with a segmentor class that says ``multi_label = True``, and TTA."""
import json
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from conftest import CONFIG, REPO, data_options, run_tool

from mmseg_ext.io.prob_file import dequantize
from mmseg_ext.io.probs import ProbFolder

pytestmark = [pytest.mark.stacks, pytest.mark.slow]


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    from mmseg_ext.datasets.synthetic import make_shapes_dataset
    root = tmp_path_factory.mktemp('infer')
    data = make_shapes_dataset(str(root / 'shapes'), num_train=4, num_val=2, size=(32, 40),
                               seed=3)
    work = str(root / 'work')
    proc = run_tool('tools/train.py', CONFIG, '--work-dir', work, *data_options(data, 4))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root, data, osp.join(work, 'iter_4.pth')


def mmseg_logits(config, ckpt, img_path):
    """Oracle: mmseg's own init_model + inference_model, logits at the original size."""
    from mmseg.apis import inference_model, init_model
    model = init_model(config, ckpt, device='cpu')
    return inference_model(model, img_path).seg_logits.data


def derived_config(root, body):
    path = root / f'derived_{abs(hash(body))}.py'
    path.write_text(f"_base_ = ['{osp.join(REPO, CONFIG)}']\n{body}\n")
    return str(path)


def test_cli_multiclass_matches_mmseg(trained, tmp_path):
    root, data, ckpt = trained
    out = tmp_path / 'probs'
    proc = run_tool('tools/inference.py', CONFIG, ckpt, '--img-dir', osp.join(data, 'images'),
                    '--out-dir', str(out), '--out-size', 'original', '--device', 'cpu',
                    '--no-progress')
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1].startswith(
        f'inference: 6 images, 4 classes (multi-class), uint8 at original size -> {out}')
    folder = ProbFolder(str(out))
    assert folder.keys() == ['train/0000', 'train/0001', 'train/0002', 'train/0003',
                             'val/0000', 'val/0001']   # recursive, relative names
    assert folder.classes == ('background', 'disc', 'square', 'triangle')
    probs, meta = folder.read('val/0001')
    assert meta.img_path == 'val/0001.png' and meta.ori_shape == (32, 40)
    assert meta.task == 'multi-class' and probs.shape == (4, 32, 40)
    expected = mmseg_logits(osp.join(REPO, CONFIG), ckpt,
                            osp.join(data, 'images', 'val', '0001.png')).softmax(0).numpy()
    assert np.abs(dequantize(probs) - expected).max() <= 0.5 / 255 + 1e-6
    # never overwrite without --force
    proc = run_tool('tools/inference.py', CONFIG, ckpt, '--img-dir', osp.join(data, 'images'),
                    '--out-dir', str(out))
    assert proc.returncode == 1 and 'already exists (use --force' in proc.stderr


def test_cli_bad_inputs(trained, tmp_path):
    _, data, ckpt = trained
    proc = run_tool('tools/inference.py', CONFIG, str(tmp_path / 'no.pth'), '--img-dir',
                    data, '--out-dir', str(tmp_path / 'o'))
    assert proc.returncode == 1
    assert proc.stderr.strip() == f'error: {tmp_path}/no.pth: checkpoint file not found'
    proc = run_tool('tools/inference.py', CONFIG, ckpt, '--img-dir', str(tmp_path / 'none'),
                    '--out-dir', str(tmp_path / 'o'))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == \
        f'error: {tmp_path}/none: image folder not found'
    no_tta = derived_config(tmp_path, 'tta_model = None\n')
    proc = run_tool('tools/inference.py', no_tta, ckpt, '--img-dir', data, '--out-dir',
                    str(tmp_path / 'o'), '--tta')
    assert proc.returncode == 1
    assert 'needs tta_model' in proc.stderr
    assert not (tmp_path / 'o').exists()


def test_native_size_and_metadata(trained, tmp_path):
    root, data, ckpt = trained
    from mmseg_ext.inference.predictor import build_predictor, infer_folder
    cfg = derived_config(tmp_path, """
test_pipeline = [dict(type='LoadImageFromFile'),
                 dict(type='Resize', scale=(20, 16), keep_ratio=False),
                 dict(type='LoadAnnotations'), dict(type='PackSegInputs')]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
""")
    predictor = build_predictor(cfg, ckpt, device='cpu')
    s = infer_folder(predictor, osp.join(data, 'images', 'val'), str(tmp_path / 'p'),
                     dtype='float16', progress=False)
    probs, meta = ProbFolder(s.out_dir).read('0000')
    assert probs.shape == (4, 16, 20) and probs.dtype == np.float16   # model input size
    assert meta.ori_shape == (32, 40) and meta.img_path == '0000.png'
    assert np.allclose(dequantize(probs).sum(0), 1.0, atol=4e-3)        # softmax
    fixed, ori = predictor.predict(osp.join(data, 'images', 'val', '0000.png'), (8, 10))
    assert fixed.shape == (4, 8, 10) and ori == (32, 40)


def test_multi_label_path_with_fake_segmentor(trained, tmp_path):
    """A segmentor class with ``multi_label = True``: sigmoid per class, task multi-label,
    and the result feeds the threshold tuner (ground truth: the label PNGs, one-hot)."""
    root, data, ckpt = trained
    from mmseg_ext.inference.predictor import build_predictor, infer_folder
    from mmseg_ext.postprocessing.thresholds import tune_thresholds
    predictor = build_predictor(osp.join(REPO, CONFIG), ckpt, device='cpu')
    model = predictor.model
    model.__class__ = type('FakeMultiLabelSegmentor', (type(model),), {'multi_label': True})
    from mmseg_ext.inference.predictor import ProbabilityPredictor
    predictor = ProbabilityPredictor(model, model.cfg.test_pipeline, predictor.classes)
    assert predictor.task == 'multi-label'
    s = infer_folder(predictor, osp.join(data, 'images'), str(tmp_path / 'p'),
                     out_size='original', progress=False)
    assert s.task == 'multi-label'
    folder = ProbFolder(s.out_dir)
    probs, _ = folder.read('train/0002')
    logits = mmseg_logits(osp.join(REPO, CONFIG), ckpt,
                          osp.join(data, 'images', 'train', '0002.png'))
    assert np.abs(dequantize(probs) - torch.sigmoid(logits).numpy()).max() <= 0.5 / 255 + 1e-6
    r = tune_thresholds(s.out_dir, osp.join(data, 'labels'), out=str(tmp_path / 't.json'),
                        progress=False)
    assert r.images == 6 and set(r.thresholds) == set(folder.classes)
    assert all(r.dice_tuned[c] >= r.dice_default[c] - 1e-12 for c in folder.classes)


def test_tta_averages_flip_views(trained, tmp_path):
    root, data, ckpt = trained
    from mmseg_ext.inference.predictor import build_predictor
    cfg = derived_config(tmp_path, """
tta_model = dict(type='SegTTAModel')
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='TestTimeAug', transforms=[
        [dict(type='RandomFlip', prob=0.0, direction='horizontal'),
         dict(type='RandomFlip', prob=1.0, direction='horizontal')],
        [dict(type='LoadAnnotations')],
        [dict(type='PackSegInputs')]])]
""")
    img = osp.join(data, 'images', 'val', '0001.png')
    flipped = str(tmp_path / 'flipped.png')
    cv2.imwrite(flipped, cv2.imread(img)[:, ::-1])
    plain = build_predictor(cfg, ckpt, device='cpu')
    p0, _ = plain.predict(img)
    p1, _ = plain.predict(flipped)
    tta = build_predictor(cfg, ckpt, device='cpu', tta=True)
    got, ori = tta.predict(img)
    assert ori == (32, 40)
    assert np.allclose(got, (p0 + p1[:, :, ::-1]) / 2, atol=1e-5)


ML_CONFIG = 'custom_configs/demo/unet-s5-tiny_multilabel_1xb4-1500i_handbone-synth-128x128.py'


def test_multilabel_segmentor_full_workflow(tmp_path):
    """The real MultiLabelEncoderDecoder on synthetic hand-bone data: train 2 iterations,
    inference (sigmoid of the model's logits), threshold tuning against the polygon JSON,
    submission, check."""
    import mmseg_ext.models.segmentors as segmentors
    if not hasattr(segmentors, 'MultiLabelEncoderDecoder'):
        pytest.skip('MultiLabelEncoderDecoder is not in mmseg_ext.models yet')
    from mmseg_ext.datasets.synthetic.hand_bone import make_handbone_dataset
    from mmseg_ext.inference.predictor import build_predictor, infer_folder
    from mmseg_ext.postprocessing.thresholds import tune_thresholds
    from mmseg_ext.submission.check import check_submission
    from mmseg_ext.submission.make import make_submission
    from mmseg_ext.utils.class_names import HAND_BONE_CLASSES
    data = make_handbone_dataset(str(tmp_path / 'hb'), num_patients=4, images_per_patient=1,
                                 size=(64, 64), num_test_patients=1, seed=0).root
    work = str(tmp_path / 'work')
    opts = [f'{k}_dataloader.dataset.data_root={data}/train' for k in ('train', 'val', 'test')]
    opts += ['train_cfg.max_iters=2', 'train_cfg.val_interval=2',
             'default_hooks.checkpoint.interval=2', 'train_dataloader.batch_size=2']
    proc = run_tool('tools/train.py', ML_CONFIG, '--work-dir', work, '--cfg-options', *opts)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = osp.join(work, 'iter_2.pth')

    predictor = build_predictor(osp.join(REPO, ML_CONFIG), ckpt, device='cpu')
    assert predictor.task == 'multi-label' and predictor.classes == HAND_BONE_CLASSES
    val = infer_folder(predictor, osp.join(data, 'train', 'DCM'), str(tmp_path / 'val'),
                       out_size='original', progress=False)
    folder = ProbFolder(val.out_dir)
    key = folder.keys()[0]
    probs, meta = folder.read(key)
    assert probs.shape == (29, 64, 64) and meta.ori_shape == (64, 64)
    logits = mmseg_logits(osp.join(REPO, ML_CONFIG), ckpt,
                          osp.join(data, 'train', 'DCM', meta.img_path))
    assert np.abs(dequantize(probs) - torch.sigmoid(logits).numpy()).max() <= 0.5 / 255 + 1e-6

    thr = tmp_path / 'thr.json'
    r = tune_thresholds(val.out_dir, osp.join(data, 'train'), out=str(thr), progress=False)
    assert r.images == 4 and set(r.thresholds) == set(HAND_BONE_CLASSES)
    assert np.mean(list(r.dice_tuned.values())) >= np.mean(list(r.dice_default.values()))

    test_dir = osp.join(data, 'test', 'DCM')
    proc = run_tool('tools/inference.py', ML_CONFIG, ckpt, '--img-dir', test_dir,
                    '--out-dir', str(tmp_path / 'test'), '--no-progress')
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'classes (multi-label), uint8 at native size' in proc.stdout
    test_probs, _ = ProbFolder(str(tmp_path / 'test')).read(
        ProbFolder(str(tmp_path / 'test')).keys()[0])
    assert test_probs.shape == (29, 128, 128)   # native: the test pipeline's resize
    out = tmp_path / 'sub.csv'
    s = make_submission(str(tmp_path / 'test'), 'handbone', str(out),
                        thresholds=json.loads(thr.read_text()), img_dir=test_dir,
                        progress=False)
    assert s.rows == 29
    report = check_submission(str(out), 'handbone', img_dir=test_dir)
    assert report.ok, report.errors
