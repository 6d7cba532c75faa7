"""tools/cv.py's decisions on out-of-fold evidence: TTA per class, collapsed folds.

The decision functions are checked on constructed per-fold Dice; the TTA pipeline of
predictions on constructed views (a fake predictor whose flipped view is harmful for a
class fixed on one side of the image and helpful for another); the collapsed-fold rule
once end to end through ``cross_validate`` with fold models that are fakes (one fold's
model can never predict a class that fills every validation image).
"""
import json
import os.path as osp
import sys

import numpy as np
import pytest
import torch

from mmseg_ext.io.probs import ProbFolder
from mmseg_ext.postprocessing.oof_decisions import (
    MIN_GAIN,
    FoldDice,
    choose_tta,
    class_fold_weights,
    collapsed_folds,
    collapsed_val_classes,
    decide,
    decision_lines,
)
from mmseg_ext.postprocessing.tta_choice import (
    ViewPlan,
    candidate_views,
    compose_folder,
    predict_candidates,
    predict_chosen,
    score_candidates,
)


def fold_dice(classes, per_fold):
    """A FoldDice whose fold k, class c has one image of Dice ``per_fold[k][c]``
    (ground truth containing the class)."""
    d = FoldDice(classes, len(per_fold))
    for k, row in enumerate(per_fold):
        for c, v in enumerate(row):
            d.add(k, c, v, True)
    return d


# ------------------------------------------------------------------ collapsed folds
def test_a_fold_that_never_predicts_a_present_class_is_collapsed_and_dropped():
    classes = ['right_lung', 'left_clavicle', 'heart']
    plain = fold_dice(classes, [[0.95, 0.80, 0.30],
                                [0.96, 0.00, 0.04],   # heart: others' median 0.3 < 0.5
                                [0.94, 0.82, 0.35],
                                [0.95, 0.79, 0.31]])
    assert collapsed_folds(plain) == {'left_clavicle': [1]}
    w = class_fold_weights(classes, 4, {'left_clavicle': [1]})
    assert w[1].tolist() == [1 / 3, 0.0, 1 / 3, 1 / 3]
    assert w[0].tolist() == [0.25] * 4
    lines = decision_lines(decide(plain))
    assert lines == ['collapsed: left_clavicle in fold 1 (Dice 0.0 on the images '
                     'containing it); dropped from its test-time vote, folds 0, 2, 3 '
                     'averaged']


def test_a_fold_whose_images_lack_the_class_is_not_collapsed():
    plain = FoldDice(['a'], 3)
    plain.add(0, 0, 1.0, False)       # fold 0: no image contains a (Dice 1: empty/empty)
    plain.add(1, 0, 0.9, True)
    plain.add(2, 0, 0.9, True)
    assert collapsed_folds(plain) == {}
    plain.add(0, 0, 0.01, True)       # now it does, and its model missed it
    assert collapsed_folds(plain) == {'a': [0]}


def test_train_warning_names_classes_with_validation_dice_near_zero():
    metrics = {'mDice': 0.6, 'Dice.heart': 0.93, 'Dice.left_clavicle': 0.0,
               'Dice.right_clavicle': 0.049, 'mDice_dataset': 0.7}
    assert collapsed_val_classes(metrics) == ['left_clavicle', 'right_clavicle']
    assert collapsed_val_classes({'val/Dice.a': 0.01}) == ['a']


def test_the_end_of_training_warning_is_one_line_naming_the_dead_classes():
    from mmengine.logging import MessageHub

    from mmseg_ext.postprocessing.oof_decisions import collapsed_class_warning
    hub = MessageHub('h29_collapsed_warning')
    hub.update_scalar('val/Dice.heart', 0.93)
    hub.update_scalar('val/Dice.left_clavicle', 0.0)
    hub.update_scalar('train/loss', 0.01)
    line = collapsed_class_warning(hub)
    assert line.startswith('the last validation gives class left_clavicle a Dice below')
    assert 'heart' not in line and '\n' not in line
    assert collapsed_class_warning(MessageHub('h29_no_validation')) is None


# ------------------------------------------------------------------ the noise rule
def test_the_simpler_candidate_is_kept_unless_the_gain_exceeds_the_noise():
    classes = ['small_gain', 'steady_gain', 'noisy_gain']
    none = fold_dice(classes, [[0.800, 0.800, 0.80], [0.800, 0.800, 0.80],
                               [0.800, 0.800, 0.80]])
    flips = fold_dice(classes, [[0.801, 0.820, 0.95], [0.801, 0.821, 0.65],
                                [0.801, 0.819, 0.86]])
    choice = choose_tta({'none': none, 'flips': flips})
    assert choice['small_gain'].chosen == 'none'          # +0.001 < MIN_GAIN
    assert choice['small_gain'].best == 'flips'
    assert choice['steady_gain'].chosen == 'flips'        # +0.02, fold spread 0.001
    assert choice['steady_gain'].gain == pytest.approx(0.02)
    # +0.02 on average, but the folds disagree (+0.15, -0.15, +0.06): SE ~0.09
    assert choice['noisy_gain'].chosen == 'none'
    assert choice['noisy_gain'].noise > 0.05 and MIN_GAIN == 0.002


def test_identical_candidates_are_one_and_unnatural_flips_leave_two():
    assert list(candidate_views((0.9, 1.0, 1.1), True)) == ['none', 'flips', 'scales',
                                                            'both']
    assert list(candidate_views((0.9, 1.0, 1.1), False)) == ['none', 'scales']
    assert list(candidate_views((1.0,), True)) == ['none', 'flips']
    assert candidate_views((1.1,), False)['scales'] == ((1.0, False), (1.1, False))


# ------------------------------------------------------- harmful flip, end to end
H = W = 16
CLASSES = ('heart', 'lung')
#: the heart sits on the left of every image; the lung is a centred block
HEART = np.zeros((H, W), bool)
HEART[4:12, 1:6] = True
LUNG = np.zeros((H, W), bool)
LUNG[3:13, 5:11] = True
#: a false positive of the plain view, on the right; the flipped view does not make it
FALSE = np.zeros((H, W), bool)
FALSE[3:13, 12:15] = True


class FakeViewPredictor:
    """Views as a model trained without flips would give them: the plain view finds the
    heart and the lung but also a false lung blob; the flipped view (un-flipped) puts
    the heart on the wrong side (it never saw a mirrored chest) and has no false blob.
    Scaled views equal the plain one. Records the views it was asked for."""
    classes = CLASSES
    task = 'multi-label'

    def __init__(self, order):
        self.order = list(order)
        self.calls = []

    def predict_views(self, img_path, out_size='native'):
        self.calls.append(img_path)
        out, metas = [], []
        for scale, flipped in self.order:
            p = np.full((2, H, W), 0.05, np.float32)
            heart = HEART[:, ::-1] if flipped else HEART
            p[0][heart] = 0.9
            p[1][LUNG] = 0.9
            if not flipped:
                p[1][FALSE] = 0.7
            out.append(torch.from_numpy(p))
            metas.append(dict(flip=flipped, scale=scale))
        return out, metas, (H, W)


class FakeGT:
    def load(self, key, shape, image_sha256=None):
        return np.stack([HEART, LUNG])


def test_flip_is_left_out_where_it_harms_and_kept_where_it_helps(tmp_path):
    """Three folds of 2 images each: the OOF choice is none for the heart (flipped
    views move it), flips for the lung (they remove its false blob); the composed OOF
    folder and the test predictions take each class from exactly its chosen views."""
    import cv2
    plan = ViewPlan(candidate_views((0.9, 1.0, 1.1), True))
    img_dir = tmp_path / 'img'
    img_dir.mkdir()
    images = [f'im{i}.png' for i in range(6)]
    for name in images:
        cv2.imwrite(str(img_dir / name), np.zeros((H, W), np.uint8))
    fold_of = {f'im{i}': i // 2 for i in range(6)}
    fold_dirs = []
    for k in range(3):
        out = {n: str(tmp_path / f'fold{k}' / n) for n in plan.candidates}
        predictor = FakeViewPredictor([(s, f) for s in (0.9, 1.0, 1.1)
                                       for f in (False, True)])
        predict_candidates(predictor, plan, str(img_dir), images[2 * k:2 * k + 2], out,
                           dict(fold=k), progress=False)
        assert len(predictor.calls) == 2          # each image through the model once
        fold_dirs.append(out)
    scores = score_candidates({n: [d[n] for d in fold_dirs] for n in plan.candidates},
                              FakeGT(), fold_of, 3, progress=False)
    choice = choose_tta(scores)
    assert choice['heart'].chosen == 'none'
    assert choice['heart'].dice['flips'] < 0.01 < 0.99 < choice['heart'].dice['none']
    assert choice['lung'].chosen == 'flips'      # both ties with it: the simpler one
    assert choice['lung'].dice['flips'] == pytest.approx(1.0)
    assert choice['lung'].dice['none'] < 0.9
    chosen = {c: ch.chosen for c, ch in choice.items()}

    # the composed OOF folder: the heart channel of none, the lung channel of flips
    compose_folder(fold_dirs[0], chosen, str(tmp_path / 'composed'), dict(tta=True))
    composed = ProbFolder(str(tmp_path / 'composed'))
    # every candidate and the composed folder record the image they are of (AK-7: the
    # candidates recorded none, so no identity check ever ran on cv --tta's folders)
    from mmseg_ext.io.paths import file_sha256
    for folder in [ProbFolder(d) for d in fold_dirs[0].values()] + [composed]:
        for key in folder.keys():
            assert folder.read(key)[1].img_sha256 == file_sha256(str(img_dir / f'{key}.png'))
    none, flips = ProbFolder(fold_dirs[0]['none']), ProbFolder(fold_dirs[0]['flips'])
    for key in composed.keys():
        got = composed.read(key)[0]
        np.testing.assert_array_equal(got[0], none.read(key)[0][0])
        np.testing.assert_array_equal(got[1], flips.read(key)[0][1])

    # the test predictions: only the views of none and flips are asked for, and each
    # class is the mean of exactly its candidate's views
    assert plan.views_of(['none', 'flips']) == ((1.0,), True)
    predictor = FakeViewPredictor([(1.0, False), (1.0, True)])
    predict_chosen(predictor, plan, chosen, str(img_dir), images[:1],
                   str(tmp_path / 'test'), dict(test=True), progress=False)
    got = ProbFolder(str(tmp_path / 'test')).read('im0')[0].astype(np.float32) / 255
    plain, flipped = (v.numpy() for v in predictor.predict_views('x')[0])
    np.testing.assert_allclose(got[0], plain[0], atol=0.5 / 255)
    np.testing.assert_allclose(got[1], (plain[1] + flipped[1]) / 2, atol=0.5 / 255)


# -------------------------------------------- a collapsed fold through cross_validate
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from robustness.cv_fakes import (  # noqa: E402
    FAKE_TRAIN,
    HANDBONE,
    handbone_cfg_options,
    model_checkpoint,
)

DEAD_CLASS = 'finger-1'


def _fill_class(json_dir, name, size):
    """Make class ``name`` cover the whole image in every annotation file."""
    import glob
    h, w = size
    for path in glob.glob(f'{json_dir}/**/*.json', recursive=True):
        data = json.load(open(path))
        for ann in data['annotations']:
            if ann['label'] == name:
                ann['points'] = [[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]]
        json.dump(data, open(path, 'w'))


def _biased(ckpt, out, c, bias):
    state = torch.load(ckpt, map_location='cpu')
    state['state_dict']['decode_head.conv_seg.bias'][c] = bias
    torch.save(state, out)
    return str(out)


def test_a_collapsed_fold_is_named_and_left_out_of_its_class_vote(tmp_path):
    from mmseg_ext.preparation.synthetic import write_synthetic_handbone
    from mmseg_ext.workflows.cross_validation import cross_validate
    data = str(tmp_path / 'data')
    write_synthetic_handbone(data, num_patients=4, size=(64, 64), num_test_patients=1,
                             progress=False)
    _fill_class(f'{data}/train/outputs_json', DEAD_CLASS, (64, 64))
    base = model_checkpoint(HANDBONE, tmp_path / 'base.pth')
    alive = _biased(base, tmp_path / 'alive.pth', 0, 1000.0)   # finger-1 everywhere
    dead = _biased(base, tmp_path / 'dead.pth', 0, -1000.0)    # finger-1 never

    def fold_command(config, work_dir, ranks, resume):
        ckpt = dead if osp.basename(work_dir) == 'fold1' else alive
        return [sys.executable, '-c', FAKE_TRAIN, ckpt, work_dir]
    work = tmp_path / 'w'
    s = cross_validate(HANDBONE, 2, str(work), ranks_per_fold=1, fold_command=fold_command,
                       cfg_options=handbone_cfg_options(f'{data}/train'), progress=False,
                       tta=True, test_dir=f'{data}/test/DCM', log=lambda m: None)
    table = s.table()
    fold_rows = [line for line in table.splitlines() if line.startswith(('0 ', '1 '))]
    assert fold_rows[1].endswith(f'collapsed: {DEAD_CLASS}')
    assert 'collapsed' not in fold_rows[0]
    assert f'collapsed: {DEAD_CLASS} in fold 1' in table
    summary = json.load(open(work / 'summary.json'))
    assert summary['decisions']['collapsed'] == {DEAD_CLASS: [1]}
    assert summary['folds'][1]['collapsed'] == [DEAD_CLASS]
    assert summary['decisions']['fold_weights'][DEAD_CLASS] == [1.0, 0.0]
    assert summary['decisions']['fold_dice_present'][DEAD_CLASS][1] < 0.05
    tta = summary['decisions']['tta']
    assert set(tta) == set(summary['oof_before'])
    assert all(t['chosen'] in summary['decisions']['tta_candidates'] for t in tta.values())
    # the OOF probabilities of the collapsed fold stay as they are (all ~0)
    oof = ProbFolder(str(work / 'oof_probs'))
    fold1 = ProbFolder(str(work / 'fold1' / 'val_probs'))
    key = fold1.keys()[0]
    assert oof.read(key)[0][0].max() == 0
    # the test vote of the dead class is fold 0's alone; other classes both folds';
    # each fold's probabilities calibrated first by its own thresholds (odds divided by
    # the threshold's odds, written out here)
    thresholds = summary['fold_thresholds']
    classes = list(summary['oof_before'])

    def calibrated(q, fold, c):
        p, t = q.astype(np.float64) / 255.0, thresholds[fold][classes[c]]
        up, down = p * (1 - t), p * (1 - t) + (1 - p) * t
        return 255.0 * np.divide(up, down, out=np.zeros_like(p), where=down > 0)

    ens = ProbFolder(str(work / 'test' / 'ensemble'))
    f0, f1 = ProbFolder(str(work / 'test' / 'fold0')), ProbFolder(str(work / 'test' / 'fold1'))
    for key in ens.keys():
        e, a, b = (f.read(key)[0] for f in (ens, f0, f1))
        np.testing.assert_allclose(e[0], calibrated(a[0], 0, 0), atol=1.0)
        for c in range(1, len(classes)):
            np.testing.assert_allclose(e[c], (calibrated(a[c], 0, c) +
                                              calibrated(b[c], 1, c)) / 2, atol=1.0)
    index = json.load(open(work / 'test' / 'fold0' / 'index.json'))
    assert index['source']['tta_choice'] == {c: t['chosen'] for c, t in tta.items()}
