"""Pseudo-labels: polygon round trip through the project's loader, confidence filters."""
import glob
import json
import os.path as osp

import cv2
import numpy as np
import pytest
from conftest import run_tool
from probs_helpers import write_prob_folder

from mmseg_ext.io.hand_bone_json import HAND_BONE_JSON_KEYS, parse_hand_bone_json, rasterize_full
from mmseg_ext.utils.class_names import HAND_BONE_CLASSES
from mmseg_ext.utils.errors import MmsegExtError
from mmseg_ext.workflows.pseudo_label import (
    mask_to_polygons,
    multiclass_labels,
    multilabel_confidence,
    pseudo_label_folder,
)


def _iou(a, b):
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else np.logical_and(a, b).sum() / union


def _synthetic_masks(root, size=256):
    """Ground-truth ``(C, H, W)`` masks of one synthetic hand, rasterised by the loader's
    function, and the image's path relative to ``train/DCM``."""
    from mmseg_ext.datasets.synthetic.hand_bone import make_handbone_dataset
    make_handbone_dataset(str(root), num_patients=1, images_per_patient=1,
                          size=(size, size), num_test_patients=0)
    (json_path,) = glob.glob(str(root / 'train' / 'outputs_json' / '*' / '*.json'))
    polys = parse_hand_bone_json(json_path, HAND_BONE_CLASSES)
    gt = rasterize_full(polys.labels, polys.points, (size, size), len(HAND_BONE_CLASSES))
    rel = osp.relpath(json_path, root / 'train' / 'outputs_json')[:-5] + '.png'
    return gt.transpose(2, 0, 1).astype(bool), rel


@pytest.mark.parametrize('epsilon', [0.0, 0.3])
def test_polygon_round_trip_synthetic_bones(tmp_path, epsilon):
    gt, rel = _synthetic_masks(tmp_path / 'hb')
    probs = np.where(gt, 0.97, 0.02).astype(np.float32)
    folder = write_prob_folder(tmp_path / 'probs', {rel: (probs, gt.shape[1:])},
                               HAND_BONE_CLASSES)
    out = tmp_path / 'pseudo'
    s = pseudo_label_folder(folder, str(out), epsilon=epsilon, progress=False)
    assert (s.images, s.accepted) == (1, 1)
    path = out / 'outputs_json' / (rel[:-4] + '.json')
    content = json.loads(path.read_text())
    assert list(content) == list(HAND_BONE_JSON_KEYS)
    assert content['filename'] == osp.basename(rel)
    assert content['metadata'] == {'height': 256, 'width': 256}
    assert all(a['type'] == 'poly_seg' for a in content['annotations'])
    polys = parse_hand_bone_json(str(path), HAND_BONE_CLASSES, image_shape=(256, 256))
    back = rasterize_full(polys.labels, polys.points, (256, 256), len(HAND_BONE_CLASSES))
    for c in range(len(HAND_BONE_CLASSES)):
        assert gt[c].any()
        assert _iou(back[..., c] > 0, gt[c]) >= 0.98, HAND_BONE_CLASSES[c]
    if epsilon == 0.0:  # CHAIN_APPROX_SIMPLE outlines give the masks back exactly
        assert (back.transpose(2, 0, 1).astype(bool) == gt).all()
    assert (out / 'accepted.txt').read_text() == rel + '\n'


def test_mask_to_polygons_holes_specks_and_components():
    mask = np.zeros((12, 12), bool)
    mask[1:7, 1:7] = True
    mask[3:5, 3:5] = False          # a hole: filled in the polygon
    mask[10, 10] = True             # a one-pixel speck
    polys = mask_to_polygons(mask)
    assert len(polys) == 2 and all(len(p) >= 3 for p in polys)
    filled = np.zeros((12, 12), np.uint8)
    cv2.fillPoly(filled, [p.astype(np.int32) for p in polys], 1)
    expected = mask.copy()
    expected[3:5, 3:5] = True
    assert (filled.astype(bool) == expected).all()
    assert len(mask_to_polygons(mask, min_area=2)) == 1


def test_a_tolerance_wider_than_the_component_gives_a_triangle_within_it():
    """approxPolyDP shrinks a thin slanted bar to a line at epsilon 6: the polygon is
    then 3 of its contour points (never its full contour), and every contour point lies
    within the tolerance of the triangle."""
    mask = np.zeros((20, 50), np.uint8)
    cv2.line(mask, (2, 3), (45, 12), 1, thickness=2)
    (contour,), _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    assert len(contour) > 3 and len(cv2.approxPolyDP(contour, 6.0, True)) < 3
    (poly,) = mask_to_polygons(mask.astype(bool), epsilon=6.0)
    assert len(poly) == 3
    outline = {tuple(p) for p in contour.reshape(-1, 2).tolist()}
    assert all(tuple(p) in outline for p in poly.tolist())
    triangle = poly.astype(np.float32).reshape(-1, 1, 2)
    for x, y in outline:
        assert abs(cv2.pointPolygonTest(triangle, (float(x), float(y)), True)) <= 6.0
    # a tolerance past float's practical range is the diagonal's (cv2 refused 1e300)
    for huge in (1e300, 1e20):
        assert len(mask_to_polygons(mask.astype(bool), epsilon=huge)[0]) == 3
    with pytest.raises(MmsegExtError, match='finite'):
        mask_to_polygons(mask.astype(bool), epsilon=float('inf'))
    # a small tolerance still simplifies as approxPolyDP does
    assert len(mask_to_polygons(mask.astype(bool), epsilon=0.5)[0]) >= 3


def test_multilabel_confidence_hand_made():
    # two classes on a 2x3 image
    p = np.array([[[0.95, 0.50, 0.00], [0.10, 0.85, 0.00]],
                  [[0.00, 0.90, 0.30], [0.00, 0.00, 0.00]]], np.float32)
    masks, conf = multilabel_confidence(p, [0.5, 0.5], pixel_conf=0.8)
    assert masks[0].tolist() == [[True, False, False], [False, True, False]]
    assert masks[1].tolist() == [[False, True, False], [False, False, False]]
    # uncertain (0.2 < p < 0.8): (0,1) [0.5] and (0,2) [0.3]; foreground or uncertain:
    # (0,0), (0,1), (0,2), (1,1) -> 2 / 4
    assert conf.uncertain_fraction == pytest.approx(0.5)
    # mean probability over predicted pixels: (0.95 + 0.85 + 0.90) / 3
    assert conf.mean_conf == pytest.approx(0.9)


def test_multiclass_labels_hand_made():
    p = np.array([[[0.7, 0.2], [0.5, 0.1]],
                  [[0.3, 0.8], [0.5, 0.9]]], np.float32)
    labels, conf = multiclass_labels(p, pixel_conf=0.6)
    assert labels.dtype == np.uint8
    assert labels.tolist() == [[0, 1], [255, 1]]
    assert conf.mean_conf == pytest.approx((0.7 + 0.8 + 0.5 + 0.9) / 4)
    assert conf.uncertain_fraction == pytest.approx(0.25)


def test_rejection_overwrite_and_label_png_cli(tmp_path):
    classes = ('bg', 'a')
    sure = np.zeros((2, 4, 4), np.float32)
    sure[0], sure[1, :2] = 1.0, 1.0
    sure[0, :2] = 0.0
    unsure = np.full((2, 4, 4), 0.5, np.float32)
    unsure[:, 0, 0] = 0.55, 0.45  # a softmax output: the classes sum to 1
    folder = write_prob_folder(tmp_path / 'p', {'s.png': (sure, (4, 4)),
                                                'u.png': (unsure, (4, 4))},
                               classes, task='multi-class')
    out = tmp_path / 'labels'
    r = run_tool('tools/pseudo_label.py', folder, '--out-dir', str(out), '--format',
                 'label-png', '--pixel-conf', '0.6', '--min-mean-conf', '0.9',
                 '--no-progress', env={'OMP_NUM_THREADS': '1'})
    assert r.returncode == 0, r.stderr
    assert '2 image(s), 1 accepted, 1 rejected' in r.stdout
    assert (out / 'accepted.txt').read_text() == 's.png\n'
    assert not (out / 'u.png').exists()
    label = cv2.imread(str(out / 's.png'), cv2.IMREAD_UNCHANGED)
    assert label.tolist() == [[1] * 4] * 2 + [[0] * 4] * 2
    report = json.loads((out / 'pseudo_labels.json').read_text())
    assert [i['accepted'] for i in report['images']] == [True, False]
    with pytest.raises(MmsegExtError, match='already exists'):
        pseudo_label_folder(folder, str(out), fmt='label-png', progress=False)
    with pytest.raises(MmsegExtError, match='multi-class'):
        pseudo_label_folder(folder, str(tmp_path / 'x'), fmt='handbone-json',
                            progress=False)


def test_multilabel_rejection_by_uncertain_fraction(tmp_path):
    classes = ('a',)
    clear = np.zeros((1, 6, 6), np.float32)
    clear[0, 1:5, 1:5] = 1.0
    vague = clear * 0.6
    folder = write_prob_folder(tmp_path / 'p', {'c.png': (clear, (6, 6)),
                                                'v.png': (vague, (6, 6))}, classes)
    s = pseudo_label_folder(folder, str(tmp_path / 'o'), pixel_conf=0.9, max_uncertain=0.2,
                            progress=False)
    assert (s.accepted, s.rejected) == (1, 1)
    assert (tmp_path / 'o' / 'outputs_json' / 'c.json').exists()
    assert not (tmp_path / 'o' / 'outputs_json' / 'v.json').exists()


def test_pseudo_labels_load_as_handbone_dataset(tmp_path):
    """The output folder is a data set: HandBoneDataset + LoadHandBoneAnnotations read
    the accepted images back with the predicted masks."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS
    init_default_scope('mmseg')
    gt, rel = _synthetic_masks(tmp_path / 'hb', size=64)
    folder = write_prob_folder(tmp_path / 'p', {rel: (gt.astype(np.float32), (64, 64))},
                               HAND_BONE_CLASSES)
    pseudo_label_folder(folder, str(tmp_path / 'o'), progress=False)
    ds = DATASETS.build(dict(
        type='HandBoneDataset', data_root=str(tmp_path / 'o'), ann_file='accepted.txt',
        data_prefix=dict(img_path=str(tmp_path / 'hb' / 'train' / 'DCM'),
                         seg_map_path='outputs_json'),
        pipeline=[dict(type='LoadImageFromFileChecked'),
                  dict(type='LoadHandBoneAnnotations')]))
    assert len(ds) == 1
    assert (ds[0]['gt_seg_map'].transpose(2, 0, 1).astype(bool) == gt).all()
