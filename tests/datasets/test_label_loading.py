"""Label maps through the checked loader: the same maps as mmseg's stock
``LoadAnnotations`` for good files, one error naming the file for bad ones, and every
config the tools read uses it (issue 28, round G: a colour label, a label of another
size and a value that is no class used to end in a traceback or a silent result)."""
import os.path as osp

import cv2
import numpy as np
import pytest
from conftest import REPO
from mmseg.datasets.transforms import LoadAnnotations
from PIL import Image

from mmseg_ext.config.loading import load_config
from mmseg_ext.datasets.transforms.loading import LoadAnnotationsChecked
from mmseg_ext.utils.errors import ConfigError, DataFileError

SHAPES = osp.join(REPO, 'custom_configs', 'demo', 'fcn_r18-tiny_shapes-64x80.py')


def results_for(path, shape=(6, 5), reduce_zero_label=False, label_map=None):
    return dict(seg_map_path=str(path), reduce_zero_label=reduce_zero_label,
                label_map=label_map, seg_fields=[], ori_shape=shape, img_path='img.png')


@pytest.mark.parametrize('reduce_zero_label', [False, True])
@pytest.mark.parametrize('label_map', [None, {0: 3, 3: 0, 7: 255}])
def test_same_maps_as_stock_loading(tmp_path, reduce_zero_label, label_map):
    rng = np.random.default_rng(0)
    seg = rng.choice(np.array([0, 1, 2, 3, 7, 254, 255], np.uint8), size=(6, 5))
    path = tmp_path / 'a.png'
    cv2.imwrite(str(path), seg)
    stock = LoadAnnotations(reduce_zero_label=reduce_zero_label)(
        results_for(path, reduce_zero_label=reduce_zero_label, label_map=label_map))
    ours = LoadAnnotationsChecked(reduce_zero_label=reduce_zero_label)(
        results_for(path, reduce_zero_label=reduce_zero_label, label_map=label_map))
    np.testing.assert_array_equal(ours['gt_seg_map'], stock['gt_seg_map'])
    assert ours['gt_seg_map'].dtype == np.uint8 and ours['seg_fields'] == ['gt_seg_map']


def test_hand_worked_reduce_zero_label(tmp_path):
    path = tmp_path / 'a.png'
    cv2.imwrite(str(path), np.array([[0, 1, 2], [254, 255, 3]], np.uint8))
    out = LoadAnnotationsChecked(reduce_zero_label=True)(
        results_for(path, shape=(2, 3), reduce_zero_label=True))
    assert out['gt_seg_map'].tolist() == [[255, 0, 1], [253, 255, 2]]


def write(path, array):
    assert cv2.imwrite(str(path), array)
    return str(path)


@pytest.mark.parametrize('make,message', [
    (lambda p: write(p, np.zeros((6, 5, 3), np.uint8)),
     'not a single-channel label map (mode RGB: colour, 3 channels); write class indices, '
     'one channel'),
    # round U, U-12: OpenCV decodes gray + alpha as 4 channels; the file's mode is named
    (lambda p: Image.new('LA', (5, 6)).save(p) or str(p),
     'not a single-channel label map (mode LA: gray + alpha, 2 channels); write class '
     'indices, one channel'),
    (lambda p: write(p, np.zeros((3, 5), np.uint8)),
     'label map is 3x5 (HxW) but its image img.png is 6x5'),
    (lambda p: write(p, np.full((6, 5), 300, np.uint16)),
     'holds the label value 300; label maps hold 0..255'),
    (lambda p: write(p, np.full((6, 5), 4, np.uint8)),
     'holds the label value 4, but there are 4 classes (values 0..3 or the ignore index '
     '255)'),
    (lambda p: p.write_bytes(b'not a png') and str(p), 'cannot decode label map'),
    (lambda p: str(p), 'label file not found'),
])
def test_bad_label_maps_are_one_error_naming_the_file(tmp_path, make, message):
    path = make(tmp_path / 'a.png')
    with pytest.raises(DataFileError) as err:
        LoadAnnotationsChecked(num_classes=4)(results_for(path))
    assert str(err.value) == f'{path}: {message}' or \
        str(err.value).startswith(f'{path}: {message}')


def test_ignore_index_and_the_last_class_pass(tmp_path):
    path = write(tmp_path / 'a.png', np.array([[3, 255], [0, 1]], np.uint8))
    out = LoadAnnotationsChecked(num_classes=4)(results_for(path, shape=(2, 2)))
    assert out['gt_seg_map'].tolist() == [[3, 255], [0, 1]]


def test_num_classes_is_checked():
    with pytest.raises(ConfigError, match='num_classes must be an integer in 1..255'):
        LoadAnnotationsChecked(num_classes=0)


def test_every_loader_of_a_config_loads_labels_checked():
    cfg = load_config(SHAPES)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        steps = [s for s in cfg[loader].dataset.pipeline if 'Annotations' in s['type']]
        assert steps == [dict(type='LoadAnnotationsChecked', num_classes=4)], loader
    # a concatenation: each member's class count from its own metainfo (it must be
    # the model's: config.checks.check_class_count); an explicit count is kept
    cfg = load_config(SHAPES, {'train_dataloader.dataset': dict(
        type='ConcatDataset', datasets=[
            dict(type='BaseSegDataset', metainfo=dict(classes=('a', 'b', 'c', 'd')),
                 pipeline=[dict(type='LoadAnnotations', reduce_zero_label=True)]),
            dict(type='BaseSegDataset', metainfo=dict(classes=('e', 'f', 'g', 'h')),
                 pipeline=[dict(type='LoadAnnotationsChecked', num_classes=9)])])})
    first, second = cfg.train_dataloader.dataset.datasets
    assert first.pipeline == [dict(type='LoadAnnotationsChecked', reduce_zero_label=True,
                                   num_classes=4)]
    assert second.pipeline == [dict(type='LoadAnnotationsChecked', num_classes=9)]


def test_wrapped_data_sets_and_the_tta_pipeline_load_labels_checked():
    """Inside a RepeatDataset of a ConcatDataset (wrappers nest), and in a hand-written
    ``tta_pipeline`` (its TestTimeAug lists), which tools/test.py --tta puts into the
    test loader: each stock LoadAnnotations becomes the checked one."""
    cfg = load_config(SHAPES, {
        'train_dataloader.dataset': dict(type='RepeatDataset', times=2, dataset=dict(
            type='ConcatDataset', datasets=[
                dict(type='BaseSegDataset', metainfo=dict(classes=('a', 'b', 'c', 'd')),
                     pipeline=[dict(type='LoadAnnotations')])])),
        'tta_pipeline': [
            dict(type='LoadImageFromFile'),
            dict(type='TestTimeAug', transforms=[
                [dict(type='Resize', scale=(80, 64), keep_ratio=True)],
                [dict(type='LoadAnnotations')], [dict(type='PackSegInputs')]])]})
    inner = cfg.train_dataloader.dataset.dataset.datasets[0]
    assert inner.pipeline == [dict(type='LoadAnnotationsChecked', num_classes=4)]
    loaders = cfg.tta_pipeline[1]['transforms'][1]
    assert loaders == [dict(type='LoadAnnotationsChecked', num_classes=4)]
