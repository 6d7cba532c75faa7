"""CocoSemanticDataset + LoadCocoAnnotations: drawing orders, crowds, RLE, bad input.

Expected label maps are written out by hand. pycocotools fills an axis-aligned polygon
with integer corners (x0, y0)-(x1, y1) over the pixels x0 <= x < x1, y0 <= y < y1.
"""
import json
import os.path as osp
import pickle

import cv2
import numpy as np
import pytest
from mmengine.registry import init_default_scope
from pycocotools import mask as mask_utils

from mmseg_ext.datasets import CocoSemanticDataset
from mmseg_ext.datasets.coco_index import CocoFormatError
from mmseg_ext.datasets.transforms.coco_loading import LoadCocoAnnotations
from mmseg_ext.io.rle import coco_string_to_counts

init_default_scope('mmseg')

CLASSES = ('Background', 'A', 'B', 'C')
# category ids are not class indices: B has id 0, ids have gaps, an unused category
CATEGORIES = [dict(id=9, name='C'), dict(id=5, name='A'), dict(id=0, name='B'),
              dict(id=3, name='D')]
A = [0, 0, 5, 0, 5, 5, 0, 5]                      # 8 coordinates, rows 0-4, cols 0-4
B = [2, 1, 3, 1, 4, 1, 4, 3, 2, 3]                # 10 coordinates, rows 1-2, cols 2-3
C = [3, 2, 5, 2, 7, 2, 7, 6, 5, 6, 3, 6]          # 12 coordinates, rows 2-5, cols 3-6
H, W = 6, 7


def ann(ann_id, cat, seg, area, image_id=1, **kw):
    return dict(id=ann_id, image_id=image_id, category_id=cat, segmentation=seg,
                area=area, bbox=[0, 0, 1, 1], iscrowd=0, **kw)


def write_coco(root, annotations, images=None, categories=CATEGORIES, name='ann.json'):
    """Write a COCO file and grey images of the listed sizes under root/images."""
    images = images if images is not None else [dict(id=1, file_name='a.png', height=H,
                                                     width=W)]
    for img in images:
        path = osp.join(root, 'images', img['file_name'])
        if not osp.exists(path):
            cv2.imwrite(path, np.full((img['height'], img['width'], 3), 128, np.uint8))
    with open(osp.join(root, name), 'w') as f:
        json.dump(dict(images=images, annotations=annotations, categories=categories), f)
    return osp.join(root, name)


@pytest.fixture
def root(tmp_path):
    (tmp_path / 'images').mkdir()
    return str(tmp_path)


def build(root, ann_file='ann.json', load_image=True, **kw):
    pipeline = ([dict(type='LoadImageFromFile')] if load_image else []) + \
        [dict(type='LoadCocoAnnotations')]
    kw.setdefault('metainfo', dict(classes=CLASSES))
    return CocoSemanticDataset(ann_file=ann_file, data_root=root,
                               data_prefix=dict(img_path='images'), pipeline=pipeline, **kw)


# file order B, A, C: A covers B; C over A
EXPECTED_FILE = np.array([
    [1, 1, 1, 1, 1, 0, 0],
    [1, 1, 1, 1, 1, 0, 0],
    [1, 1, 1, 3, 3, 3, 3],
    [1, 1, 1, 3, 3, 3, 3],
    [1, 1, 1, 3, 3, 3, 3],
    [0, 0, 0, 3, 3, 3, 3]], np.uint8)
# area_desc: A (25), C (16), B (4): B's square (rows 1-2, columns 2-3) on top of A and
# of C at (2, 3)
EXPECTED_AREA = EXPECTED_FILE.copy()
EXPECTED_AREA[1:3, 2:4] = 2
# polygon_length: A (8), B (10), C (12): as area_desc, but C on top of B at (2, 3)
EXPECTED_POLYLEN = EXPECTED_AREA.copy()
EXPECTED_POLYLEN[2, 3] = 3


@pytest.mark.parametrize('order,expected', [('file', EXPECTED_FILE),
                                            ('area_desc', EXPECTED_AREA),
                                            ('polygon_length', EXPECTED_POLYLEN)])
def test_drawing_orders_on_overlapping_squares(root, order, expected):
    write_coco(root, [ann(21, 0, [B], 4.0), ann(20, 5, [A], 25.0), ann(22, 9, [C], 16.0)])
    ds = build(root, draw_order=order)
    out = ds[0]
    assert out['gt_seg_map'].dtype == np.uint8
    np.testing.assert_array_equal(out['gt_seg_map'], expected)


def test_area_desc_falls_back_to_pixel_area_and_ties_keep_file_order(root):
    # no 'area' field: A=25 px, C=16 px, B=4 px -> same as EXPECTED_AREA
    anns = [ann(21, 0, [B], None), ann(20, 5, [A], None), ann(22, 9, [C], None)]
    for a in anns:
        a.pop('area')
    write_coco(root, anns)
    np.testing.assert_array_equal(build(root)[0]['gt_seg_map'], EXPECTED_AREA)
    # equal areas: file order decides, the later one on top
    write_coco(root, [ann(1, 9, [C], 10.0), ann(2, 0, [B], 10.0)])
    label = build(root)[0]['gt_seg_map']
    assert label[2, 3] == 2 and label[1, 2] == 2 and label[5, 6] == 3


def test_multi_polygon_annotation_is_united(root):
    write_coco(root, [ann(1, 5, [[0, 0, 2, 0, 2, 2, 0, 2], [5, 4, 7, 4, 7, 6, 5, 6]], 8.0)])
    expected = np.zeros((H, W), np.uint8)
    expected[0:2, 0:2] = 1
    expected[4:6, 5:7] = 1
    np.testing.assert_array_equal(build(root)[0]['gt_seg_map'], expected)


# a 3x4 mask, foreground at (row, col) (0,1) (1,1) (1,2) (2,3); column-major runs:
# col0 000, col1 110, col2 010, col3 001 -> 3 zeros, 2 ones, 2 zeros, 1 one, 3 zeros, 1 one
RLE_COUNTS = [3, 2, 2, 1, 3, 1]
RLE_MASK = np.array([[0, 1, 0, 0],
                     [0, 1, 1, 0],
                     [0, 0, 0, 1]], np.uint8)


@pytest.mark.parametrize('compressed', [False, True])
def test_rle_segmentations(root, compressed):
    rle = dict(size=[3, 4], counts=RLE_COUNTS)
    if compressed:
        rle = mask_utils.frPyObjects(rle, 3, 4)
        rle['counts'] = rle['counts'].decode('ascii')       # as a JSON file holds it
    img = [dict(id=1, file_name='r.png', height=3, width=4)]
    write_coco(root, [ann(7, 9, rle, 4.0)], images=img)
    np.testing.assert_array_equal(build(root)[0]['gt_seg_map'], RLE_MASK * 3)


def test_rle_counts_decodes_pycocotools_strings():
    rng = np.random.default_rng(0)
    for _ in range(50):
        mask = (rng.random((13, 9)) < 0.4).astype(np.uint8)
        rle = mask_utils.encode(np.asfortranarray(mask))
        runs = coco_string_to_counts(rle['counts'])
        # independent reference: run lengths of the column-major flattening
        flat = mask.flatten(order='F')
        edges = np.flatnonzero(np.diff(flat)) + 1
        ref = np.diff(np.concatenate(([0], edges, [flat.size])))
        if flat[0] == 1:
            ref = np.concatenate(([0], ref))
        np.testing.assert_array_equal(runs, ref)


@pytest.mark.parametrize('mode,value', [('paint', 2), ('ignore', 255), ('skip', 1)])
def test_iscrowd_modes(root, mode, value):
    crowd = ann(31, 0, dict(size=[H, W], counts=[H * 3, H, H * 3]), 6.0)   # column 3
    crowd['iscrowd'] = 1
    write_coco(root, [ann(30, 5, [A], 25.0), crowd])
    label = build(root, iscrowd=mode)[0]['gt_seg_map']
    expected = np.zeros((H, W), np.uint8)
    expected[0:5, 0:5] = 1
    expected[:, 3] = value if mode != 'skip' else expected[:, 3]
    np.testing.assert_array_equal(label, expected)


def test_image_without_annotations_is_background_and_ids_are_not_indices(root):
    images = [dict(id=0, file_name='e.png', height=4, width=5),
              dict(id=1, file_name='a.png', height=H, width=W)]
    write_coco(root, [ann(0, 0, [[0, 0, 2, 0, 2, 2, 0, 2]], 4.0)], images=images)
    ds = build(root)
    assert [ds.get_data_info(i)['file_name'] for i in range(2)] == ['e.png', 'a.png']
    np.testing.assert_array_equal(ds[0]['gt_seg_map'], np.zeros((4, 5), np.uint8))
    label = ds[1]['gt_seg_map']
    assert (label[0:2, 0:2] == 2).all()      # category id 0 is 'B' = class 2, not background
    assert label.sum() == 8


def test_filter_empty_gt(root):
    images = [dict(id=0, file_name='e.png', height=4, width=5),
              dict(id=1, file_name='a.png', height=H, width=W)]
    write_coco(root, [ann(0, 0, [B], 4.0)], images=images)
    assert len(build(root, filter_cfg=dict(filter_empty_gt=True))) == 1
    assert len(build(root, filter_cfg=dict(filter_empty_gt=True), test_mode=True)) == 2


def test_test_split_from_coco_without_annotations_list_and_folder(root):
    images = [dict(id=5, file_name='z.png', height=3, width=4),
              dict(id=6, file_name='a.png', height=H, width=W)]
    write_coco(root, [], images=images, name='test.json')
    infer = [dict(type='LoadImageFromFile'), dict(type='PackSegInputs')]
    ds = CocoSemanticDataset(ann_file='test.json', data_root=root, test_mode=True,
                             data_prefix=dict(img_path='images'), pipeline=infer,
                             metainfo=dict(classes=CLASSES))
    assert [d['file_name'] for d in ds.load_data_list()] == ['z.png', 'a.png']  # file order
    assert ds[0]['inputs'].shape == (3, 3, 4)
    # a list of images, no annotation file; LoadCocoAnnotations gives background
    with open(osp.join(root, 'list.txt'), 'w') as f:
        f.write('a.png\nz.png\n')
    ds = CocoSemanticDataset(split_file='list.txt', data_root=root, img_suffix='.png',
                             data_prefix=dict(img_path='images'), test_mode=True,
                             metainfo=dict(classes=CLASSES),
                             pipeline=[dict(type='LoadImageFromFile'),
                                       dict(type='LoadCocoAnnotations')])
    assert [ds.get_data_info(i)['file_name'] for i in range(2)] == ['a.png', 'z.png']
    np.testing.assert_array_equal(ds[1]['gt_seg_map'], np.zeros((3, 4), np.uint8))
    # a folder, listed and sorted
    ds = CocoSemanticDataset(data_root=root, img_suffix='.png', test_mode=True,
                             data_prefix=dict(img_path='images'),
                             metainfo=dict(classes=CLASSES))
    assert [ds.get_data_info(i)['file_name'] for i in range(2)] == ['a.png', 'z.png']


def test_split_file_selects_images_in_list_order(root):
    images = [dict(id=i, file_name=f'{n}.png', height=H, width=W)
              for i, n in enumerate('abc')]
    write_coco(root, [ann(1, 5, [A], 25.0, image_id=2)], images=images)
    with open(osp.join(root, 'fold.txt'), 'w') as f:
        f.write('c.png\na.png\n')
    ds = build(root, split_file='fold.txt')
    assert [ds.get_data_info(i)['file_name'] for i in range(2)] == ['c.png', 'a.png']
    assert ds[0]['gt_seg_map'].sum() == 25
    with open(osp.join(root, 'fold.txt'), 'w') as f:
        f.write('nope.png\n')
    with pytest.raises(CocoFormatError, match=r"fold.txt: line 1: 'nope.png' is not"):
        build(root, split_file='fold.txt')


def test_data_list_is_small_serialised_and_picklable(root):
    write_coco(root, [ann(21, 0, [B], 4.0), ann(20, 5, [A], 25.0), ann(22, 9, [C], 16.0)])
    ds = build(root, serialize_data=True)
    info = ds.get_data_info(0)
    assert [a['id'] for a in info['coco_anns']] == [20, 22, 21]      # area_desc order
    # B (rows 1-2, cols 2-3) as vertical spans (column, row_start, row_stop)
    np.testing.assert_array_equal(info['coco_anns'][2]['spans'], [[2, 1, 3], [3, 1, 3]])
    assert len(pickle.dumps(info)) < 2000
    again = pickle.loads(pickle.dumps(ds))
    np.testing.assert_array_equal(again[0]['gt_seg_map'], EXPECTED_AREA)


# --------------------------------------------------------------------------- bad input

def test_missing_annotation_file(root):
    with pytest.raises(CocoFormatError, match=r'nope\.json: annotation file not found'):
        build(root, ann_file='nope.json')


def test_missing_image_raises_or_is_counted(root):
    images = [dict(id=1, file_name='a.png', height=H, width=W),
              dict(id=2, file_name='gone.png', height=H, width=W)]
    write_coco(root, [ann(1, 5, [A], 25.0)], images=images)
    import os
    os.remove(osp.join(root, 'images', 'gone.png'))
    with pytest.raises(CocoFormatError, match=r'gone\.png: image file not found \(image id 2'):
        build(root)
    ds = build(root, on_bad='skip')
    assert len(ds) == 1 and ds.skip_report.counts == {'missing image': 1}


def test_category_not_in_class_list_names_image_and_annotation(root):
    write_coco(root, [ann(1, 5, [A], 25.0), ann(77, 3, [B], 4.0)])
    with pytest.raises(CocoFormatError) as err:
        build(root)
    msg = str(err.value)
    assert "image 'a.png' (id 1), annotation 77" in msg and "category 'D' (id 3)" in msg
    assert '\n' not in msg
    ds = build(root, on_bad='skip')
    assert ds.skip_report.counts == {'category not in classes': 1}
    assert ds[0]['gt_seg_map'].sum() == 25


@pytest.mark.parametrize('segmentation,reason', [
    ('not a polygon', 'neither a polygon list nor an RLE'),
    (dict(counts=[1, 2]), 'neither a polygon nor an RLE'),
    ([[1, 2, 'x', 4, 5, 6]], 'not a flat list'),
    ([], 'empty polygon list'),
    (dict(size=[9, 9], counts=[81]), r'RLE size \[9, 9\] differs'),
    (dict(size=[H, W], counts=[5, 3]), 'RLE counts sum to 8 pixels'),
])
def test_bad_segmentations(root, segmentation, reason):
    write_coco(root, [ann(40, 5, segmentation, 1.0)])
    with pytest.raises(CocoFormatError, match=r"ann\.json: image 'a\.png' \(id 1\), "
                       r'annotation 40: .*' + reason):
        build(root)
    assert build(root, on_bad='skip').skip_report.total == 1


def test_degenerate_polygons(root):
    write_coco(root, [ann(50, 5, [[1, 1, 3, 3]], 0.0)])          # 2 points (pycocotools:
    with pytest.raises(CocoFormatError, match=r'annotation 50: degenerate polygon 0'):
        build(root)                                              # a bbox!) -> refused
    # skip drops only the degenerate polygon of a multi-polygon annotation, and counts it
    write_coco(root, [ann(51, 5, [[1, 1, 3, 3, 5], [0, 0, 2, 0, 2, 2, 0, 2]], 4.0)])
    ds = build(root, on_bad='skip')
    assert ds.skip_report.counts == {'degenerate polygon': 1}
    assert ds[0]['gt_seg_map'].sum() == 4
    assert 'degenerate polygon' in ds.skip_report.summary()


def test_an_annotation_that_covers_no_pixel_is_bad(root):
    """A polygon wholly outside its 7x6 image painted nothing but was counted as
    painted (round G); now it is a bad annotation: refused, or skipped and counted."""
    write_coco(root, [ann(70, 5, [[100, 100, 120, 100, 120, 120]], 200.0),
                      ann(71, 0, [B], 4.0)])
    with pytest.raises(CocoFormatError, match=r"image 'a\.png' \(id 1\), annotation 70: "
                       r'covers no pixel of the 7x6 image \(points x 100\.\.120, '
                       r'y 100\.\.120\)'):
        build(root)
    ds = build(root, on_bad='skip')
    assert ds.skip_report.counts == {'no pixel': 1}
    assert (ds[0]['gt_seg_map'] != 0).sum() == 4  # B alone (rows 1-2, cols 2-3)


def test_unknown_image_and_category_ids(root):
    write_coco(root, [ann(60, 5, [A], 1.0, image_id=99)])
    with pytest.raises(CocoFormatError, match=r'annotation 60: image_id 99 is not in'):
        build(root)
    write_coco(root, [ann(61, 42, [A], 1.0)])
    with pytest.raises(CocoFormatError, match=r'annotation 61: category_id 42 is not in'):
        build(root)


def test_image_size_differs_from_json(root):
    write_coco(root, [ann(1, 5, [A], 25.0)],
               images=[dict(id=1, file_name='a.png', height=H, width=W)])
    cv2.imwrite(osp.join(root, 'images', 'a.png'), np.zeros((W, H, 3), np.uint8))  # rotated
    with pytest.raises(CocoFormatError, match=r'a\.png: image is 6x7 \(width x height\) but '
                       r'the annotation file says 7x6 \(image id 1\)'):
        build(root)[0]
    assert build(root, load_image=False)[0]['gt_seg_map'].shape == (H, W)


def test_class_list_must_start_with_background(root):
    write_coco(root, [])
    with pytest.raises(ValueError, match='class 0 must be the background'):
        build(root, metainfo=dict(classes=('A', 'Background')))
    with pytest.raises(ValueError, match="draw_order must be one of"):
        build(root, draw_order='random')
    ds = build(root, metainfo=dict(classes=('bg', 'A')), background_name='bg')
    assert ds[0]['gt_seg_map'].sum() == 0


def test_transform_needs_a_size():
    with pytest.raises(CocoFormatError, match='image size unknown'):
        LoadCocoAnnotations()(dict(img_path='x.png', coco_anns=[], height=None,
                                   width=None))


def test_window_painting_equals_full_decode_on_random_polygons():
    """Polygons partly outside the image, touching borders, several per annotation
    (runs that wrap from one column to the next included)."""
    from mmseg_ext.datasets.coco_rle import encode_segmentation, paint_spans, rle_to_spans
    rng = np.random.default_rng(0)
    for _ in range(300):
        h, w = (int(v) for v in rng.integers(3, 40, 2))
        polys = []
        for _ in range(int(rng.integers(1, 3))):
            n = int(rng.integers(3, 8))
            cx, cy = rng.uniform(-5, w + 5), rng.uniform(-5, h + 5)
            r = rng.uniform(0.5, 25)
            pts = np.stack([cx + rng.uniform(-r, r, n), cy + rng.uniform(-r, r, n)], 1)
            half = rng.random() < 0.5                  # half-integer or float coordinates
            polys.append((np.round(pts * 2) / 2 if half else pts).ravel().tolist())
        counts, _ = encode_segmentation(polys, h, w)
        expected = np.full((h, w), 9, np.uint8)
        full = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polys, h, w)))
        expected[full == 1] = 4
        got = np.full((h, w), 9, np.uint8)
        paint_spans(got, rle_to_spans(counts, h), 4)
        np.testing.assert_array_equal(got, expected)
