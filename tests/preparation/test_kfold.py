"""Stratified / grouped k-fold and tools/kfold.py (COCO files, folders, hand-bone roots)."""
import csv
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from conftest import run_tool
from mmengine.registry import init_default_scope

from mmseg_ext.datasets import CocoSemanticDataset, PortStructuresDataset
from mmseg_ext.datasets.splits import stratified_kfold
from mmseg_ext.datasets.synthetic.coco import make_trash_coco
from mmseg_ext.datasets.synthetic.port import make_port_dataset
from mmseg_ext.utils.class_names import TRASH_CLASSES

init_default_scope('mmseg')


def coverage_ok(presence, folds, k):
    for c in range(presence.shape[1]):
        if presence[:, c].sum() >= k:
            if len(set(folds[presence[:, c]])) != k:
                return False
    return True


def test_hand_worked_single_label_case():
    # 3 images of class 0, 3 of class 1, k=3: every fold gets one of each
    presence = np.array([[1, 0]] * 3 + [[0, 1]] * 3, bool)
    folds = stratified_kfold(presence, 3, seed=0)
    for j in range(3):
        assert presence[folds == j].sum(0).tolist() == [1, 1]


@pytest.mark.parametrize('seed', range(12))
def test_every_class_with_k_images_reaches_every_fold(seed):
    rng = np.random.default_rng(100 + seed)
    n, c, k = 40, 7, 5
    rates = np.array([0.02, 0.13, 0.15, 0.3, 0.5, 0.7, 0.9])
    presence = rng.random((n, c)) < rates
    folds = stratified_kfold(presence, k, seed=seed)
    assert coverage_ok(presence, folds, k)
    sizes = np.bincount(folds, minlength=k)
    assert sizes.sum() == n and sizes.max() - sizes.min() <= 3
    # each class spread: per-fold counts within 1 of an even share, bar repairs
    for col in range(c):
        per_fold = np.bincount(folds[presence[:, col]], minlength=k)
        assert per_fold.max() - per_fold.min() <= 2


def test_repair_when_rare_classes_pull_images_together():
    # class 0 is in images 0, 1 only; class 1 in 0, 1, 2: with k=2 plain stratification
    # of class 0 first puts 0 and 1 apart, leaving class 1 fine; make it harder:
    # class 2 (in 0, 1) and class 3 (in 0, 1, 2, 3) -> every fold needs both
    presence = np.zeros((8, 4), bool)
    presence[[0, 1], 0] = True
    presence[[0, 1, 2], 1] = True
    presence[[0, 1], 2] = True
    presence[[0, 1, 2, 3], 3] = True
    for seed in range(10):
        folds = stratified_kfold(presence, 2, seed=seed)
        assert coverage_ok(presence, folds, 2)


def test_deterministic_and_seed_dependent():
    rng = np.random.default_rng(0)
    presence = rng.random((30, 4)) < 0.3
    a = stratified_kfold(presence, 3, seed=7)
    assert (a == stratified_kfold(presence, 3, seed=7)).all()
    assert any((stratified_kfold(presence, 3, seed=s) != a).any() for s in range(8))


def test_groups_are_never_split_and_still_stratified():
    rng = np.random.default_rng(3)
    groups = [f'P{i // 3}' for i in range(36)]          # 12 groups of 3 images
    presence = rng.random((36, 3)) < [0.1, 0.4, 0.8]
    folds = stratified_kfold(presence, 4, seed=0, groups=groups)
    for g in set(groups):
        assert len({folds[i] for i, key in enumerate(groups) if key == g}) == 1
    group_presence = {}
    for i, g in enumerate(groups):
        group_presence[g] = group_presence.get(g, np.zeros(3, bool)) | presence[i]
    for c in range(3):
        if sum(p[c] for p in group_presence.values()) >= 4:
            assert len(set(folds[presence[:, c]])) == 4


def test_bad_fold_counts():
    with pytest.raises(ValueError, match='num_folds: must be >= 2'):
        stratified_kfold(np.zeros((4, 1)), 1)
    with pytest.raises(ValueError, match='larger than the number of groups'):
        stratified_kfold(np.zeros((4, 1)), 3, groups=['a', 'a', 'b', 'b'])


# ------------------------------------------------------------------------- the tool

def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_kfold_coco_writes_fold_files_the_dataset_reads(tmp_path):
    paths = make_trash_coco(str(tmp_path / 'trash'), num_train=10, num_val=0, num_test=0,
                            size=(32, 32), seed=2)
    out = str(tmp_path / 'folds')
    proc = run_tool('tools/kfold.py', 'coco', paths['train'], '--out', out, '-k', '3',
                    '--lists')
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'wrote 13 files' in proc.stdout
    coco = json.load(open(paths['train']))
    all_ids = {img['id'] for img in coco['images']}
    seen_val = set()
    for j in range(3):
        train = json.load(open(osp.join(out, f'train_fold{j}.json')))
        val = json.load(open(osp.join(out, f'val_fold{j}.json')))
        t_ids = {i['id'] for i in train['images']}
        v_ids = {i['id'] for i in val['images']}
        assert t_ids | v_ids == all_ids and not t_ids & v_ids
        assert seen_val.isdisjoint(v_ids)
        seen_val |= v_ids
        for part, ids in ((train, t_ids), (val, v_ids)):
            assert part['categories'] == coco['categories']
            assert {a['image_id'] for a in part['annotations']} <= ids
            expected = [a for a in coco['annotations'] if a['image_id'] in ids]
            assert part['annotations'] == expected              # file order kept
        listed = open(osp.join(out, f'val_fold{j}.txt')).read().split()
        assert listed == [i['file_name'] for i in val['images']]
    assert seen_val == all_ids
    rows = read_csv(osp.join(out, 'folds.csv'))
    assert [r['name'] for r in rows] == [i['file_name'] for i in coco['images']]

    # the dataset reads a fold: ann_file, or the full file + split_file list
    root = str(tmp_path / 'trash')
    a = CocoSemanticDataset(ann_file=osp.join(out, 'val_fold1.json'), data_root=root,
                            metainfo=dict(classes=TRASH_CLASSES))
    b = CocoSemanticDataset(ann_file='train.json', split_file=osp.join(out, 'val_fold1.txt'),
                            data_root=root, metainfo=dict(classes=TRASH_CLASSES))
    assert len(a) == len(b) == len(json.load(open(osp.join(out, 'val_fold1.json')))['images'])
    for i in range(len(a)):
        anns_a, anns_b = (d.get_data_info(i)['coco_anns'] for d in (a, b))
        assert [(x['id'], x['label']) for x in anns_a] == [(x['id'], x['label']) for x in anns_b]
        assert all(np.array_equal(x['spans'], y['spans']) for x, y in zip(anns_a, anns_b))

    # refuses to overwrite, names the file, leaves it untouched; --force rewrites same
    before = open(osp.join(out, 'train_fold0.json')).read()
    proc = run_tool('tools/kfold.py', 'coco', paths['train'], '--out', out, '-k', '3',
                    '--seed', '5')
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith('error: ') and 'exists' in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert open(osp.join(out, 'train_fold0.json')).read() == before
    proc = run_tool('tools/kfold.py', 'coco', paths['train'], '--out', out, '-k', '3',
                    '--force')
    assert proc.returncode == 0 and open(osp.join(out, 'train_fold0.json')).read() == before


def test_kfold_folder_with_labels_and_group_regex(tmp_path):
    root = str(tmp_path / 'port')
    make_port_dataset(root, num_labeled=9, num_unlabeled=0, num_test=0, size=(24, 40))
    stems = []
    for i in range(9):                                   # 3 sites of 3 images each
        stem = f'site{i // 3}_{i:04d}'
        for sub, ext in (('labeled_images', '.jpg'), ('labels', '.png')):
            os.rename(osp.join(root, 'train', sub, f'{i:04d}{ext}'),
                      osp.join(root, 'train', sub, stem + ext))
        stems.append(stem)
    out = str(tmp_path / 'folds')
    proc = run_tool('tools/kfold.py', 'folder', osp.join(root, 'train/labeled_images'),
                    '--labels', osp.join(root, 'train/labels'), '--out', out, '-k', '3',
                    '--group-regex', r'^(site\d)_')
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'class 0' in proc.stdout and 'class 255' not in proc.stdout  # ignore: no class
    vals = [open(osp.join(out, f'val_fold{j}.txt')).read().split() for j in range(3)]
    assert sorted(sum(vals, [])) == stems
    for val in vals:                                     # one whole site per fold
        assert len({s.split('_')[0] for s in val}) == 1 and len(val) == 3
    ds = PortStructuresDataset(data_root=root, ann_file=osp.join(out, 'train_fold0.txt'))
    assert len(ds) == 6


@pytest.mark.parametrize('bad, words', [
    (np.zeros((4, 4), np.uint8), 'label map is 4x4 (HxW) but its image'),   # another size
    (np.full((24, 40), 300, np.uint16), 'holds the label value 300'),      # 16-bit past 255
])
def test_kfold_folder_checks_labels_as_training_does(tmp_path, bad, words):
    """A label of another size than its image, or a 16-bit value past 255, is refused
    naming the file (it was counted: "class 300"), as the training loader refuses it."""
    root = str(tmp_path / 'port')
    make_port_dataset(root, num_labeled=6, num_unlabeled=0, num_test=0, size=(24, 40))
    label = osp.join(root, 'train', 'labels', '0002.png')
    assert cv2.imwrite(label, bad)
    out = tmp_path / 'folds'
    proc = run_tool('tools/kfold.py', 'folder', osp.join(root, 'train/labeled_images'),
                    '--labels', osp.join(root, 'train/labels'), '--out', str(out), '-k', '2',
                    '--no-progress')
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert label in lines[0] and words in lines[0], lines[0]
    assert not out.exists()


@pytest.mark.parametrize('mode, words', [
    ('LA', 'mode LA: gray + alpha, 2 channels'),
    ('RGBA', 'mode RGBA: colour + alpha, 4 channels'),
])
def test_kfold_folder_names_the_labels_own_channels(tmp_path, mode, words):
    """Round U, U-12: a gray + alpha label PNG was reported as "shape (16, 16, 4)", the
    4 channels OpenCV converts it to; the message names the file's own mode."""
    from PIL import Image
    root = str(tmp_path / 'port')
    make_port_dataset(root, num_labeled=4, num_unlabeled=0, num_test=0, size=(24, 40))
    label = osp.join(root, 'train', 'labels', '0001.png')
    Image.new(mode, (40, 24)).save(label)
    proc = run_tool('tools/kfold.py', 'folder', osp.join(root, 'train/labeled_images'),
                    '--labels', osp.join(root, 'train/labels'), '--out',
                    str(tmp_path / 'folds'), '-k', '2', '--no-progress')
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f'error: {label}: not a single-channel label map ({words})']


def test_kfold_group_regex_too_few_groups_is_one_line(tmp_path):
    root = str(tmp_path / 'port')
    make_port_dataset(root, num_labeled=4, num_unlabeled=0, num_test=0, size=(24, 40))
    proc = run_tool('tools/kfold.py', 'folder', osp.join(root, 'train/labeled_images'),
                    '--out', str(tmp_path / 'f'), '-k', '3', '--group-regex', r'^\d\d')
    assert proc.returncode == 1
    assert 'larger than the number of groups (1)' in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_kfold_handbone_keeps_patients_together(tmp_path):
    root = tmp_path / 'hand'
    names = []
    for p in range(6):
        for side in ('L', 'R'):
            d = root / 'DCM' / f'ID{p:03d}'
            d.mkdir(parents=True, exist_ok=True)
            (d / f'image{p}{side}_{side}.png').write_bytes(b'')
            names.append(f'ID{p:03d}/image{p}{side}_{side}')
    out = str(tmp_path / 'folds')
    proc = run_tool('tools/kfold.py', 'handbone', str(root), '--out', out, '-k', '3')
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = read_csv(osp.join(out, 'folds.csv'))
    assert sorted(r['name'] for r in rows) == sorted(names)
    fold_of_patient = {}
    for r in rows:
        assert r['group'] == r['name'].split('/')[0]
        assert fold_of_patient.setdefault(r['group'], r['fold']) == r['fold']
    assert sorted(os.listdir(out)) == sorted(
        [f'{s}_fold{j}.txt' for s in ('train', 'val') for j in range(3)] + ['folds.csv',
                                                                         '.mmseg_ext_manifest.json'])


def test_group_keys_from_a_regex_are_never_empty():
    """A name the pattern does not match, or matches with an empty key (an optional
    group that took no part), is named; before, the empty keys made one silent group."""
    from mmseg_ext.preparation.kfold import groups_from_regex
    from mmseg_ext.utils.errors import DataError
    assert groups_from_regex(['p1_a', 'p12_b', 'p1_c'], r'^(p\d+)_') == ['p1', 'p12', 'p1']
    assert groups_from_regex(['ab12', 'cd3'], r'\d+') == ['12', '3']  # the whole match
    with pytest.raises(DataError, match=r"^x_z: the group pattern .* empty group key"):
        groups_from_regex(['p1_a', 'x_z'], r'^(p\d+)?')
    with pytest.raises(DataError, match=r"^q: does not match the group pattern"):
        groups_from_regex(['p1_a', 'q'], r'^(p\d+)_')
