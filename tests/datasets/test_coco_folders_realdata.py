"""Real data: FracAtlas (COCO, category id 0) and camvid_half (image/label folders)."""
import os.path as osp

import numpy as np
import pytest
from coco_reference import load_coco, reference_label_maps
from conftest import shared_data
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS

from mmseg_ext.datasets import CocoSemanticDataset

init_default_scope('mmseg')
pytestmark = pytest.mark.realdata
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.mark.parametrize('order', ['file', 'area_desc', 'polygon_length'])
def test_fracatlas_masks_equal_pycocotools_reference(order):
    root = shared_data('fracatlas_coco')
    coco = load_coco(osp.join(root, 'annotations.json'))
    assert coco.dataset['categories'] == [{'id': 0, 'name': 'fractured'}]
    classes = ('background', 'fractured')
    ds = CocoSemanticDataset(
        ann_file='annotations.json', data_root=root, data_prefix=dict(img_path='images'),
        metainfo=dict(classes=classes), background_name='background', draw_order=order,
        pipeline=[dict(type='LoadCocoAnnotations')])
    ref = list(reference_label_maps(coco, classes, order).values())
    assert len(ds) == len(ref) == 72
    for i, expected in enumerate(ref):
        got = ds[i]['gt_seg_map']
        assert got.shape == expected.shape and got.dtype == np.uint8
        np.testing.assert_array_equal(got, expected, err_msg=ds[i]['img_path'])
        # category id 0 is the class 'fractured' (1), never the background
        assert got.max() == 1 and set(np.unique(got)) == {0, 1}


def test_fracatlas_image_sizes_match_json():
    root = shared_data('fracatlas_coco')
    ds = CocoSemanticDataset(
        ann_file='annotations.json', data_root=root, data_prefix=dict(img_path='images'),
        metainfo=dict(classes=('background', 'fractured')), background_name='background',
        pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadCocoAnnotations')])
    shapes = set()
    for i in range(len(ds)):
        out = ds[i]                                   # raises on a size mismatch
        assert out['img'].shape[:2] == out['gt_seg_map'].shape
        shapes.add(out['gt_seg_map'].shape)
    assert shapes == {(454, 373), (373, 454), (2880, 2304), (2304, 2880)}  # (H, W)


def test_camvid_half_through_the_cpu_config():
    root = shared_data('camvid_half')
    cfg = Config.fromfile(osp.join(
        REPO, 'custom_configs/camvid/fcn_r18-tiny_1xb8-2k_camvid-half-180x240.py'))
    for loader, count in (('train_dataloader', 367), ('val_dataloader', 101)):
        dataset = dict(cfg[loader]['dataset'], data_root=root)
        ds = DATASETS.build(dataset)
        assert len(ds) == count
        assert ds.metainfo['classes'][0] == 'Sky' and len(ds.metainfo['classes']) == 11
        for i in (0, count - 1):
            out = ds[i]
            label = out['data_samples'].gt_sem_seg.data
            values = set(label.unique().tolist())
            assert values <= set(range(11)) | {255}, values
            assert out['inputs'].shape[1:] == label.shape[1:]
