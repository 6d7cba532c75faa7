"""The documented flags no other test passed: each command runs with them, and the
flag's effect is checked against values computed here.

tools/coco_to_masks.py (--draw-order, --iscrowd, --skip-bad, --img-root),
tools/benchmark/bench_coco_masks.py (--data, --draw-order), tools/kfold.py (coco
--group-regex, folder --img-suffix), tools/make_synthetic_handbone.py
(--images-per-patient), tools/visualize.py overlay (--palette), tools/tune_thresholds.py
(a successful run: the written thresholds reach a brute-force optimum),
tools/benchmark/bench_tta.py (--repeat), tools/benchmark/gpu_check.sh (--tiny through the
wrapper) and tools/self_train.py (--teacher-checkpoint, --unlabelled-list, --rounds,
--max-uncertain, --min-mean-conf, --force). The commands and their keys are listed in
tests/tools/test_documented_commands.py.
"""
import csv
import glob
import json
import os
import os.path as osp
import re
import stat
import sys

import cv2
import numpy as np
import pytest
import torch
from coco_reference import load_coco, reference_label_maps
from conftest import CONFIG, REPO, call_tool, run_tool
from probs_helpers import write_prob_folder

HANDBONE = 'custom_configs/demo/unet-s5-tiny_multilabel_1xb4-1500i_handbone-synth-128x128.py'


# --- tools/coco_to_masks.py and tools/benchmark/bench_coco_masks.py -------------------

#: class list of the hand-made COCO file (category ids 5 and 7 are not class indices)
COCO_CLASSES = ('Background', 'Big', 'Small')
BIG, SMALL = 1, 2
IMAGE_HW = (10, 12)


def _rect(x0, y0, x1, y1, extra=False):
    """A rectangle polygon (4 points; ``extra``: a fifth, collinear one, so the polygon
    is longer for ``--draw-order polygon_length``)."""
    pts = [x0, y0, x1, y0, x1, y1, x0, y1]
    if extra:
        pts = [x0, y0, (x0 + x1) / 2, y0] + pts[2:]
    return [[float(v) for v in pts]]


def _ann(ann_id, image_id, category_id, seg, area, crowd=0):
    return dict(id=ann_id, image_id=image_id, category_id=category_id, segmentation=seg,
                area=area, iscrowd=crowd, bbox=[0, 0, 1, 1])


def write_coco(path, bad=False):
    """Three 10x12 images.

    ``sub/a.jpg``: Small (4 points, first in the file) under Big (5 points): the file
    order paints Big on top, area_desc Small, polygon_length Big.
    ``b.jpg``: Small (5 points, first) and Big (4 points): file -> Big on top,
    area_desc -> Small, polygon_length -> Small.
    ``c.jpg``: one crowd region of Small.
    ``bad``: also an annotation of an unknown category (id 99).
    """
    h, w = IMAGE_HW
    anns = [_ann(10, 1, 7, _rect(4, 3, 8, 7), 16), _ann(11, 1, 5, _rect(1, 1, 11, 9, True), 80),
            _ann(20, 2, 7, _rect(4, 3, 8, 7, True), 16), _ann(21, 2, 5, _rect(1, 1, 11, 9), 80),
            _ann(30, 3, 7, _rect(2, 2, 8, 8), 36, crowd=1)]
    if bad:
        anns.insert(1, _ann(99, 1, 42, _rect(0, 0, 3, 3), 9))
    coco = dict(images=[dict(id=i + 1, file_name=f, height=h, width=w)
                        for i, f in enumerate(('sub/a.jpg', 'b.jpg', 'c.jpg'))],
                categories=[dict(id=7, name='Small'), dict(id=5, name='Big')],
                annotations=anns)
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(coco, f)
    return str(path)


def write_coco_images(root, sizes=None):
    """The three images under ``root`` (``sizes``: {file_name: (H, W)} overrides)."""
    for name in ('sub/a.jpg', 'b.jpg', 'c.jpg'):
        h, w = (sizes or {}).get(name, IMAGE_HW)
        os.makedirs(osp.dirname(osp.join(root, name)), exist_ok=True)
        cv2.imwrite(osp.join(root, name), np.full((h, w, 3), 90, np.uint8))
    return str(root)


def read_masks(out):
    return {name: cv2.imread(osp.join(out, osp.splitext(name)[0] + '.png'),
                             cv2.IMREAD_UNCHANGED) for name in ('sub/a.jpg', 'b.jpg', 'c.jpg')}


def coco_to_masks(ann, out, *flags):
    proc = run_tool('tools/coco_to_masks.py', ann, str(out), '--classes',
                    ','.join(COCO_CLASSES), '--no-progress', *flags)
    return proc


@pytest.mark.parametrize('order, winners', [('file', (BIG, BIG)), ('area_desc', (SMALL, SMALL)),
                                            ('polygon_length', (BIG, SMALL))])
def test_coco_to_masks_draw_order_decides_which_class_wins_an_overlap(tmp_path, order,
                                                                       winners):
    ann = write_coco(tmp_path / 'coco' / 'train.json')
    proc = coco_to_masks(ann, tmp_path / 'm', '--draw-order', order)
    assert proc.returncode == 0, proc.stderr[-2000:]
    masks = read_masks(str(tmp_path / 'm'))
    # the pixel inside both rectangles: the class painted last in this order
    assert (masks['sub/a.jpg'][5, 6], masks['b.jpg'][5, 6]) == winners
    assert masks['sub/a.jpg'][2, 2] == BIG and masks['sub/a.jpg'][0, 0] == 0
    # every pixel as pycocotools' annToMask painted in the same order
    for name, expected in reference_label_maps(load_coco(ann), COCO_CLASSES, order).items():
        np.testing.assert_array_equal(masks[name], expected, err_msg=f'{order}: {name}')


@pytest.mark.parametrize('mode, value', [('paint', SMALL), ('ignore', 255), ('skip', 0)])
def test_coco_to_masks_iscrowd_paints_ignores_or_skips_crowd_regions(tmp_path, mode, value):
    ann = write_coco(tmp_path / 'coco' / 'train.json')
    proc = coco_to_masks(ann, tmp_path / 'm', '--iscrowd', mode)
    assert proc.returncode == 0, proc.stderr[-2000:]
    masks = read_masks(str(tmp_path / 'm'))
    crowd = reference_label_maps(load_coco(ann), COCO_CLASSES, 'area_desc')['c.jpg'] > 0
    assert crowd.sum() >= 25                              # the 6x6 region, as annToMask
    assert set(np.unique(masks['c.jpg'][crowd])) == {value}
    assert not masks['c.jpg'][~crowd].any()
    assert masks['sub/a.jpg'][5, 6] == SMALL             # other annotations unchanged


def test_coco_to_masks_skip_bad_skips_and_reports_the_bad_annotation(tmp_path):
    good = write_coco(tmp_path / 'good' / 'train.json')
    bad = write_coco(tmp_path / 'coco' / 'train.json', bad=True)
    proc = coco_to_masks(bad, tmp_path / 'refused')
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f'error: {bad}: image \'sub/a.jpg\' (id 1), annotation 99: category_id 42 is not '
        'in "categories"']
    assert not (tmp_path / 'refused').exists()
    proc = coco_to_masks(bad, tmp_path / 'm', '--skip-bad')
    assert proc.returncode == 0, proc.stderr[-2000:]
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith('wrote 3 label maps (5 annotations painted, 0 images without '
                           'annotations, skipped 1: 1 x unknown category (first unknown '
                           f"category: {bad}: image 'sub/a.jpg' (id 1), annotation 99: "), last
    masks = read_masks(str(tmp_path / 'm'))
    for name, expected in reference_label_maps(load_coco(good), COCO_CLASSES,
                                               'area_desc').items():
        np.testing.assert_array_equal(masks[name], expected)  # as if it were not there


def test_coco_to_masks_img_root_reads_and_checks_the_images_there(tmp_path):
    ann = write_coco(tmp_path / 'coco' / 'train.json')
    right = write_coco_images(tmp_path / 'right')
    wrong = write_coco_images(tmp_path / 'wrong', sizes={'b.jpg': (12, 10)})
    # without --img-root no image is opened: the sizes come from the JSON
    assert coco_to_masks(ann, tmp_path / 'plain').returncode == 0
    proc = coco_to_masks(ann, tmp_path / 'm', '--img-root', right)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert {n: m.shape for n, m in read_masks(str(tmp_path / 'm')).items()} == {
        n: IMAGE_HW for n in ('sub/a.jpg', 'b.jpg', 'c.jpg')}
    proc = coco_to_masks(ann, tmp_path / 'm2', '--img-root', wrong)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f'error: {wrong}/b.jpg: image is 10x12 (width x height, after its EXIF orientation '
        'if any) but the annotation file says 12x10 (image id 2)']
    assert not (tmp_path / 'm2').exists()
    os.remove(osp.join(right, 'c.jpg'))
    proc = coco_to_masks(ann, tmp_path / 'm3', '--img-root', right)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f'error: {right}/c.jpg: image file not found (image id 3)'


@pytest.mark.parametrize('order', ['file', 'polygon_length'])
def test_bench_coco_masks_reads_data_in_the_draw_order(tmp_path, order):
    data = tmp_path / 'coco'
    ann = write_coco(data / 'annotations.json')
    write_coco_images(data / 'images')
    proc = call_tool('tools/benchmark/bench_coco_masks.py', '--data', str(data),
                     '--draw-order', order, '--repeat', '1')
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f'data: {ann}: 3 images, 5 annotations, ')
    assert lines[0].endswith(f'draw order {order}, best of 1')
    assert lines[-1].endswith('identical masks: yes (3 images compared)')


# --- tools/kfold.py -------------------------------------------------------------------

def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_kfold_coco_group_regex_keeps_a_group_in_one_fold(tmp_path):
    """9 images in 3 batches; both categories in every batch. Grouped by the batch
    folder, each validation fold is one whole batch."""
    images, anns = [], []
    for i in range(9):
        images.append(dict(id=i + 1, file_name=f'batch_{i // 3}/{i:04d}.jpg', height=8,
                           width=8))
        anns.append(_ann(100 + i, i + 1, 5 + 2 * (i % 2), _rect(1, 1, 6, 6), 25))
    ann = tmp_path / 'all.json'
    ann.write_text(json.dumps(dict(images=images, annotations=anns, categories=[
        dict(id=5, name='Big'), dict(id=7, name='Small')])))
    out = tmp_path / 'folds'
    proc = run_tool('tools/kfold.py', 'coco', str(ann), '--out', str(out), '-k', '3',
                    '--group-regex', r'^(batch_\d+)/')
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = read_csv(out / 'folds.csv')
    assert [r['group'] for r in rows] == [f'batch_{i // 3}' for i in range(9)]
    batches = []
    for j in range(3):
        val = json.loads((out / f'val_fold{j}.json').read_text())
        names = sorted(img['file_name'] for img in val['images'])
        batches.append({n.split('/')[0] for n in names})
        assert len(names) == 3 and len(batches[-1]) == 1, names   # one whole batch
        assert {r['fold'] for r in rows if r['group'] in batches[-1]} == {str(j)}
    assert sorted(b.pop() for b in batches) == ['batch_0', 'batch_1', 'batch_2']


def test_kfold_folder_img_suffix_picks_those_files(tmp_path):
    img_dir = tmp_path / 'images'
    (img_dir / 'sub').mkdir(parents=True)
    pngs = ['p0', 'p1', 'p2', 'sub/p3']
    for stem in pngs:
        cv2.imwrite(str(img_dir / f'{stem}.png'), np.zeros((4, 4), np.uint8))
    for stem in ('j0', 'j1', 'j2'):
        cv2.imwrite(str(img_dir / f'{stem}.jpg'), np.zeros((4, 4), np.uint8))
    (img_dir / 'notes.txt').write_text('not an image')

    def stems(out):
        lists = [(out / f'val_fold{j}.txt').read_text().split() for j in range(2)]
        return sorted(sum(lists, []))

    proc = run_tool('tools/kfold.py', 'folder', str(img_dir), '--out', str(tmp_path / 'png'),
                    '-k', '2', '--img-suffix', '.png')
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert stems(tmp_path / 'png') == pngs
    assert sorted(r['name'] for r in read_csv(tmp_path / 'png' / 'folds.csv')) == pngs
    train0 = (tmp_path / 'png' / 'train_fold0.txt').read_text().split()
    assert sorted(train0 + (tmp_path / 'png' / 'val_fold0.txt').read_text().split()) == pngs
    proc = run_tool('tools/kfold.py', 'folder', str(img_dir), '--out', str(tmp_path / 'jpg'),
                    '-k', '2')                                    # the default, .jpg
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert stems(tmp_path / 'jpg') == ['j0', 'j1', 'j2']


# --- tools/make_synthetic_handbone.py --------------------------------------------------

def test_make_synthetic_handbone_images_per_patient(tmp_path):
    out = tmp_path / 'hb'
    proc = run_tool('tools/make_synthetic_handbone.py', '--out', str(out), '--patients', '2',
                    '--images-per-patient', '3', '--test-patients', '1', '--size', '32x32')
    assert proc.returncode == 0, proc.stderr[-2000:]
    for split, patients in (('train', 2), ('test', 1)):
        folders = sorted(glob.glob(str(out / split / 'DCM' / 'ID*')))
        assert len(folders) == patients
        assert [len(glob.glob(osp.join(f, '*.png'))) for f in folders] == [3] * patients
    jsons = sorted(glob.glob(str(out / 'train' / 'outputs_json' / 'ID*')))
    assert [len(glob.glob(osp.join(f, '*.json'))) for f in jsons] == [3, 3]
    assert re.match(r'wrote 6 train images \(2 patients, \d+ polygons\) and 3 test images '
                    r'\(1 patients\), 32x32, ', proc.stdout.strip().splitlines()[-1])


# --- tools/visualize.py overlay --------------------------------------------------------

def test_visualize_overlay_palette_sets_the_class_colours(tmp_path):
    """Two hand-bone classes, Radius and Ulna: ``--palette handbone`` fills them with
    their hand-bone colours (by name), ``auto`` with the random colours of seed 29 for
    two classes (fully opaque, no outline: the pixel is the colour)."""
    from mmseg_ext.utils.class_names import HAND_BONE_CLASSES, HAND_BONE_PALETTE
    classes = ('Radius', 'Ulna')
    probs = np.zeros((2, 64, 64), np.float32)
    probs[0, 30:60, 2:30] = 1.0
    probs[1, 30:60, 34:62] = 1.0
    folder = write_prob_folder(tmp_path / 'probs', {'x.png': (probs, (64, 64))}, classes)
    (tmp_path / 'img').mkdir()
    image = np.full((64, 64, 3), 100, np.uint8)
    cv2.imwrite(str(tmp_path / 'img' / 'x.png'), image)
    handbone = [HAND_BONE_PALETTE[HAND_BONE_CLASSES.index(c)] for c in classes]
    auto = np.random.default_rng(29).integers(40, 256, size=(2, 3)).tolist()
    assert handbone != auto
    for palette, colours in (('handbone', handbone), ('auto', auto)):
        out = tmp_path / palette
        proc = run_tool('tools/visualize.py', 'overlay', folder, '--img-dir',
                        str(tmp_path / 'img'), '--out-dir', str(out), '--palette', palette,
                        '--alpha', '1', '--outline', '0', '--no-progress')
        assert proc.returncode == 0, proc.stderr[-2000:]
        drawn = cv2.imread(str(out / 'x.png'))
        assert drawn.shape == (64, 64, 3)
        for c, (rows, cols) in enumerate(((slice(30, 60), slice(2, 30)),
                                          (slice(30, 60), slice(34, 62)))):
            region = drawn[rows, cols].reshape(-1, 3)
            assert (region == colours[c][::-1]).all(), (palette, c)   # BGR on disk
        assert (drawn[22:30, 30:34] == 100).all()         # background keeps the image
    # a class without a hand-bone colour: refused by name
    other = write_prob_folder(tmp_path / 'other', {'x.png': (probs, (64, 64))},
                              ('Radius', 'Tibia'))
    proc = run_tool('tools/visualize.py', 'overlay', other, '--img-dir', str(tmp_path / 'img'),
                    '--out-dir', str(tmp_path / 'o'), '--palette', 'handbone',
                    '--no-progress')
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: {other}: classes ['Tibia'] have no hand-bone colour")


# --- tools/tune_thresholds.py ----------------------------------------------------------

def _dice(pred, gt):
    """The competition Dice, per image, mean over images (docs/submission.md)."""
    return float(np.mean([(2 * (p & g).sum() + 1e-4) / (p.sum() + g.sum() + 1e-4)
                          for p, g in zip(pred, gt)]))


def _brute_force(levels, gts, lo, hi):
    """``(best Dice, Dice at t)`` for thresholds ``t`` on a fine grid of ``[lo, hi]``
    (``p = q / 255``, predicted where ``p > t``)."""
    grid = np.arange(lo, hi + 1e-9, 0.0005)
    scores = [_dice([q / 255.0 > t for q in levels], gts) for t in grid]
    return max(scores), lambda t: _dice([q / 255.0 > t for q in levels], gts)


def test_tune_thresholds_writes_the_brute_force_best_threshold(tmp_path):
    rng = np.random.default_rng(4)
    classes = ('a', 'b')
    images, gts, levels = {}, {c: [] for c in classes}, {c: [] for c in classes}
    (tmp_path / 'gt' / 'v').mkdir(parents=True)
    for i in range(3):
        gt = np.zeros((2, 12, 14), bool)
        gt[0, 2:8, 3:10] = True
        gt[1, 6:11, 1 + i:6 + i] = True
        q = np.zeros((2, 12, 14), np.uint8)
        # class a: foreground mostly high, background spread; class b: weak foreground
        q[0] = np.where(gt[0], rng.integers(120, 256, (12, 14)), rng.integers(0, 200, (12, 14)))
        q[1] = np.where(gt[1], rng.integers(40, 120, (12, 14)), rng.integers(0, 90, (12, 14)))
        images[f'v/{i}.png'] = (q.astype(np.float32) / 255.0, (12, 14))
        np.save(tmp_path / 'gt' / 'v' / f'{i}.npy', gt.astype(np.uint8))
        for c in range(2):
            gts[classes[c]].append(gt[c])
            levels[classes[c]].append(q[c].astype(np.float64))
    probs = write_prob_folder(tmp_path / 'p', images, classes)

    def tune(out, *search):
        proc = run_tool('tools/tune_thresholds.py', probs, '--gt', str(tmp_path / 'gt'),
                        '--out', str(out), *search, '--no-progress')
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert f'written to {out}' in proc.stdout.strip().splitlines()[-1]
        written = json.loads(out.read_text())
        assert written.pop('__kind__') == 'thresholds'  # the file names its setting
        return written, proc.stdout

    found, stdout = tune(tmp_path / 'thr.json')
    assert list(found) == list(classes)
    best = {}
    for c in classes:
        top, dice_at = _brute_force(levels[c], gts[c], 0.05, 0.95)
        assert 0.05 <= found[c] <= 0.95
        assert dice_at(found[c]) == pytest.approx(top, abs=1e-9), c
        assert dice_at(found[c]) > dice_at(0.5) or c == 'a'    # b's best is well below 0.5
        best[c] = top
        row = next(line.split() for line in stdout.splitlines() if line.split()[:1] == [c])
        assert float(row[1]) == pytest.approx(found[c], abs=5e-5)
        assert float(row[3]) == pytest.approx(top, abs=5e-5)
    assert found['b'] < 0.5 - 0.05
    # --search: only thresholds in [0.5, 0.9]; b's optimum lies below it
    narrow, _ = tune(tmp_path / 'narrow.json', '--search', '0.5', '0.9')
    for c in classes:
        top, dice_at = _brute_force(levels[c], gts[c], 0.5, 0.9)
        assert 0.5 <= narrow[c] <= 0.9
        assert dice_at(narrow[c]) == pytest.approx(top, abs=1e-9), c
    assert _brute_force(levels['b'], gts['b'], 0.5, 0.9)[0] < best['b']


# --- tools/benchmark/bench_tta.py --repeat ---------------------------------------------

@pytest.mark.slow
def test_bench_tta_repeat_runs_each_mode_that_many_times(tmp_path, shapes_root, fast_cpu):
    from mmseg_ext.config.loading import load_config
    from mmseg_ext.config.model import build_bare_model
    torch.manual_seed(0)
    ckpt = str(tmp_path / 'm.pth')
    torch.save({'state_dict': build_bare_model(load_config(CONFIG)).state_dict()}, ckpt)
    work = tmp_path / 'w'
    proc = call_tool('tools/benchmark/bench_tta.py', CONFIG, ckpt, '--repeat', '2',
                     '--work-dir', str(work), '--cfg-options',
                     f'val_dataloader.dataset.data_root={shapes_root}',
                     f'test_dataloader.dataset.data_root={shapes_root}')
    assert proc.returncode == 0, proc.stderr[-3000:]
    # one runner (and work dir) per mode and repetition: plain x 2, TTA x 2
    runs = sorted(re.sub(r'_\d+$', '', d) for d in os.listdir(work))
    assert runs == ['False_0', 'False_1', 'True_0', 'True_1']
    table = [line for line in proc.stdout.splitlines() if line.startswith('| ')]
    assert [row.split(' | ')[:3] for row in table[1:]] == [['| plain', '1', '3'],
                                                           ['| TTA', '6', '3']]


# --- tools/benchmark/gpu_check.sh --tiny -----------------------------------------------

def test_gpu_check_sh_passes_tiny_to_the_script_from_the_repository(tmp_path):
    """The wrapper runs ``$PYTHON tools/benchmark/gpu_check.py --tiny ...`` from the
    repository root, whatever the caller's folder. ``$PYTHON`` here records what it was
    given and then runs the real interpreter on ``--help`` (the --tiny run itself takes
    a minute on 2 cores: test_gpu_check.py::test_gpu_check_tiny_mode runs it)."""
    import subprocess
    record = tmp_path / 'argv.json'
    shim = tmp_path / 'python'
    shim.write_text(f'#!{sys.executable}\nimport json, os, subprocess, sys\n'
                    f'json.dump(dict(argv=sys.argv[1:], cwd=os.getcwd()), open({str(record)!r}, "w"))\n'
                    f'sys.exit(subprocess.call([{sys.executable!r}, sys.argv[1], "--help"]))\n')
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    proc = subprocess.run(['bash', osp.join(REPO, 'tools/benchmark/gpu_check.sh'), '--tiny',
                           '--out', str(tmp_path / 'gc')], cwd=str(tmp_path),
                          env={**os.environ, 'PYTHON': str(shim)}, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    seen = json.loads(record.read_text())
    assert seen == dict(argv=['tools/benchmark/gpu_check.py', '--tiny', '--out',
                              str(tmp_path / 'gc')], cwd=REPO)
    assert '--tiny' in proc.stdout                       # the real script's help


# --- tools/self_train.py ---------------------------------------------------------------

def _iters(n):
    return [f'train_cfg.max_iters={n}', f'train_cfg.val_interval={n}',
            f'default_hooks.checkpoint.interval={n}', 'default_hooks.logger.interval=1',
            'train_dataloader.batch_size=2', 'log_level=WARNING']


def _bare_checkpoint(config, path, sharpen=1.0):
    """A checkpoint of ``config``'s model with random weights (seed 0); ``sharpen``
    multiplies its last layer (``conv_seg``), so the logits spread and images differ
    more in how confident the model is."""
    from mmseg_ext.config.loading import load_config
    from mmseg_ext.config.model import build_bare_model
    torch.manual_seed(0)
    state = build_bare_model(load_config(config)).state_dict()
    state = {k: v * sharpen if 'conv_seg' in k else v for k, v in state.items()}
    torch.save({'state_dict': state}, path)
    return str(path)


def _separating_filters(images):
    """``(max_uncertain, min_mean_conf)`` halfway between the images' reported values,
    such that the uncertainty filter rejects an image, the confidence filter rejects one
    the uncertainty filter keeps, and exactly one image passes both (searched over every pair of midpoints: the values are rounded in the
    report, so two images may tie on one of them)."""
    fracs = sorted({f for _, _, f in images.values()})
    means = sorted({m for _, m, _ in images.values()})
    for mu in [(a + b) / 2 for a, b in zip(fracs, fracs[1:])]:
        for mc in [(a + b) / 2 for a, b in zip(means, means[1:])]:
            by_frac = {p for p, (_, _, f) in images.items() if f > mu}
            by_mean = {p for p, (_, m, _) in images.items() if m < mc}
            passing = set(images) - by_frac - by_mean
            if len(passing) == 1 and by_frac and by_mean - by_frac:
                return mu, mc
    raise AssertionError(f'no filters separate these images: {images}')


def _report(work, k=1):
    """``{img_path: (accepted, mean_conf, uncertain_fraction)}`` and the report's
    filters, of round ``k``'s pseudo-labels."""
    report = json.loads((work / f'round{k}' / 'pseudo' / 'pseudo_labels.json').read_text())
    return ({r['img_path']: (r['accepted'], r['mean_conf'], r['uncertain_fraction'])
             for r in report['images']}, report)


@pytest.mark.slow
def test_self_train_teacher_checkpoint_unlabelled_list_and_two_rounds(tmp_path, shapes_root,
                                                                      fast_cpu):
    """No teacher is trained: round 1 predicts with the given checkpoint; only the
    listed images are pseudo-labelled; round 2's teacher is round 1's student."""
    ckpt = _bare_checkpoint(CONFIG, tmp_path / 'teacher.pth')
    listed = tmp_path / 'list.txt'
    listed.write_text('0000\n0002\n')
    work = tmp_path / 'work'
    roots = [f'{s}_dataloader.dataset.data_root={shapes_root}' for s in ('train', 'val', 'test')]
    proc = run_tool('tools/self_train.py', CONFIG, CONFIG, '--unlabelled',
                    f'{shapes_root}/images/val', '--unlabelled-list', str(listed),
                    '--img-suffix', '.png', '--teacher-checkpoint', ckpt, '--rounds', '2',
                    '--pixel-conf', '0.0', '--work-dir', str(work), '--no-progress',
                    '--cfg-options', *roots, *_iters(2))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not (work / 'teacher').exists()
    summary = json.loads((work / 'summary.json').read_text())
    assert summary['teacher_checkpoint'] == ckpt and summary['teacher_metrics'] == {}
    assert [r['round'] for r in summary['rounds']] == [1, 2]
    first, second = summary['rounds']
    assert first['teacher_checkpoint'] == ckpt
    assert second['teacher_checkpoint'] == first['student_checkpoint'] == \
        f'{work}/round1/student/iter_2.pth'
    assert proc.stdout.strip().splitlines()[-1] == \
        f'final model  : {work}/round2/student/iter_2.pth'
    for k in (1, 2):
        images, _ = _report(work, k)
        assert sorted(images) == ['0000.png', '0002.png']   # the list, not the folder
        assert sorted(osp.basename(p) for p in glob.glob(
            str(work / f'round{k}' / 'pseudo' / '*.png'))) == ['0000.png', '0002.png']
        assert (work / f'round{k}' / 'pseudo_stems.txt').read_text().split() == [
            '0000', '0002']
    # round 1's probabilities are the given checkpoint's, as tools/inference.py gives them
    from mmseg_ext.io.probs import ProbFolder
    proc = run_tool('tools/inference.py', CONFIG, ckpt, '--img-dir',
                    f'{shapes_root}/images/val', '--img-list', str(listed), '--suffix', '.png',
                    '--out-dir', str(tmp_path / 'probs'), '--out-size', 'original',
                    '--no-progress', '--cfg-options', *roots)
    assert proc.returncode == 0, proc.stderr[-2000:]
    ours, theirs = ProbFolder(str(work / 'round1' / 'probs')), ProbFolder(str(tmp_path / 'probs'))
    assert ours.keys() == theirs.keys() == ['0000', '0002']
    for key in ours.keys():
        np.testing.assert_array_equal(ours.read(key)[0], theirs.read(key)[0])


@pytest.mark.slow
def test_self_train_max_uncertain_min_mean_conf_and_force(tmp_path, fast_cpu):
    """Multi-label pseudo-labels of 3 unlabelled images from a fixed (untrained,
    sharpened) teacher, pixels with some p in (0.49, 0.51) uncertain: ``--max-uncertain 0`` rejects
    every image (each has uncertain pixels);
    thresholds between the images' values then reject the most uncertain image and, of
    the other two, the less confident one. Another command in the work dir is refused
    without ``--force`` and runs with it."""
    data = tmp_path / 'data'
    proc = run_tool('tools/make_synthetic_handbone.py', '--out', str(data), '--patients', '4',
                    '--images-per-patient', '3', '--size', '64x64', '--test-patients', '1')
    assert proc.returncode == 0, proc.stderr
    ckpt = _bare_checkpoint(HANDBONE, tmp_path / 'teacher.pth', sharpen=20)
    work = tmp_path / 'work'
    roots = [f'{s}_dataloader.dataset.data_root={data}/train' for s in ('train', 'val', 'test')]

    def self_train(*flags):
        return run_tool('tools/self_train.py', HANDBONE, HANDBONE, '--unlabelled',
                        f'{data}/test/DCM', '--img-suffix', '.png', '--teacher-checkpoint',
                        ckpt, '--pixel-conf', '0.51', '--work-dir', str(work),
                        '--no-progress', *flags,
                        '--cfg-options', *roots, *_iters(2))

    proc = self_train('--max-uncertain', '0')
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        f'error: {work}/round1/pseudo: every image was rejected by the confidence '
        'filters; lower them or train a better teacher')
    images, report = _report(work)
    assert len(images) == 3 and report['max_uncertain'] == 0.0
    assert all(not ok and frac > 0 for ok, _, frac in images.values())

    max_uncertain, min_mean_conf = _separating_filters(images)
    filters = ['--max-uncertain', f'{max_uncertain:.8f}', '--min-mean-conf',
               f'{min_mean_conf:.8f}']
    proc = self_train(*filters)
    assert proc.returncode == 1
    assert 'it differs in max_uncertain' in proc.stderr.strip().splitlines()[-1]
    assert not (work / 'round1' / 'student').exists()

    proc = self_train(*filters, '--force')
    assert proc.returncode == 0, proc.stderr[-3000:]
    after, report = _report(work)
    assert after.keys() == images.keys()
    assert report['max_uncertain'] == pytest.approx(max_uncertain)
    assert report['min_mean_conf'] == pytest.approx(min_mean_conf)
    expected = {p for p, (_, m, f) in images.items()
                if f <= max_uncertain and m >= min_mean_conf}
    assert len(expected) == 1                          # one rejected by each filter
    assert {p for p, (ok, _, _) in after.items() if ok} == expected
    jsons = glob.glob(str(work / 'round1' / 'pseudo' / 'outputs_json' / '*' / '*.json'))
    assert sorted(osp.relpath(j, work / 'round1' / 'pseudo' / 'outputs_json')[:-5]
                  for j in jsons) == sorted(p[:-4] for p in expected)
    summary = json.loads((work / 'summary.json').read_text())
    assert summary['rounds'][0]['accepted'] == 1
    assert osp.isfile(work / 'round1' / 'student' / 'iter_2.pth')
