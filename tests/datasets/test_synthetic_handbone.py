"""The synthetic hand-bone generator and its CLI: layout, JSON keys, determinism."""
import json
import os
import os.path as osp
import re

import cv2
import numpy as np
from conftest import run_tool

from mmseg_ext.datasets.synthetic import make_handbone_dataset
from mmseg_ext.io.hand_bone_json import HAND_BONE_JSON_KEYS
from mmseg_ext.utils.class_names import HAND_BONE_CLASSES

TRAIN_NAME = re.compile(r'^image\d{13}_[RL]\.(png|json)$')
TEST_NAME = re.compile(r'^image\d{13}\.png$')


def files(root):
    out = []
    for base, _, names in os.walk(root):
        out += [osp.relpath(osp.join(base, n), root) for n in names]
    return sorted(out)


def test_layout_names_and_json(tmp_path):
    info = make_handbone_dataset(str(tmp_path), num_patients=3, images_per_patient=2,
                                 size=(48, 40), num_test_patients=2, seed=0)
    assert (info.train_images, info.test_images, info.annotations) == (6, 4, 6 * 29)
    listed = files(str(tmp_path))
    pngs = [f for f in listed if f.startswith('train/DCM/')]
    jsons = [f for f in listed if f.startswith('train/outputs_json/')]
    tests = [f for f in listed if f.startswith('test/')]
    assert len(pngs) == len(jsons) == 6 and len(tests) == 4 and len(listed) == 16
    assert {p.split('/')[2] for p in pngs} == {'ID001', 'ID002', 'ID003'}
    assert {p.split('/')[2] for p in tests} == {'ID004', 'ID005'}
    assert all(t.startswith('test/DCM/') and TEST_NAME.match(osp.basename(t)) for t in tests)
    for png in pngs:
        assert TRAIN_NAME.match(osp.basename(png))
        twin = png.replace('train/DCM/', 'train/outputs_json/')[:-4] + '.json'
        assert twin in jsons
    sides = sorted(osp.basename(p)[-6:-4] for p in pngs if '/ID001/' in p)
    assert sides == ['_L', '_R']

    png = pngs[0]
    img = cv2.imread(str(tmp_path / png), cv2.IMREAD_UNCHANGED)
    assert img.shape == (48, 40) and img.dtype == np.uint8
    with open(tmp_path / (png.replace('train/DCM/', 'train/outputs_json/')[:-4] + '.json')) as f:
        data = json.load(f)
    assert set(data) == set(HAND_BONE_JSON_KEYS)
    assert data['filename'] == osp.basename(png)
    assert data['metadata'] == {'height': 48, 'width': 40}
    assert [a['label'] for a in data['annotations']] == list(HAND_BONE_CLASSES)
    for a in data['annotations']:
        assert set(a) == {'id', 'type', 'attributes', 'points', 'label'}
        assert a['type'] == 'poly_seg' and isinstance(a['id'], str)
        pts = np.array(a['points'])
        assert pts.ndim == 2 and pts.shape[1] == 2 and len(pts) >= 3
        assert pts.dtype.kind == 'i' and pts.min() >= 0
        assert pts[:, 0].max() <= 39 and pts[:, 1].max() <= 47
    assert len({a['id'] for a in data['annotations']}) == 29


def masks_of(json_path):
    with open(json_path) as f:
        data = json.load(f)
    h, w = data['metadata']['height'], data['metadata']['width']
    out = np.zeros((29, h, w), np.uint8)
    for k, a in enumerate(data['annotations']):
        cv2.fillPoly(out[k], [np.array(a['points'], np.int32)], 1)
    return out


def test_bones_are_bright_overlap_and_follow_the_polygons(tmp_path):
    make_handbone_dataset(str(tmp_path), num_patients=1, images_per_patient=1,
                          size=(160, 128), num_test_patients=0, seed=4)
    png = [f for f in files(str(tmp_path)) if f.endswith('.png')][0]
    img = cv2.imread(str(tmp_path / png), cv2.IMREAD_GRAYSCALE).astype(float)
    masks = masks_of(str(tmp_path / png.replace('DCM', 'outputs_json')[:-4]) + '.json')
    bone = masks.any(0)
    assert (masks.sum(0) >= 2).sum() > 0  # some pixels belong to two bones
    assert img[bone].mean() > img[~bone].mean() + 60
    # classes have distinct mean intensities (a cue a small CNN can learn)
    means = [img[m.astype(bool) & (masks.sum(0) == 1)].mean() for m in masks]
    assert len({round(v / 3) for v in means}) >= 20


def test_deterministic_and_patient_independent_of_count(tmp_path):
    a = make_handbone_dataset(str(tmp_path / 'a'), num_patients=2, size=(40, 40), seed=7)
    b = make_handbone_dataset(str(tmp_path / 'b'), num_patients=3, size=(40, 40), seed=7)
    c = make_handbone_dataset(str(tmp_path / 'c'), num_patients=2, size=(40, 40), seed=8)
    assert a.train_images == 4 and b.train_images == 6
    fa = [f for f in files(a.root) if f.startswith('train/')]
    for rel in fa:
        with open(osp.join(a.root, rel), 'rb') as x, open(osp.join(b.root, rel), 'rb') as y:
            assert x.read() == y.read(), rel
    assert fa != [f for f in files(c.root) if f.startswith('train/')]


def test_cli_refuses_non_empty_and_force_replaces(tmp_path):
    out = tmp_path / 'data'
    args = ['tools/make_synthetic_handbone.py', '--out', str(out), '--patients', '2',
            '--size', '40x32', '--test-patients', '1', '--seed', '1']
    first = run_tool(*args)
    assert first.returncode == 0, first.stderr
    assert 'wrote 4 train images (2 patients, 116 polygons) and 2 test images' in first.stdout
    assert len(files(str(out))) == 4 + 4 + 2 + 1  # + the manifest
    (out / 'keep.txt').write_text('mine')
    refused = run_tool(*args)
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines()[-1].startswith(f'error: {out}: folder is not empty')
    forced = run_tool(*args[:4], '1', *args[5:], '--force')
    assert forced.returncode == 0, forced.stderr
    assert (out / 'keep.txt').read_text() == 'mine'
    assert len([f for f in files(str(out)) if f.startswith('train/DCM/')]) == 2
    assert not [f for f in os.listdir(tmp_path) if f.startswith('.data.tmp')]
    bad = run_tool('tools/make_synthetic_handbone.py', '--out', str(tmp_path / 'x'),
                   '--size', '12x')
    assert bad.returncode == 2 and '--size' in bad.stderr
