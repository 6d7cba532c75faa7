"""PortStructuresDataset: labelled / unlabelled / test folders, ignore 255, splits."""
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from mmengine.registry import init_default_scope

from mmseg_ext.datasets import PortStructuresDataset
from mmseg_ext.datasets.port_structures import FolderDataError
from mmseg_ext.datasets.synthetic.port import make_port_dataset
from mmseg_ext.utils.class_names import PORT_CLASSES

init_default_scope('mmseg')
PIPELINE = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
            dict(type='PackSegInputs')]


@pytest.fixture
def port_root(tmp_path):
    root = str(tmp_path / 'port')
    make_port_dataset(root, num_labeled=4, num_unlabeled=3, num_test=2, size=(24, 40))
    return root


def test_subsets_list_their_folders(port_root):
    labeled = PortStructuresDataset(data_root=port_root, pipeline=PIPELINE)
    assert len(labeled) == 4 and labeled.metainfo['classes'] == PORT_CLASSES
    info = labeled.get_data_info(0)
    assert info['img_path'] == osp.join(port_root, 'train/labeled_images/0000.jpg')
    assert info['seg_map_path'] == osp.join(port_root, 'train/labels/0000.png')
    out = labeled[0]
    assert out['inputs'].shape == (3, 24, 40)                       # not square
    label = out['data_samples'].gt_sem_seg.data
    ref = cv2.imread(info['seg_map_path'], cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(label[0].numpy(), ref)            # 255 kept, no shift
    assert 255 in ref and set(np.unique(ref)) <= {0, 1, 2, 3, 4, 255}

    for subset, folder, count in (('unlabeled', 'train/unlabeled_images', 3),
                                  ('test', 'test/images', 2)):
        ds = PortStructuresDataset(data_root=port_root, subset=subset, test_mode=True,
                                   pipeline=[dict(type='LoadImageFromFile')])
        names = [ds.get_data_info(i)['img_path'] for i in range(len(ds))]
        assert len(ds) == count and all(osp.dirname(n).endswith(folder) for n in names)
        assert 'seg_map_path' not in ds.get_data_info(0)
        assert ds[0]['img'].shape == (24, 40, 3)


def test_split_file_of_stems(port_root):
    with open(osp.join(port_root, 'val.txt'), 'w') as f:
        f.write('0003\n0001\n')
    ds = PortStructuresDataset(data_root=port_root, ann_file='val.txt')
    assert [osp.basename(ds.get_data_info(i)['img_path']) for i in range(2)] == \
        ['0003.jpg', '0001.jpg']


def test_bad_input(port_root, tmp_path):
    os.remove(osp.join(port_root, 'train/labels/0002.png'))
    with pytest.raises(FolderDataError, match=r'0002\.jpg: label file .*0002\.png not found'):
        PortStructuresDataset(data_root=port_root)
    with pytest.raises(FolderDataError, match=r"image folder \(subset 'test'\) not found"):
        PortStructuresDataset(data_root=str(tmp_path / 'nowhere'), subset='test')
    with pytest.raises(ValueError, match='PortStructuresDataset: subset must be one of'):
        PortStructuresDataset(data_root=port_root, subset='val')
    with pytest.raises(FolderDataError, match='split file not found'):
        PortStructuresDataset(data_root=port_root, subset='test', ann_file='x.txt')
