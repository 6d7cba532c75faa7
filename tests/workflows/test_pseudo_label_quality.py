"""Pseudo-label quality against held-back label maps: a hand-worked 2x4 example, and
label maps that do not fit the probabilities refused by name."""
import cv2
import numpy as np
import pytest
from conftest import run_tool
from probs_helpers import write_prob_folder

from mmseg_ext.utils.errors import DataError
from mmseg_ext.workflows.pseudo_label import pseudo_label_quality

#: The foreground probability of each pixel of the 2x4 image (background = 1 - it).
FG = np.array([[0.9, 0.9, 0.4, 0.1],
               [0.6, 0.1, 0.1, 0.1]], np.float32)
#: Its true labels (255: not labelled).
TRUTH = np.array([[1, 0, 0, 255],
                  [1, 0, 1, 0]], np.uint8)


def _world(tmp_path, truth=TRUTH):
    probs = np.stack([1 - FG, FG])
    folder = write_prob_folder(tmp_path / 'probs', {'a.png': (probs, (2, 4))},
                               ('background', 'object'), task='multi-class',
                               dtype='float16')
    (tmp_path / 'gt').mkdir()
    assert cv2.imwrite(str(tmp_path / 'gt' / 'a.png'), truth)
    return folder, str(tmp_path / 'gt')


def test_quality_by_hand(tmp_path):
    folder, gt = _world(tmp_path)
    rows = pseudo_label_quality(folder, gt, [0.95, 0.5, 0.7], progress=False)
    assert [r.pixel_conf for r in rows] == [0.5, 0.7, 0.95]
    # 0.5 keeps the 7 labelled pixels; 5 are right; IoU background 3/5, object 2/4
    assert rows[0].coverage == 1.0
    assert rows[0].accuracy == pytest.approx(5 / 7)
    assert rows[0].miou == pytest.approx((3 / 5 + 2 / 4) / 2)
    # 0.7 drops the two pixels whose winner has 0.6; 3 of 5 right; IoU 2/4 and 1/3
    assert rows[1].coverage == pytest.approx(5 / 7)
    assert rows[1].accuracy == pytest.approx(3 / 5)
    assert rows[1].miou == pytest.approx((2 / 4 + 1 / 3) / 2)
    # 0.95 keeps nothing: no accuracy and no mIoU to speak of, never 0
    assert (rows[2].coverage, rows[2].accuracy, rows[2].miou) == (0.0, None, None)


@pytest.mark.parametrize('truth, words', [
    (np.zeros((3, 4), np.uint8), '2x4 image'),              # another size: not stretched
    (np.zeros((2, 5), np.uint8), '2x4 image'),
    (np.full((2, 4), 7, np.uint8), 'label value 7'),        # not a class, not ignore
])
def test_label_maps_that_do_not_fit_are_refused(tmp_path, truth, words):
    folder, gt = _world(tmp_path, truth)
    with pytest.raises(DataError, match=words):
        pseudo_label_quality(folder, gt, [0.5], progress=False)


def test_missing_label_map_is_named(tmp_path):
    folder, gt = _world(tmp_path)
    (tmp_path / 'gt' / 'a.png').rename(tmp_path / 'gt' / 'b.png')
    with pytest.raises(DataError, match='no true label map for image a'):
        pseudo_label_quality(folder, gt, [0.5], progress=False)


def test_cli_prints_na_where_nothing_is_kept(tmp_path):
    folder, gt = _world(tmp_path)
    proc = run_tool('tools/analysis/pseudo_label_quality.py', folder, '--gt', gt,
                    '--pixel-conf', '0.5', '0.95', '--no-progress')
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert '| 0.5 | 100.0% | 71.4% | 55.00 |' in lines
    assert '| 0.95 | 0.0% | n/a | n/a |' in lines
    bad = _world(tmp_path / 'bad', np.full((2, 4), 9, np.uint8))
    proc = run_tool('tools/analysis/pseudo_label_quality.py', bad[0], '--gt', bad[1],
                    '--no-progress')
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith('error:')]
    assert len(errors) == 1 and 'a.png' in errors[0] and 'label value 9' in errors[0]
