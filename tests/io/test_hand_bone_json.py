"""One home for the hand-bone polygon JSON: writer -> reader round trip, and the same
polygons giving the same masks in training, threshold tuning, overlays and pseudo-labels."""
import glob
import json
import os.path as osp

import numpy as np
import pytest

from mmseg_ext.io.hand_bone_json import (
    HAND_BONE_JSON_KEYS,
    hand_bone_document,
    parse_hand_bone_json,
    read_masks,
    write_hand_bone_json,
)
from mmseg_ext.utils.errors import DataFileError, MmsegExtError

CLASSES = ('finger-1', 'finger-2', 'Radius')

#: Hand-worked: a 3x2 rectangle (x 1..3, y 2..3) and a triangle, both with their edges.
RECT = [[1, 2], [3, 2], [3, 3], [1, 3]]
TRI = [[0, 0], [2, 0], [0, 2]]


def expected_masks():
    m = np.zeros((3, 5, 6), np.uint8)
    m[0, 2:4, 1:4] = 1                      # rectangle: rows 2-3, columns 1-3
    m[2, 0, 0:3] = 1                        # triangle rows: y=0 -> x 0..2
    m[2, 1, 0:2] = 1                        #                y=1 -> x 0..1
    m[2, 2, 0] = 1                          #                y=2 -> x 0
    return m


def write_sample(path):
    doc = hand_bone_document([('finger-1', RECT, 'a1'), ('Radius', TRI, 'a2')],
                             'img_R.png', '/ID001', (5, 6), 'f1', 'test')
    write_hand_bone_json(str(path), doc)
    return doc


def test_document_has_every_key_and_round_trips(tmp_path):
    doc = write_sample(tmp_path / 'ID001' / 'img_R.json')
    with open(tmp_path / 'ID001' / 'img_R.json') as f:
        data = json.load(f)
    assert data == doc and tuple(data) == HAND_BONE_JSON_KEYS
    assert data['metadata'] == {'height': 5, 'width': 6}
    polys = parse_hand_bone_json(str(tmp_path / 'ID001' / 'img_R.json'), CLASSES)
    assert polys.labels.tolist() == [0, 2] and polys.ids == ['a1', 'a2']
    assert [p.tolist() for p in polys.points] == [RECT, TRI]
    assert (polys.height, polys.width, polys.num_classes) == (5, 6, 3)


def test_read_masks_matches_the_hand_worked_masks(tmp_path):
    write_sample(tmp_path / 'a.json')
    masks = read_masks(str(tmp_path / 'a.json'), CLASSES, (5, 6))
    assert masks.dtype == np.uint8 and masks.shape == (3, 5, 6)
    assert np.array_equal(masks, expected_masks())
    with pytest.raises(DataFileError, match=r'a\.json: metadata size 5x6 .* 7x6'):
        read_masks(str(tmp_path / 'a.json'), CLASSES, (7, 6))


def test_training_tuning_and_overlay_see_the_same_masks(tmp_path):
    """The training transforms, the threshold tuner's ground truth and the overlay's
    ground truth all give the hand-worked masks of one file."""
    from mmseg_ext import register_all_modules
    from mmseg_ext.io.ground_truth import GroundTruth
    register_all_modules()
    from mmseg_ext.datasets.transforms.hand_bone_loading import (
        LoadHandBoneAnnotations,
        RasterizePolygons,
    )
    root = tmp_path / 'train'
    write_sample(root / 'outputs_json' / 'ID001' / 'img_R.json')
    results = dict(seg_map_path=str(root / 'outputs_json' / 'ID001' / 'img_R.json'),
                   img_shape=(5, 6), ori_shape=(5, 6), classes=CLASSES,
                   reduce_zero_label=False, seg_fields=[])
    results = LoadHandBoneAnnotations(classes=CLASSES)(results)
    results = RasterizePolygons()(results)
    trained = results['gt_seg_map'].transpose(2, 0, 1)
    tuned = GroundTruth(str(root), CLASSES).load('ID001/img_R', (5, 6))
    assert np.array_equal(trained, expected_masks())
    assert np.array_equal(tuned, expected_masks().astype(bool))


def test_pseudo_labels_and_synthetic_data_write_the_format(tmp_path):
    """Both writers produce files the reader accepts, with every key; pseudo-label
    polygons of a mask give that mask back."""
    from mmseg_ext.datasets.synthetic.hand_bone import make_handbone_dataset
    from mmseg_ext.workflows.pseudo_label import handbone_json
    make_handbone_dataset(str(tmp_path / 'hb'), num_patients=1, images_per_patient=1,
                          size=(64, 64), num_test_patients=0)
    (path,) = glob.glob(str(tmp_path / 'hb' / 'train' / 'outputs_json' / '*' / '*.json'))
    with open(path) as f:
        assert tuple(json.load(f)) == HAND_BONE_JSON_KEYS
    masks = np.zeros((3, 12, 10), bool)
    masks[0, 2:6, 3:8] = True
    masks[2, 7:11, 1:4] = True
    doc = handbone_json(masks, CLASSES, 'ID001/img_R.png')
    assert tuple(doc) == HAND_BONE_JSON_KEYS and doc['parent_path'] == '/ID001'
    write_hand_bone_json(str(tmp_path / 'p.json'), doc)
    assert np.array_equal(read_masks(str(tmp_path / 'p.json'), CLASSES, (12, 10)),
                          masks.astype(np.uint8))
    assert osp.getsize(str(tmp_path / 'p.json')) > 0


def test_bad_argument_is_a_domain_error(tmp_path):
    write_sample(tmp_path / 'a.json')
    with pytest.raises(MmsegExtError, match='unknown_labels'):
        parse_hand_bone_json(str(tmp_path / 'a.json'), CLASSES, unknown_labels='drop')
