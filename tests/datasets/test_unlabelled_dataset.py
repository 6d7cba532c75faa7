"""UnlabelledImageDataset: images only (folder or list), no ground truth, label files
never read, the labelled set's metainfo for ConcatDataset."""
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from mmengine.dataset import ConcatDataset
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS

import mmseg_ext
from mmseg_ext.datasets.synthetic import make_handbone_dataset
from mmseg_ext.datasets.unlabelled import UnlabelledImageDataset
from mmseg_ext.utils.errors import ConfigError, DataError, DataFileError

CLASSES = ('finger-1', 'finger-2', 'Radius', 'Ulna')
METAINFO = dict(classes=CLASSES, flip_swap_classes=[('Radius', 'Ulna')])
PIPELINE = [dict(type='LoadImageFromFileChecked'),
            dict(type='Resize', scale=(32, 32), keep_ratio=True),
            dict(type='PackMultiLabelSegInputs')]


@pytest.fixture(autouse=True)
def _scope():
    mmseg_ext.register_all_modules()
    init_default_scope('mmseg')


@pytest.fixture
def handbone(tmp_path):
    """Synthetic hand bones: 3 patients x 2 images (32 px), every image with its JSON."""
    root = str(tmp_path / 'hb')
    make_handbone_dataset(root, num_patients=3, images_per_patient=2, size=(32, 32),
                          num_test_patients=0)
    return osp.join(root, 'train')


def _stems(train_root):
    dcm = osp.join(train_root, 'DCM')
    return sorted(osp.relpath(osp.join(d, f), dcm)[:-4] for d, _, files in os.walk(dcm)
                  for f in files if f.endswith('.png'))


def test_hand_bone_layout_from_a_list_with_broken_jsons(handbone, tmp_path):
    stems = _stems(handbone)
    for json_path in [osp.join(d, f) for d, _, fs in os.walk(osp.join(handbone,
                      'outputs_json')) for f in fs]:
        with open(json_path, 'w') as f:
            f.write('{broken')                 # a labelled loader would stop here
    listed = tmp_path / 'unlabelled.txt'
    listed.write_text('\n'.join(stems[2:5]) + '\n\n# a comment\n')
    ds = DATASETS.build(dict(type='UnlabelledImageDataset', data_root=handbone,
                             data_prefix=dict(img_path='DCM'), ann_file=str(listed),
                             metainfo_from=dict(type='HandBoneDataset', metainfo=METAINFO),
                             pipeline=PIPELINE))
    assert [ds.get_data_info(i)['img_path'] for i in range(len(ds))] == \
        [osp.join(handbone, 'DCM', s + '.png') for s in stems[2:5]]
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        assert 'seg_map_path' not in info
        assert info['flip_swap_pairs'] == ((2, 3),)
        packed = ds[i]
        assert 'gt_sem_seg' not in packed['data_samples']
        assert tuple(packed['inputs'].shape) == (3, 32, 32)
    # the labelled set and this one concatenate: their metainfo is the same
    labelled = DATASETS.build(dict(type='HandBoneDataset', data_root=handbone,
                                   ann_file=str(tmp_path / 'none.txt'), metainfo=METAINFO,
                                   pipeline=[], lazy_init=True))
    assert ConcatDataset([labelled, ds], lazy_init=True).metainfo == labelled.metainfo
    assert ds.metainfo['classes'] == CLASSES


def test_plain_folder_lists_every_image_and_ignores_what_lies_beside(tmp_path):
    img_dir = tmp_path / 'images'
    (img_dir / 'sub').mkdir(parents=True)
    for name in ('b.png', 'a.png', 'sub/c.png'):
        cv2.imwrite(str(img_dir / name), np.full((20, 24, 3), 100, np.uint8))
    (img_dir / 'a.json').write_text('{not json')
    (img_dir / 'notes.txt').write_text('x')
    ds = UnlabelledImageDataset(data_prefix=dict(img_path=str(img_dir)),
                                metainfo=dict(classes=('x', 'y')),
                                pipeline=PIPELINE[:1] + PIPELINE[2:])
    rels = [osp.relpath(ds.get_data_info(i)['img_path'], img_dir) for i in range(len(ds))]
    assert rels == ['a.png', 'b.png', 'sub/c.png']
    assert 'gt_sem_seg' not in ds[0]['data_samples']
    # the same classes and palette as a BaseSegDataset of the labelled images
    labelled = DATASETS.build(dict(type='BaseSegDataset', metainfo=dict(classes=('x', 'y')),
                                   data_prefix=dict(img_path=str(img_dir)), lazy_init=True))
    ConcatDataset([labelled, ds], lazy_init=True)


def test_a_missing_listed_image_is_one_error_naming_it(tmp_path):
    img_dir = tmp_path / 'images'
    img_dir.mkdir()
    cv2.imwrite(str(img_dir / 'a.png'), np.zeros((8, 8, 3), np.uint8))
    listed = tmp_path / 'list.txt'
    listed.write_text('a\nID002/gone\n')
    with pytest.raises(DataError) as err:
        UnlabelledImageDataset(data_prefix=dict(img_path=str(img_dir)),
                               ann_file=str(listed))
    assert str(err.value) == (f'{listed}:2: ID002/gone: no such image under {img_dir} '
                              '(looked for ID002/gone and ID002/gone{.png})')
    listed.write_text('../outside\n')
    with pytest.raises(DataError, match='list.txt:1'):
        UnlabelledImageDataset(data_prefix=dict(img_path=str(img_dir)),
                               ann_file=str(listed))


def test_refusals(tmp_path):
    (tmp_path / 'empty').mkdir()
    with pytest.raises(DataFileError, match='no \\*.png images'):
        UnlabelledImageDataset(data_prefix=dict(img_path=str(tmp_path / 'empty')))
    with pytest.raises(DataFileError, match='image folder not found'):
        UnlabelledImageDataset(data_prefix=dict(img_path=str(tmp_path / 'nowhere')))
    with pytest.raises(ConfigError, match='seg_map_path'):
        UnlabelledImageDataset(data_prefix=dict(img_path=str(tmp_path),
                                                seg_map_path=str(tmp_path)))
    with pytest.raises(ConfigError, match='metainfo_from'):
        UnlabelledImageDataset(data_prefix=dict(img_path=str(tmp_path)),
                               metainfo_from='HandBoneDataset')
    with pytest.raises(ConfigError, match='flip_swap_classes'):
        UnlabelledImageDataset(data_prefix=dict(img_path=str(tmp_path)), lazy_init=True,
                               metainfo=dict(classes=('a', 'b'),
                                             flip_swap_classes=[('a', 'c')]))
