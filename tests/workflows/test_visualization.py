"""Drawings of multi-label masks, metric charts, confusion matrices and the visualizer."""
import glob
import json
import os.path as osp
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from conftest import run_tool
from probs_helpers import write_prob_folder

from mmseg_ext.utils.errors import DataError, MmsegExtError
from mmseg_ext.visualization.charts import (
    bar_chart,
    chart_classes,
    confusion_image,
    confusion_matrix,
    read_class_metrics,
)
from mmseg_ext.visualization.overlay import overlay_masks, side_by_side

# class 0 red, class 1 blue (RGB); drawings are BGR
PALETTE = [(255, 0, 0), (0, 0, 255)]


def two_squares(h=8, w=10):
    masks = np.zeros((2, h, w), bool)
    masks[0, 1:6, 1:6] = True   # rows 1-5, cols 1-5
    masks[1, 3:8, 3:9] = True   # rows 3-7, cols 3-8
    return masks


def test_overlay_colours_at_known_pixels():
    image = np.full((8, 10), 100, np.uint8)
    out = overlay_masks(image, two_squares(), PALETTE, alpha=0.25, outline_px=1)
    assert out.shape == (8, 10, 3) and out.dtype == np.uint8
    # outside every class: untouched grey
    assert out[0, 0].tolist() == [100, 100, 100]
    # inside class 0 only: 0.75 * 100 + 0.25 * (0, 0, 255) BGR = (75, 75, 138.75)
    assert out[2, 2].tolist() == [75, 75, 139]
    # inside class 1 only: 0.75 * 100 + 0.25 * (255, 0, 0) BGR
    assert out[6, 6].tolist() == [139, 75, 75]
    # overlap: class 1 blended over the class-0 colour: 0.75*(75,75,139) + 0.25*(255,0,0)
    assert out[4, 4].tolist() == [120, 56, 104]
    assert out[4, 4].tolist() != out[2, 2].tolist()
    assert out[4, 4].tolist() != out[6, 6].tolist()
    # outline pixels take the pure class colour (class 0 top edge, class 1 bottom edge)
    assert out[1, 3].tolist() == [0, 0, 255]
    assert out[7, 6].tolist() == [255, 0, 0]
    # no outline: the edge pixel is blended like the interior
    plain = overlay_masks(image, two_squares(), PALETTE, alpha=0.25, outline_px=0)
    assert plain[1, 3].tolist() == [75, 75, 139]


def test_side_by_side_layout():
    a = np.zeros((6, 5, 3), np.uint8)
    b = np.full((6, 7, 3), 9, np.uint8)
    out = side_by_side([a, b], gap=2)
    assert out.shape == (6, 14, 3)
    assert (out[:, 5:7] == 255).all() and (out[:, 7:] == 9).all()


def _has_colour(img_bgr, rgb, tol=3):
    target = np.array(rgb[::-1], np.int16)
    return bool((np.abs(img_bgr.astype(np.int16) - target).max(-1) <= tol).any())


def test_bar_chart_from_metrics_json(tmp_path):
    path = tmp_path / 'val_metrics.json'
    path.write_text(json.dumps({'mDice': 0.6, 'Dice.a': 0.8, 'Dice.b': 0.4,
                                'IoU.a': 0.67, 'IoU.b': 0.25, 'step': 3}))
    values = read_class_metrics(str(path))
    assert values == {'Dice': {'a': 0.8, 'b': 0.4}, 'IoU': {'a': 0.67, 'b': 0.25}}
    out = str(tmp_path / 'chart.png')
    bar_chart(values, out, size_px=(400, 300))
    img = cv2.imread(out)
    assert img.shape == (300, 400, 3)
    assert img[0, 0].tolist() == [255, 255, 255]           # figure background
    assert _has_colour(img, (0x1f, 0x77, 0xb4))             # Dice bars
    assert _has_colour(img, (0xff, 0x7f, 0x0e))             # IoU bars
    with pytest.raises(Exception, match='already exists'):
        bar_chart(values, out, size_px=(400, 300))


def test_chart_draws_every_class_of_every_metric(tmp_path):
    """A class only the second metric has is a group of its own (IoU bar, Dice n/a), and
    the tool names what is missing instead of drawing it as 0."""
    path = tmp_path / 'metrics.json'
    path.write_text(json.dumps({'Dice.a': 0.8, 'IoU.a': 0.7, 'IoU.b': 0.9}))
    values = read_class_metrics(str(path))
    assert chart_classes(values) == ['a', 'b']
    out = tmp_path / 'chart.png'
    r = run_tool('tools/visualize.py', 'chart', str(path), '--out', str(out), '--size',
                 '300', '200')
    assert r.returncode == 0, r.stderr
    assert 'Dice, IoU for 2 classes' in r.stdout
    assert 'chart: Dice has no value for b (marked n/a)' in r.stdout
    img = cv2.imread(str(out))
    # orange (IoU): the bars of a and b and the legend's patch (a chart of the first
    # metric's classes only would have 2)
    orange = np.abs(img.astype(np.int16) - np.array((0x0e, 0x7f, 0xff))).max(-1) <= 3
    assert cv2.connectedComponents(orange.astype(np.uint8))[0] - 1 == 3


@pytest.mark.parametrize('key, words', [('Dice.', 'names no class'),
                                        ('.a', 'names no metric'),
                                        ('val/Dice. ', 'names no class'),
                                        ('Dice.a ', 'ends with white space'),
                                        ('Dice.a\tb', 'control character')])
def test_chart_keys_without_a_metric_or_class_are_refused(tmp_path, key, words):
    path = tmp_path / 'metrics.json'
    path.write_text(json.dumps({'Dice.a': 0.8, key: 0.5}))
    with pytest.raises(DataError, match=words):
        read_class_metrics(str(path))
    r = run_tool('tools/visualize.py', 'chart', str(path), '--out', str(tmp_path / 'c.png'))
    assert r.returncode != 0 and not (tmp_path / 'c.png').exists()
    assert [x for x in r.stderr.splitlines() if x.startswith('error:')] == \
        [x for x in r.stderr.splitlines() if x.strip()]


def test_read_scalars_with_prefix_takes_last_record(tmp_path):
    path = tmp_path / 'scalars.json'
    path.write_text(json.dumps({'loss': 1.0, 'step': 1}) + '\n'
                    + json.dumps({'val/Dice.a': 0.1, 'step': 2}) + '\n'
                    + json.dumps({'val/Dice.a': 0.9, 'val/mDice': 0.9, 'step': 4}) + '\n')
    assert read_class_metrics(str(path)) == {'Dice': {'a': 0.9}}
    out = tmp_path / 'chart.png'
    r = run_tool('tools/visualize.py', 'chart', str(path), '--out', str(out), '--size',
                 '300', '200', '--metrics', 'Dice')
    assert r.returncode == 0, r.stderr
    assert 'Dice for 1 classes' in r.stdout
    assert cv2.imread(str(out)).shape == (200, 300, 3)
    r = run_tool('tools/visualize.py', 'chart', str(path), '--out', str(out), '--metrics',
                 'IoU', '--force')
    assert r.returncode == 2 and 'no per-class' in r.stderr  # --metrics not in the file


def test_confusion_matrix_and_image(tmp_path):
    gt = np.array([[0, 0, 1], [1, 255, 2]])
    pred = np.array([[0, 1, 1], [1, 0, 255]])
    cm = confusion_matrix(gt, pred, 3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [0, 0, 0]]
    out = str(tmp_path / 'cm.png')
    confusion_image(cm, ['a', 'b', 'c'], out, size_px=(300, 250))
    img = cv2.imread(out)
    assert img.shape == (250, 300, 3)
    import matplotlib
    darkest = np.rint(np.array(matplotlib.colormaps['Blues'](1.0)[:3]) * 255).astype(int)
    assert _has_colour(img, darkest)                        # the 1.0 cell (b, b)


def test_a_class_without_ground_truth_has_no_recall(tmp_path):
    """Its row is NaN (drawn n/a), never 0.00, and the tool names it."""
    from mmseg_ext.visualization.charts import row_shares
    shares = row_shares(np.array([[5, 1], [0, 0]]))
    assert shares[0].tolist() == [5 / 6, 1 / 6] and np.isnan(shares[1]).all()
    matrix = tmp_path / 'cm.npy'
    np.save(matrix, np.array([[5, 1], [0, 0]], np.int64))
    r = run_tool('tools/visualize.py', 'confusion', '--matrix', str(matrix), '--classes',
                 'a', 'b', '--out', str(tmp_path / 'cm.png'))
    assert r.returncode == 0, r.stderr
    assert 'confusion: no ground-truth pixel of b (its row: n/a)' in r.stdout


def test_an_ignore_index_that_is_a_class_is_refused(tmp_path):
    """--ignore-index 1 with classes bg, x, y would drop every pixel of x from the
    counts (and from the pseudo-label quality) without a word."""
    probs = np.stack([np.full((4, 4), 0.6), np.full((4, 4), 0.3), np.full((4, 4), 0.1)])
    folder = write_prob_folder(tmp_path / 'p', {'a.png': (probs, (4, 4))},
                               ('bg', 'x', 'y'), task='multi-class')
    (tmp_path / 'gt').mkdir()
    cv2.imwrite(str(tmp_path / 'gt' / 'a.png'), np.ones((4, 4), np.uint8))
    r = run_tool('tools/visualize.py', 'confusion', '--probs', folder, '--gt',
                 str(tmp_path / 'gt'), '--ignore-index', '1', '--out', str(tmp_path / 'c.png'))
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert "--ignore-index: 1 is the class 'x'" in lines[0]
    assert not (tmp_path / 'c.png').exists()
    from mmseg_ext.workflows.pseudo_label import pseudo_label_quality
    with pytest.raises(MmsegExtError, match="1 is the class 'x'"):
        pseudo_label_quality(folder, str(tmp_path / 'gt'), [0.5], ignore_index=1,
                             progress=False)


def test_overlay_folder_cli_with_handbone_gt(tmp_path):
    from mmseg_ext.datasets.synthetic.hand_bone import make_handbone_dataset
    from mmseg_ext.io.hand_bone_json import read_masks
    from mmseg_ext.utils.class_names import HAND_BONE_CLASSES
    make_handbone_dataset(str(tmp_path / 'hb'), num_patients=1, images_per_patient=1,
                          size=(64, 64), num_test_patients=0)
    train = tmp_path / 'hb' / 'train'
    (json_path,) = glob.glob(str(train / 'outputs_json' / '*' / '*.json'))
    rel = osp.relpath(json_path, train / 'outputs_json')[:-5] + '.png'
    gt = read_masks(json_path, HAND_BONE_CLASSES, (64, 64))
    probs = write_prob_folder(tmp_path / 'probs', {rel: (gt.astype(np.float32), (64, 64))},
                              HAND_BONE_CLASSES)
    out = tmp_path / 'vis'
    r = run_tool('tools/visualize.py', 'overlay', probs, '--img-dir', str(train / 'DCM'),
                 '--out-dir', str(out), '--gt', str(train), '--no-progress',
                 env={'OMP_NUM_THREADS': '1'})
    assert r.returncode == 0, r.stderr
    assert '1 with ground truth' in r.stdout
    img = cv2.imread(str(out / (rel[:-4] + '.png')))
    assert img.shape == (64, 2 * 64 + 4, 3)
    # prediction == ground truth: both panels equal away from the titles
    assert (img[20:, :64] == img[20:, 68:]).all()
    # a bone pixel is coloured, a background pixel far from every bone stays grey
    image = cv2.imread(str(train / 'DCM' / rel))
    assert (img[20:, 68:] != image[20:]).any()
    r = run_tool('tools/visualize.py', 'overlay', probs, '--img-dir', str(train / 'DCM'),
                 '--out-dir', str(out), '--no-progress')
    assert r.returncode == 1 and 'already exists' in r.stderr


def build_visualizer(tmp_path, backend, name):
    """The registered multi-label visualizer with one backend, classes a and b."""
    from mmseg.registry import VISUALIZERS
    vis = VISUALIZERS.build(dict(type='MultiLabelSegLocalVisualizer', name=name, alpha=0.25,
                                 vis_backends=[dict(type=backend)],
                                 save_dir=str(tmp_path / 'work')))
    vis.dataset_meta = dict(classes=('a', 'b'), palette=PALETTE)
    return vis


def test_visualizer_draws_multilabel_with_stock_hook(tmp_path):
    from mmengine.structures import PixelData
    from mmseg.engine.hooks import SegVisualizationHook
    from mmseg.structures import SegDataSample

    build_visualizer(tmp_path, 'LocalVisBackend', 'test_multilabel_vis')  # the hook's instance
    image = np.full((8, 10, 3), 100, np.uint8)
    cv2.imwrite(str(tmp_path / 'x.png'), image)
    masks = two_squares()
    sample = SegDataSample(metainfo=dict(img_path=str(tmp_path / 'x.png')))
    sample.gt_sem_seg = PixelData(data=torch.from_numpy(masks.astype(np.uint8)))
    pred = masks.copy()
    pred[1] = False  # the prediction misses class 1
    sample.pred_sem_seg = PixelData(data=torch.from_numpy(pred.astype(np.uint8)))
    hook = SegVisualizationHook(draw=True, interval=1)
    hook.after_val_iter(SimpleNamespace(iter=0), 0, {}, [sample])
    (path,) = glob.glob(str(tmp_path / 'work' / '**' / '*.png'), recursive=True)
    drawn = cv2.imread(path)
    assert drawn.shape == (8, 20, 3)                       # gt | pred
    gt_half, pred_half = drawn[:, :10], drawn[:, 10:]
    assert gt_half[2, 2].tolist() == [75, 75, 139]         # class 0 (red) blended
    assert gt_half[4, 4].tolist() == [120, 56, 104]        # overlap of 0 and 1
    assert pred_half[4, 4].tolist() == [75, 75, 139]       # class 1 missing in pred
    assert pred_half[6, 6].tolist() == [100, 100, 100]


def test_confusion_from_probs_and_cli(tmp_path):
    from mmseg_ext.workflows.visualize import confusion_from_probs
    probs = np.zeros((3, 2, 2), np.float32)
    probs[0, 0, :] = 1.0       # row 0 predicted class 0
    probs[2, 1, :] = 1.0       # row 1 predicted class 2
    folder = write_prob_folder(tmp_path / 'p', {'im.png': (probs, (2, 2))},
                               ('a', 'b', 'c'), task='multi-class')
    (tmp_path / 'gt').mkdir()
    cv2.imwrite(str(tmp_path / 'gt' / 'im.png'), np.array([[0, 1], [2, 255]], np.uint8))
    cm, classes = confusion_from_probs(folder, str(tmp_path / 'gt'), progress=False)
    assert len(classes) == len(cm)
    assert cm.tolist() == [[1, 0, 0], [1, 0, 0], [0, 0, 1]]
    np.save(tmp_path / 'cm.npy', cm)
    r = run_tool('tools/visualize.py', 'confusion', '--matrix', str(tmp_path / 'cm.npy'),
                 '--classes', 'a', 'b', 'c', '--out', str(tmp_path / 'cm.png'),
                 '--size', '320', '240')
    assert r.returncode == 0, r.stderr
    assert cv2.imread(str(tmp_path / 'cm.png')).shape == (240, 320, 3)
    r = run_tool('tools/visualize.py', 'confusion', '--probs', folder, '--gt',
                 str(tmp_path / 'gt'), '--out', str(tmp_path / 'cm2.png'), '--no-progress')
    assert r.returncode == 0, r.stderr
    assert '3 classes, 3 pixels' in r.stdout


@pytest.mark.slow
def test_config_with_visualizer_hook_and_ema(tmp_path, fast_cpu):
    """The demo config with the multi-label visualizer, the stock SegVisualizationHook
    (draw=True) and mmengine's EMAHook (an averaged model in the checkpoint, as used for
    pseudo-labels): 2 iterations, 1 validation image drawn; the checkpoint loads with
    the plugin's weights_only loader."""
    from config_smoke import RUN
    from conftest import REPO
    from mmengine.config import Config
    from mmengine.runner import Runner

    from mmseg_ext.datasets.synthetic.hand_bone import make_handbone_dataset
    make_handbone_dataset(str(tmp_path / 'hb'), num_patients=2, images_per_patient=2,
                          size=(64, 64), num_test_patients=0, seed=1)
    cfg = Config.fromfile(osp.join(
        REPO, 'custom_configs/demo/unet-s5-tiny_multilabel_1xb4-1500i_handbone-synth-'
        '128x128.py'))
    opts = dict(RUN)
    for loader in ('train_dataloader', 'val_dataloader'):
        opts[f'{loader}.dataset.data_root'] = str(tmp_path / 'hb' / 'train')
        opts[f'{loader}.dataset.num_folds'] = 2
    cfg.merge_from_dict(opts)
    cfg.work_dir = str(tmp_path / 'work')
    cfg.visualizer = dict(type='MultiLabelSegLocalVisualizer',
                          name=f'vis_{tmp_path.name}',
                          vis_backends=[dict(type='LocalVisBackend')])
    cfg.default_hooks.visualization = dict(type='SegVisualizationHook', draw=True,
                                           interval=1)
    cfg.custom_hooks = [dict(type='EMAHook', momentum=0.1)]
    runner = Runner.from_cfg(cfg)
    runner.train()
    (drawn,) = glob.glob(str(tmp_path / 'work' / '*' / 'vis_data' / 'vis_image' / '*.png'))
    assert cv2.imread(drawn).shape == (64, 128, 3)     # ground truth | prediction
    from mmengine.runner.checkpoint import CheckpointLoader
    ckpt = CheckpointLoader.load_checkpoint(str(tmp_path / 'work' / 'iter_2.pth'))
    averaged, trained = ckpt['state_dict'], ckpt['ema_state_dict']
    weights = [k for k in averaged if averaged[k].is_floating_point()]
    assert weights and all('module.' + k in trained for k in weights)
    assert any(not torch.equal(averaged[k], trained['module.' + k]) for k in weights)


def test_visualizer_writes_multilabel_image_to_tensorboard(tmp_path):
    """The same drawing reaches a local TensorBoard event file (no account needed)."""
    pytest.importorskip('tensorboard')
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    vis = build_visualizer(tmp_path, 'TensorboardVisBackend', 'test_multilabel_tb')
    image = np.full((8, 10, 3), 100, np.uint8)
    masks = two_squares()
    sample = SegDataSample()
    sample.gt_sem_seg = PixelData(data=torch.from_numpy(masks.astype(np.uint8)))
    sample.pred_sem_seg = PixelData(data=torch.from_numpy(masks.astype(np.uint8)))
    vis.add_datasample('val_x', image[..., ::-1].copy(), sample, step=3)
    vis.get_backend('TensorboardVisBackend').close()
    (events,) = glob.glob(str(tmp_path / 'work' / '**' / 'events.out.tfevents.*'),
                          recursive=True)
    acc = EventAccumulator(events, size_guidance={'images': 0})
    acc.Reload()
    (record,) = acc.Images('val_x')
    assert record.step == 3 and (record.width, record.height) == (20, 8)
    drawn = cv2.imdecode(np.frombuffer(record.encoded_image_string, np.uint8),
                         cv2.IMREAD_COLOR)
    assert drawn[2, 2].tolist() == [75, 75, 139]          # class 0 blended, as on disk
    assert drawn[4, 4].tolist() == [120, 56, 104]         # overlap of classes 0 and 1
