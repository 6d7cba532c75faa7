"""Threshold tuner: a constructed example whose optimum is known, GT from JSON and .npy."""
import json

import numpy as np
import pytest
from conftest import run_tool
from probs_helpers import write_prob_folder

from mmseg_ext.io.hand_bone_json import read_masks
from mmseg_ext.postprocessing.thresholds import DiceSweep, tune_thresholds
from mmseg_ext.utils.errors import MmsegExtError

CLASSES = ('a', 'b')


def competition_dice(pred, gt):
    """FORMATS.md: (2 |P&G| + 1e-4) / (|P| + |G| + 1e-4), per image, mean over images."""
    scores = [(2 * (p & g).sum() + 1e-4) / (p.sum() + g.sum() + 1e-4) for p, g in zip(pred, gt)]
    return float(np.mean(scores))


def constructed_example():
    """Class a: GT pixels have p = 0.7, background pixels p = 0.3 or 0.6 -> any threshold
    in [0.6, 0.7) is perfect; 0.5 is not. Class b: GT has p = 0.2 (a weak class) and
    background 0.1 -> the best threshold lies in [0.1, 0.2)."""
    rng = np.random.default_rng(0)
    images, gts = {}, {}
    for i in range(3):
        gt = np.zeros((2, 10, 12), bool)
        gt[0, 2:6, 3:9] = True
        gt[1, 5:9, 1 + i:4 + i] = True
        p = np.zeros((2, 10, 12), np.float32)
        p[0] = np.where(gt[0], 0.7, np.where(rng.random((10, 12)) < 0.5, 0.3, 0.6))
        p[1] = np.where(gt[1], 0.2, 0.1)
        images[f'v/{i}.png'] = (p, (10, 12))
        gts[f'v/{i}'] = gt
    return images, gts


def test_dice_sweep_matches_direct_dice():
    rng = np.random.default_rng(1)
    sweep = DiceSweep(['x'])
    qs, gs = [], []
    for _ in range(4):
        q = rng.integers(0, 256, (9, 7)).astype(np.uint8)
        q[:3] = 0
        g = rng.random((9, 7)) < 0.3
        if _ == 3:
            g[:] = False
        sweep.update(0, q, g)
        qs.append(q)
        gs.append(g)
    mean = sweep.mean_dice()[0]
    for level in (0, 1, 77, 128, 255, 256):
        assert mean[level] == pytest.approx(competition_dice([q >= level for q in qs], gs))


def test_tuner_finds_the_known_optimum(tmp_path):
    images, gts = constructed_example()
    probs = write_prob_folder(tmp_path / 'p', images, CLASSES)
    gt_dir = tmp_path / 'gt' / 'v'
    gt_dir.mkdir(parents=True)
    for key, gt in gts.items():
        np.save(tmp_path / 'gt' / f'{key}.npy', gt.astype(np.uint8))
    out = tmp_path / 'thr.json'
    r = tune_thresholds(probs, str(tmp_path / 'gt'), out=str(out), search=(0.05, 0.95),
                        progress=False)
    thr = json.loads(out.read_text())
    assert thr.pop('__kind__') == 'thresholds'  # the file names its setting
    assert set(thr) == set(CLASSES)
    assert 0.6 <= thr['a'] < 0.7 and 0.1 <= thr['b'] < 0.2
    assert r.dice_tuned['a'] == pytest.approx(1.0) and r.dice_tuned['b'] == pytest.approx(1.0)
    # at 0.5: class a predicts the 0.6 background too; class b predicts nothing
    preds = [images[f'v/{i}.png'][0] for i in range(3)]
    g = [gts[f'v/{i}'] for i in range(3)]
    assert r.dice_default['a'] == pytest.approx(
        competition_dice([p[0] > 0.5 for p in preds], [x[0] for x in g]), abs=1e-9)
    assert r.dice_default['b'] == pytest.approx(1e-4 / (12 + 1e-4), rel=1e-6)
    # the thresholds reproduce the optimum when applied as make_submission does (p > t)
    assert competition_dice([p[0] > thr['a'] for p in preds], [x[0] for x in g]) == 1.0
    with pytest.raises(MmsegExtError, match='already exists'):
        tune_thresholds(probs, str(tmp_path / 'gt'), out=str(out), progress=False)


@pytest.mark.parametrize('search', [(0.999, 1.0), (0.0, 0.001), (0.3, 0.3), (0.61, 0.62)])
def test_written_thresholds_stay_in_the_range_searched(tmp_path, search):
    """A range narrower than a uint8 level still gets thresholds inside it, and each one
    selects the level the search chose (0.999 is level 255, whose midpoint 0.998 is
    below the range)."""
    from mmseg_ext.inference.probmaps import threshold_level
    images, gts = constructed_example()
    probs = write_prob_folder(tmp_path / 'p', images, CLASSES)
    (tmp_path / 'gt' / 'v').mkdir(parents=True)
    for key, gt in gts.items():
        np.save(tmp_path / 'gt' / f'{key}.npy', gt.astype(np.uint8))
    out = tmp_path / 'thr.json'
    tune_thresholds(probs, str(tmp_path / 'gt'), out=str(out), search=search, progress=False)
    written = json.loads(out.read_text())
    assert written.pop('__kind__') == 'thresholds'
    for c, t in written.items():
        assert search[0] <= t <= search[1], (c, t)
        assert threshold_level(search[0]) <= threshold_level(t) <= threshold_level(search[1])


def test_polygon_json_ground_truth(tmp_path):
    ann = {'annotations': [
        {'id': '1', 'type': 'poly_seg', 'attributes': {}, 'label': 'a',
         'points': [[1, 1], [4, 1], [4, 3], [1, 3]]},
        {'id': '2', 'type': 'poly_seg', 'attributes': {}, 'label': 'b',
         'points': [[3, 2], [5, 2], [5, 4], [3, 4]]}],
        'metadata': {'height': 6, 'width': 7}}
    root = tmp_path / 'train'
    (root / 'outputs_json' / 'ID001').mkdir(parents=True)
    (root / 'outputs_json' / 'ID001' / 'img_R.json').write_text(json.dumps(ann))
    gt = read_masks(str(root / 'outputs_json' / 'ID001' / 'img_R.json'), CLASSES, (6, 7))
    assert gt[0].sum() == 12 and gt[0, 1:4, 1:5].all()      # 4 x 3 pixels, edges included
    assert gt[1, 2:5, 3:6].all() and gt[1].sum() == 9
    assert (gt[0] & gt[1]).sum() == 4                         # classes overlap
    p = gt.astype(np.float32) * 0.9
    probs = write_prob_folder(tmp_path / 'p', {'ID001/img_R.png': (p, (6, 7))}, CLASSES)
    r = tune_thresholds(probs, str(root), progress=False)
    assert r.dice_default == {'a': pytest.approx(1.0), 'b': pytest.approx(1.0)}
    bad = dict(ann, annotations=[dict(ann['annotations'][0], label='Femur')])
    (root / 'outputs_json' / 'ID001' / 'img_R.json').write_text(json.dumps(bad))
    with pytest.raises(MmsegExtError, match="img_R.json: .*'Femur'"):
        tune_thresholds(probs, str(root), progress=False)


def test_cli_missing_ground_truth(tmp_path):
    images, _ = constructed_example()
    probs = write_prob_folder(tmp_path / 'p', images, CLASSES)
    (tmp_path / 'gt').mkdir()
    np.save(tmp_path / 'gt' / 'other.npy', np.zeros((2, 10, 12), np.uint8))
    proc = run_tool('tools/tune_thresholds.py', probs, '--gt', str(tmp_path / 'gt'),
                    '--out', str(tmp_path / 't.json'))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        f'error: {tmp_path}/gt: no ground truth for image v/0')
    assert not (tmp_path / 't.json').exists()


def _sweep(values):
    """A one-class sweep of one image whose Dice per level is given ({level: Dice},
    0.8 elsewhere)."""
    from mmseg_ext.postprocessing.thresholds import LEVELS
    s = DiceSweep(('a',))
    s.dice_sum[0] = 0.8
    for level, v in values.items():
        s.dice_sum[0, level] = v
    s.images[0] = 1
    assert s.dice_sum.shape == (1, LEVELS + 1)
    return s


def test_merged_sweep_holds_every_fold():
    sweeps = [_sweep({60: 0.9}), _sweep({60: 0.9}), _sweep({60: 0.7, 128: 0.85})]
    merged = DiceSweep.merged(sweeps)
    assert merged.images[0] == 3 and merged.dice_sum[0, 60] == pytest.approx(2.5)
    assert merged.best_levels(13, 242, 128)[0] == 60           # 2.5 against 2.45


def test_calibration_moves_a_models_threshold_to_one_half():
    """Hand-worked: t = 0.2 has odds 1/4, so p = 0.2 -> 0.5, p = 0.5 -> 0.8 (odds 1 / (1/4)
    = 4), p = 0.05 -> 0.1739... (odds (1/19) * 4 = 4/19); 0 and 1 stay; order kept."""
    from mmseg_ext.postprocessing.thresholds import calibrate
    p = np.array([0.0, 0.05, 0.2, 0.5, 1.0], np.float32)
    out = calibrate(p, 0.2)
    np.testing.assert_allclose(out, [0.0, 4 / 23, 0.5, 0.8, 1.0], atol=1e-6)
    assert out.dtype == np.float32
    np.testing.assert_allclose(calibrate(p, 0.5), p, atol=1e-7)   # 0.5 changes nothing
    assert calibrate(np.array([0.7]), 0.7)[0] == pytest.approx(0.5)
    with pytest.raises(ValueError):
        calibrate(p, 0.0)


def test_a_fold_without_the_class_keeps_one_half_for_it():
    """cv's per-fold thresholds: images that lack a class say how a model
    over-predicts, not where it finds the class; such a fold keeps 0.5 for it."""
    from mmseg_ext.inference.probmaps import searched_threshold
    from mmseg_ext.workflows.cross_validation.tuning import SEARCH, _best_thresholds
    sweep = _sweep({200: 0.95})                      # best at level 200 on these images
    assert _best_thresholds(sweep, np.array([0])) == {'a': 0.5}
    assert _best_thresholds(sweep, np.array([2])) == {'a': searched_threshold(200, *SEARCH)}
