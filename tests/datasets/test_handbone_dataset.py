"""HandBoneDataset and the hand-bone JSON loader: rasterisation by hand, folds, splits,
and one clear error per kind of bad input."""
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS, TRANSFORMS

from mmseg_ext.datasets import HandBoneDataset
from mmseg_ext.datasets.synthetic import make_handbone_dataset
from mmseg_ext.utils.class_names import HAND_BONE_CLASSES
from mmseg_ext.utils.errors import DataFileError

init_default_scope('mmseg')

# ---------------------------------------------------------------- helpers -------------


def write_case(root, anns, size=(6, 6), image_size=None, patient='ID001',
               stem='image1_R', raw_json=None):
    """One image + JSON in the competition layout; returns (img_path, json_path)."""
    h, w = image_size or size
    img_dir = osp.join(root, 'DCM', patient)
    ann_dir = osp.join(root, 'outputs_json', patient)
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(ann_dir, exist_ok=True)
    img_path = osp.join(img_dir, stem + '.png')
    cv2.imwrite(img_path, np.full((h, w), 100, np.uint8))
    json_path = osp.join(ann_dir, stem + '.json')
    with open(json_path, 'w') as f:
        if raw_json is not None:
            f.write(raw_json)
        else:
            json.dump({'annotations': anns, 'metadata': {'height': size[0],
                                                         'width': size[1]}}, f)
    return img_path, json_path


def ann(label, points, ann_id='a1'):
    return {'id': ann_id, 'type': 'poly_seg', 'attributes': {}, 'points': points,
            'label': label}


def load(img_path, json_path, **kwargs):
    results = dict(img_path=img_path, seg_map_path=json_path, seg_fields=[])
    results = TRANSFORMS.build(dict(type='LoadImageFromFileChecked'))(results)
    return TRANSFORMS.build(dict(type='LoadHandBoneAnnotations', **kwargs))(results)


# --------------------------------------------------- rasterisation by hand ------------

# Square with corners (1, 1) and (3, 3) on a 6x6 grid: cv2.fillPoly paints the interior
# and the boundary, i.e. rows 1..3 x columns 1..3.
SQUARE = [[1, 1], [3, 1], [3, 3], [1, 3]]
SQUARE_PIXELS = np.array([
    [0, 0, 0, 0, 0, 0],
    [0, 1, 1, 1, 0, 0],
    [0, 1, 1, 1, 0, 0],
    [0, 1, 1, 1, 0, 0],
    [0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0]], np.uint8)
# Right triangle (0, 0), (4, 0), (0, 4): its hypotenuse passes through the integer
# points x + y = 4, so the painted set is {x >= 0, y >= 0, x + y <= 4}.
TRIANGLE = [[0, 0], [4, 0], [0, 4]]
TRIANGLE_PIXELS = np.array([
    [1, 1, 1, 1, 1, 0],
    [1, 1, 1, 1, 0, 0],
    [1, 1, 1, 0, 0, 0],
    [1, 1, 0, 0, 0, 0],
    [1, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0]], np.uint8)


def test_polygons_rasterised_by_hand_with_overlap(tmp_path):
    img, js = write_case(str(tmp_path), [ann('finger-1', SQUARE, 'sq'),
                                         ann('Ulna', TRIANGLE, 'tri')])
    res = load(img, js)
    mask = res['gt_seg_map']
    assert mask.shape == (6, 6, 29) and mask.dtype == np.uint8
    assert res['seg_fields'] == ['gt_seg_map']
    np.testing.assert_array_equal(mask[..., 0], SQUARE_PIXELS)
    np.testing.assert_array_equal(mask[..., 28], TRIANGLE_PIXELS)
    assert mask[..., 1:28].sum() == 0
    # pixels of both bones belong to both channels (multi-label, not a label map)
    both = (mask[..., 0] == 1) & (mask[..., 28] == 1)
    assert both.sum() == 6  # (1,1) (2,1) (3,1) (1,2) (2,2) (1,3) as (x, y)


def test_several_polygons_of_one_class_are_united(tmp_path):
    img, js = write_case(str(tmp_path), [ann('Radius', SQUARE, 'a'),
                                         ann('Radius', TRIANGLE, 'b')])
    mask = load(img, js)['gt_seg_map']
    np.testing.assert_array_equal(mask[..., 27], SQUARE_PIXELS | TRIANGLE_PIXELS)


def test_classes_subset_and_order_select_channels(tmp_path):
    img, js = write_case(str(tmp_path), [ann('finger-1', SQUARE, 'sq'),
                                         ann('Ulna', TRIANGLE, 'tri')])
    mask = load(img, js, classes=('Ulna', 'finger-1'))['gt_seg_map']
    assert mask.shape == (6, 6, 2)
    np.testing.assert_array_equal(mask[..., 0], TRIANGLE_PIXELS)
    np.testing.assert_array_equal(mask[..., 1], SQUARE_PIXELS)
    # a bone left out of the subset is dropped; a label outside the format is an error
    mask = load(img, js, classes=('Ulna',))['gt_seg_map']
    assert mask.shape == (6, 6, 1) and mask.sum() == TRIANGLE_PIXELS.sum()
    img, js = write_case(str(tmp_path), [ann('Ulna', TRIANGLE), ann('Sesamoid', SQUARE)])
    with pytest.raises(DataFileError, match="'Sesamoid' is not one of the 1 classes"):
        load(img, js, classes=('Ulna',))


def test_boundary_tolerance(tmp_path):
    # x == W (the outer edge of the last pixel) is accepted with the default 1 px
    img, js = write_case(str(tmp_path), [ann('Lunate', [[4, 0], [6, 0], [6, 5]])])
    mask = load(img, js)['gt_seg_map'][..., HAND_BONE_CLASSES.index('Lunate')]
    assert mask[0, 4:].tolist() == [1, 1] and mask[:, :4].sum() == 0
    with pytest.raises(DataFileError, match=r'a1.*outside'):
        load(img, js, boundary_tolerance=0)


# --------------------------------------------------------- bad input -----------------

@pytest.mark.parametrize('case, message', [
    (dict(raw_json='{"annotations": [ {"id": '), 'malformed JSON'),
    (dict(raw_json='[1, 2]'), 'malformed JSON'),
    (dict(anns=[ann('finger-99', SQUARE, 'bad-label')]), "bad-label.*'finger-99'"),
    (dict(anns=[ann('Hamate', [[0, 0], [3, 3]], 'two-points')]), 'two-points.*2 point'),
    (dict(anns=[ann('Hamate', [[0, 0], [9, 0], [0, 3]], 'far')]), 'far.*outside'),
    (dict(anns=[ann('Hamate', [[0, 0], [-2, 0], [0, 3]], 'neg')]), 'neg.*outside'),
    (dict(anns=[ann('Hamate', [[0, 'x'], [1, 0], [0, 3]], 'text')]), 'text.*points'),
    (dict(anns=[{'id': 'nolabel', 'points': SQUARE}]), 'nolabel.*malformed'),
    (dict(anns=[ann('Hamate', SQUARE)], image_size=(6, 7)), 'does not match the image'),
])
def test_bad_annotation_names_file_and_annotation(tmp_path, case, message):
    anns = case.pop('anns', [])
    img, js = write_case(str(tmp_path), anns, **case)
    with pytest.raises(DataFileError, match=message) as info:
        load(img, js)
    assert str(info.value).startswith(js)


def test_unknown_labels_skip_is_counted(tmp_path):
    img, js = write_case(str(tmp_path), [ann('finger-1', SQUARE, 'ok'),
                                         ann('Sesamoid', TRIANGLE, 's1'),
                                         ann('Sesamoid', TRIANGLE, 's2')])
    loader = TRANSFORMS.build(dict(type='LoadHandBoneAnnotations', unknown_labels='skip'))
    res = TRANSFORMS.build(dict(type='LoadImageFromFileChecked'))(
        dict(img_path=img, seg_map_path=js, seg_fields=[]))
    mask = loader(res)['gt_seg_map']
    np.testing.assert_array_equal(mask[..., 0], SQUARE_PIXELS)
    assert mask.sum() == SQUARE_PIXELS.sum()
    assert loader.unknown_label_counter.counts == {'Sesamoid': 2}
    assert loader.unknown_label_counter.files == 1
    assert 'Sesamoid' in loader.unknown_label_counter.summary()


@pytest.mark.parametrize('content', [b'', b'not a png', 'truncated'])
def test_undecodable_image_names_file(tmp_path, content):
    path = str(tmp_path / 'x.png')
    if content == 'truncated':
        ok, buf = cv2.imencode('.png', np.arange(400, dtype=np.uint8).reshape(20, 20))
        content = buf.tobytes()[:60]
    with open(path, 'wb') as f:
        f.write(content)
    with pytest.raises(DataFileError, match='cannot decode image') as info:
        TRANSFORMS.build(dict(type='LoadImageFromFileChecked'))(dict(img_path=path))
    assert str(info.value).startswith(path)


def test_missing_json_in_labelled_split_names_the_image(tmp_path):
    root = str(tmp_path)
    write_case(root, [ann('finger-1', SQUARE)])
    orphan = osp.join(root, 'DCM', 'ID002', 'image2_L.png')
    os.makedirs(osp.dirname(orphan))
    cv2.imwrite(orphan, np.zeros((6, 6), np.uint8))
    with pytest.raises(DataFileError, match='no annotation file') as info:
        HandBoneDataset(data_root=root)
    assert orphan in str(info.value)


def test_missing_image_folder_is_clear(tmp_path):
    with pytest.raises(DataFileError, match='image folder not found'):
        HandBoneDataset(data_root=str(tmp_path / 'nothing'))


# ------------------------------------------------------------ dataset ----------------

@pytest.fixture(scope='module')
def synth(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('handbone'))
    make_handbone_dataset(root, num_patients=7, images_per_patient=2, size=(40, 32),
                          num_test_patients=2, seed=3)
    return root


def test_data_info_fields(synth):
    ds = HandBoneDataset(data_root=osp.join(synth, 'train'))
    assert len(ds) == 14
    info = ds.get_data_info(0)
    rel = osp.relpath(info['img_path'], osp.join(synth, 'train', 'DCM'))
    assert info['seg_map_path'] == osp.join(synth, 'train', 'outputs_json',
                                            rel[:-4] + '.json')
    assert info['patient'] == rel.split(os.sep)[0] == 'ID001'
    assert info['label_map'] is None and info['reduce_zero_label'] is False
    assert info['seg_fields'] == []
    assert tuple(info['classes']) == HAND_BONE_CLASSES
    assert ds.metainfo['classes'] == HAND_BONE_CLASSES
    assert len(ds.metainfo['palette']) == 29


def test_folds_keep_patients_together_and_are_deterministic(synth):
    root = osp.join(synth, 'train')
    everything = {HandBoneDataset(data_root=root).get_data_info(i)['img_path']
                  for i in range(14)}
    seen_val = set()
    for k in range(3):
        kw = dict(data_root=root, fold=k, num_folds=3, fold_seed=5)
        train = HandBoneDataset(subset='train', **kw)
        val = HandBoneDataset(subset='val', **kw)
        assert set(train.patients).isdisjoint(val.patients)
        t_paths = {train.get_data_info(i)['img_path'] for i in range(len(train))}
        v_paths = {val.get_data_info(i)['img_path'] for i in range(len(val))}
        assert t_paths | v_paths == everything and not t_paths & v_paths
        seen_val |= v_paths
        again = HandBoneDataset(subset='val', **kw)
        assert [again.get_data_info(i)['img_path'] for i in range(len(again))] == \
            [val.get_data_info(i)['img_path'] for i in range(len(val))]
    assert seen_val == everything  # each image is validated exactly once over the folds


def test_split_file(synth, tmp_path):
    root = osp.join(synth, 'train')
    names = sorted(os.listdir(osp.join(root, 'DCM', 'ID003')))
    split = tmp_path / 'fold0_val.txt'
    split.write_text(f'# fold 0\nID003/{names[0][:-4]}\n\nDCM/ID003/{names[1]}\n')
    ds = HandBoneDataset(data_root=root, ann_file=str(split))
    assert [osp.basename(ds.get_data_info(i)['img_path']) for i in range(len(ds))] == names
    assert ds.get_data_info(0)['seg_map_path'].endswith(names[0][:-4] + '.json')
    split.write_text('ID003/nope.png\n')
    with pytest.raises(DataFileError, match=r"line 1: image 'ID003/nope.png' not found"):
        HandBoneDataset(data_root=root, ann_file=str(split))


def test_split_files_of_tools_kfold(synth, tmp_path):
    """The stems written by ``tools/kfold.py handbone`` select the same images as the
    dataset's own ``fold=`` argument (same grouping, same seed)."""
    from mmseg_ext.preparation.kfold import kfold_handbone
    root = osp.join(synth, 'train')
    kfold_handbone(root, str(tmp_path), num_folds=3, seed=1)
    for j in range(3):
        for subset in ('train', 'val'):
            listed = HandBoneDataset(data_root=root,
                                     ann_file=str(tmp_path / f'{subset}_fold{j}.txt'))
            own = HandBoneDataset(data_root=root, fold=j, num_folds=3, subset=subset,
                                  fold_seed=1)
            assert sorted(listed.get_data_info(i)['img_path'] for i in range(len(listed))) \
                == sorted(own.get_data_info(i)['img_path'] for i in range(len(own)))


def test_test_split_without_json(synth):
    root = osp.join(synth, 'test')
    assert not osp.exists(osp.join(root, 'outputs_json'))
    pipeline = [dict(type='LoadImageFromFileChecked'), dict(type='LoadHandBoneAnnotations'),
                dict(type='PackMultiLabelSegInputs')]
    ds = DATASETS.build(dict(type='HandBoneDataset', data_root=root, test_mode=True,
                             pipeline=pipeline))
    assert len(ds) == 4
    assert all(ds.get_data_info(i)['seg_map_path'] is None for i in range(4))
    sample = ds[0]
    assert sample['inputs'].shape == (3, 40, 32)
    assert 'gt_sem_seg' not in sample['data_samples']
    assert sample['data_samples'].metainfo['ori_shape'] == (40, 32)
    # the same folder without test_mode works too (no annotation dir -> unlabelled)
    assert len(HandBoneDataset(data_root=root)) == 4


def test_test_mode_on_labelled_split_keeps_existing_json(synth):
    ds = HandBoneDataset(data_root=osp.join(synth, 'train'), test_mode=True)
    assert all(osp.isfile(ds.get_data_info(i)['seg_map_path']) for i in range(len(ds)))


def test_metainfo_subset_reaches_the_loader(synth):
    pipeline = [dict(type='LoadImageFromFileChecked'), dict(type='LoadHandBoneAnnotations')]
    full = HandBoneDataset(data_root=osp.join(synth, 'train'), pipeline=pipeline)
    sub = HandBoneDataset(data_root=osp.join(synth, 'train'), pipeline=pipeline,
                          metainfo=dict(classes=('Ulna', 'finger-3')))
    assert sub.metainfo['classes'] == ('Ulna', 'finger-3')
    assert len(sub.metainfo['palette']) == 2
    m_full, m_sub = full[0]['gt_seg_map'], sub[0]['gt_seg_map']
    assert m_sub.shape == (40, 32, 2)
    np.testing.assert_array_equal(m_sub[..., 0], m_full[..., 28])
    np.testing.assert_array_equal(m_sub[..., 1], m_full[..., 2])


def test_non_square_other_size(tmp_path):
    make_handbone_dataset(str(tmp_path), num_patients=2, images_per_patient=1,
                          size=(50, 73), num_test_patients=0, seed=1)
    pipeline = [dict(type='LoadImageFromFileChecked'), dict(type='LoadHandBoneAnnotations')]
    res = HandBoneDataset(data_root=str(tmp_path / 'train'), pipeline=pipeline)[1]
    assert res['img'].shape == (50, 73, 3) and res['gt_seg_map'].shape == (50, 73, 29)
    assert set(np.unique(res['gt_seg_map'])) == {0, 1}
    assert (res['gt_seg_map'].reshape(-1, 29).sum(0) > 0).all()  # every bone visible
