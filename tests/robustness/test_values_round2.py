"""Values at the boundary, second round: sizes, links, duplicates, class names, ground-truth
values and COCO numbers, each through the tools' ``main`` in-process.

Every cell asserts the exit status, exactly one ``error:`` line naming the file (no
traceback) and that every file is unchanged (``snapshot`` of test_bad_inputs). The rules
live in :mod:`mmseg_ext.io.probs` (the probability-folder boundary: sizes, links,
duplicates, version, dtype), :mod:`mmseg_ext.utils.class_names` (class names),
:mod:`mmseg_ext.io.ground_truth` (mask and label values), :mod:`mmseg_ext.datasets.coco_rle`
and :mod:`mmseg_ext.datasets.coco_index` (COCO numbers), :mod:`mmseg_ext.utils.readers`
(folders and files named as what they are).
"""
import json
import os
import os.path as osp
import shutil
import sys

import cv2
import numpy as np
import pytest

TESTS = osp.dirname(osp.dirname(osp.abspath(__file__)))
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)

from probs_helpers import two_image_world, write_images, write_prob_folder  # noqa: E402

from robustness.test_bad_inputs import (  # noqa: E402
    CLASSES,
    assert_refused,
    run_main,
    snapshot,
)
from robustness.test_values import rewrite_npz  # noqa: E402


@pytest.fixture
def world(tmp_path):
    w = two_image_world(tmp_path, CLASSES, ('probs', 'probs2'))
    softmax = {k: (np.stack([1 - p[1], p[1]]), size)  # classes sum to 1
               for k, (p, size) in w['probs_by_image'].items()}
    w['mc'] = write_prob_folder(tmp_path / 'mc', softmax, ['bg', 'fg'], task='multi-class')
    w['labels'] = str(tmp_path / 'labels')
    os.makedirs(osp.join(w['labels'], 'ID1'))
    for name in ('a', 'b'):
        cv2.imwrite(osp.join(w['labels'], 'ID1', name + '.png'), np.zeros((8, 8), np.uint8))
    w['gt'] = str(tmp_path / 'gt')
    os.makedirs(osp.join(w['gt'], 'ID1'))
    for name in ('a', 'b'):
        np.save(osp.join(w['gt'], 'ID1', name + '.npy'), np.ones((2, 8, 8), np.uint8))
    return w


def refused(w, tool, argv, code, *words):
    """Run ``tool``; assert the refusal and that no file anywhere changed."""
    before = snapshot(w['root'])
    status, lines = run_main(tool, argv)
    assert_refused(status, lines, code, *words)
    assert snapshot(w['root']) == before


def edit_index(folder, change):
    path = osp.join(folder, 'index.json')
    with open(path) as f:
        index = json.load(f)
    change(index)
    with open(path, 'w') as f:
        json.dump(index, f)
    return path


def every_tool(w, probs):
    """``(tool, argv)`` of every tool that reads a probability folder."""
    out = osp.join(w['root'], 'out')
    return [('make_submission.py', [probs, '--format', 'handbone', '--out', out + '.csv',
                                    '--no-progress']),
            ('ensemble.py', [probs, w['probs2'], '--out-dir', out, '--no-progress']),
            ('tune_thresholds.py', [probs, '--gt', w['gt'], '--out', out + '.json',
                                    '--no-progress']),
            ('visualize.py', ['overlay', probs, '--img-dir', w['imgs'], '--out-dir', out,
                              '--no-progress'])]


# ------------------------------------------------------------------ S1 sizes
def test_overlay_refuses_an_image_of_another_size(world):
    imgs = write_images(osp.join(world['root'], 'imgs89'), {'ID1/a.png': (8, 9),
                                                              'ID1/b.png': (8, 9)})
    refused(world, 'visualize.py', ['overlay', world['probs'], '--img-dir', imgs,
                                    '--out-dir', osp.join(world['root'], 'o'),
                                    '--no-progress'],
            1, 'ID1/a.npz', 'probabilities are for a 8x8', 'imgs89/ID1/a.png is 8x9')


def test_confusion_refuses_a_label_of_another_size(world):
    cv2.imwrite(osp.join(world['labels'], 'ID1', 'a.png'), np.zeros((8, 9), np.uint8))
    refused(world, 'visualize.py', ['confusion', '--probs', world['mc'], '--gt',
                                    world['labels'], '--out',
                                    osp.join(world['root'], 'cm.png'), '--no-progress'],
            1, 'mc/ID1/a.npz', 'labels/ID1/a.png is 8x9')


# ------------------------------------------------------------------ S2 links out
@pytest.mark.parametrize('tool', range(4))
def test_a_file_entry_linking_outside_is_refused(world, tool):
    outside = shutil.copytree(world['probs'], osp.join(world['root'], 'outside'))
    target = osp.join(world['probs'], 'ID1', 'a.npz')
    os.remove(target)
    os.symlink(osp.join(outside, 'ID1', 'a.npz'), target)
    name, argv = every_tool(world, world['probs'])[tool]
    refused(world, name, argv, 1, 'index.json: images[0].file', 'symbolic link')


# ------------------------------------------------------------------ S3 duplicates
@pytest.mark.parametrize('tool', range(4))
def test_an_image_listed_twice_is_refused(world, tool):
    def dup(index):
        index['images'][1] = index['images'][0]
    edit_index(world['probs'], dup)
    name, argv = every_tool(world, world['probs'])[tool]
    refused(world, name, argv, 1, 'index.json: images[1]', 'ID1/a', 'listed twice')


@pytest.mark.parametrize('value', [3, 1.0, True, '2'])
def test_num_images_must_count_the_entries(world, value):
    edit_index(world['probs'], lambda index: index.update(num_images=value))
    name, argv = every_tool(world, world['probs'])[0]
    refused(world, name, argv, 1, 'index.json', 'num_images')


# ------------------------------------------------------------------ S4 / R3 class names
@pytest.mark.parametrize('classes,words', [
    (['A', 'A'], ["'A' appears twice"]), (['', 'B'], ['class 0', 'empty']),
    ([' ', 'B'], ['white space']), (['C\nD', 'B'], ['control character']),
    (['A', 'B '], ['class 1', 'white space']), ([], ['empty']), ('AB', ['not a list'])])
@pytest.mark.parametrize('tool', range(4))
def test_bad_class_names_in_the_index(world, classes, words, tool):
    edit_index(world['probs'], lambda index: index.update(classes=classes))
    name, argv = every_tool(world, world['probs'])[tool]
    refused(world, name, argv, 1, 'probs/index.json: classes', *words)


def test_bad_class_names_in_a_file_without_index(world):
    os.remove(osp.join(world['probs'], 'index.json'))
    for name in ('a', 'b'):
        rewrite_npz(osp.join(world['probs'], 'ID1', name + '.npz'), classes=['A', 'A'])
    name, argv = every_tool(world, world['probs'])[0]
    refused(world, name, argv, 1, 'ID1/a.npz: classes', 'appears twice')


def test_the_writer_refuses_bad_class_names(tmp_path):
    from mmseg_ext.io.probs import ProbFolderWriter
    from mmseg_ext.utils.errors import DataError
    for classes in (['A', 'A'], ['A', ''], ['A\tB'], [' A']):
        with pytest.raises(DataError, match='classes: '):
            ProbFolderWriter(str(tmp_path / 'o'), classes, 'multi-label')
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize('text', ['["A", ""]', '["A", "A"]', '["A\\u0000"]', 'A\n A\n'])
def test_class_list_files_follow_the_same_rule(world, text):
    path = osp.join(world['root'], 'classes.txt')
    with open(path, 'w') as f:
        f.write(text)
    csv = osp.join(world['root'], 's.csv')
    with open(csv, 'w') as f:
        f.write('image_name,class,rle\n')
    refused(world, 'make_submission.py', ['--check', csv, '--format', 'handbone',
                                          '--classes', path], 1, 'classes.txt')


# ------------------------------------------------------------------ R4 / R5 / W3 versions, dtype
@pytest.mark.parametrize('version', [True, 1.0, '1', 2])
def test_file_version_must_be_the_integer_1(world, version):
    os.remove(osp.join(world['probs'], 'index.json'))
    rewrite_npz(osp.join(world['probs'], 'ID1', 'a.npz'), version=version)
    name, argv = every_tool(world, world['probs'])[0]
    refused(world, name, argv, 1, 'ID1/a.npz', f'unsupported version {version!r}')


@pytest.mark.parametrize('version', [True, 1.0])
def test_index_version_must_be_the_integer_1(world, version):
    edit_index(world['probs'], lambda index: index.update(version=version))
    name, argv = every_tool(world, world['probs'])[1]
    refused(world, name, argv, 1, 'probs/index.json', 'unsupported version')


@pytest.mark.parametrize('dtype', ['float64', {'x': 1}, 8])
@pytest.mark.parametrize('tool', range(4))
def test_index_dtype_is_checked_and_blamed_on_the_index(world, dtype, tool):
    edit_index(world['probs'], lambda index: index.update(dtype=dtype))
    name, argv = every_tool(world, world['probs'])[tool]
    refused(world, name, argv, 1, 'probs/index.json: dtype')


# ------------------------------------------------------------------ R1 ground truth
@pytest.mark.parametrize('values,words', [
    (np.full((2, 8, 8), np.nan), ['mask value nan']),
    (np.full((2, 8, 8), 0.4), ['mask value 0.4']),
    (np.full((2, 8, 8), -1, np.int8), ['mask value -1']),
    (np.full((2, 8, 8), 2, np.uint8), ['mask value 2']),
    (np.ones((2, 8, 8), np.complex64), ['complex64'])])
def test_npy_ground_truth_values(world, values, words):
    np.save(osp.join(world['gt'], 'ID1', 'a.npy'), values)
    name, argv = every_tool(world, world['probs'])[2]
    refused(world, name, argv, 1, 'gt/ID1/a.npy', *words)


def test_label_png_value_beyond_the_classes(world):
    label = np.zeros((8, 8), np.uint8)
    label[3, 3] = 7
    cv2.imwrite(osp.join(world['labels'], 'ID1', 'b.png'), label)
    refused(world, 'visualize.py', ['confusion', '--probs', world['mc'], '--gt',
                                    world['labels'], '--out',
                                    osp.join(world['root'], 'cm.png'), '--no-progress'],
            1, 'labels/ID1/b.png', 'label value 7', '2 classes')


def test_label_png_ignore_index_is_accepted(world):
    label = np.zeros((8, 8), np.uint8)
    label[3, 3] = 255
    cv2.imwrite(osp.join(world['labels'], 'ID1', 'b.png'), label)
    from mmseg_ext.workflows.visualize import confusion_from_probs
    cm, _ = confusion_from_probs(world['mc'], world['labels'], progress=False)
    assert cm.sum() == 2 * 64 - 1


# ------------------------------------------------------------------ T2 / R2 / W4 COCO
def coco_file(w, segmentation=None, height=16, width=16, **ann):
    seg = [[1, 1, 10, 1, 10, 10]] if segmentation is None else segmentation
    coco = dict(images=[dict(id=1, file_name='a.jpg', height=height, width=width)],
                categories=[dict(id=1, name='x')],
                annotations=[dict(dict(id=5, image_id=1, category_id=1, iscrowd=0,
                                       segmentation=seg), **ann)])
    path = osp.join(w['root'], 'coco.json')
    with open(path, 'w') as f:
        json.dump(coco, f)
    return path


@pytest.mark.parametrize('coords,words', [
    ([[1e300, 1, 10, 1, 10, 10]], ['x coordinate 1e+300']),
    ([[1, 3e9, 10, 1, 10, 10]], ['y coordinate 3e+09']),
    ([[1, 1, -1e12, 1, 10, 10]], ['x coordinate -1e+12']),
    ([[1, 1, 1025, 1, 10, 10]], ['x coordinate 1025', '|x| <= 1024'])])
def test_coco_polygon_coordinates_far_outside(world, coords, words):
    refused(world, 'coco_to_masks.py', [coco_file(world, coords),
                                        osp.join(world['root'], 'm'), '--no-progress'],
            1, 'coco.json', 'annotation 5', 'far outside', *words)


def test_coco_polygon_inside_the_margin_is_accepted(world):
    from mmseg_ext.datasets.coco_rle import encode_segmentation
    counts, dropped = encode_segmentation([[-1024, -1024, 1024, -1024, 1024, 1024]], 16, 16)
    assert counts and dropped == 0
    counts, _ = encode_segmentation([[0, 0, 4000, 0, 4000, 4000]], 1000, 300)  # 4 x 1000
    assert counts


@pytest.mark.parametrize('height,width', [(100000, 100000), (70000, 70000)])
def test_coco_image_size_beyond_the_pixel_cap(world, height, width):
    refused(world, 'coco_to_masks.py', [coco_file(world, height=height, width=width),
                                        osp.join(world['root'], 'm'), '--no-progress'],
            1, 'coco.json', "'a.jpg'", 'more than the limit')


@pytest.mark.parametrize('iscrowd', [7, None, True, 0.5])
def test_coco_iscrowd_is_0_or_1(world, iscrowd):
    refused(world, 'coco_to_masks.py', [coco_file(world, iscrowd=iscrowd),
                                        osp.join(world['root'], 'm'), '--no-progress'],
            1, 'coco.json', 'annotation 5', f'iscrowd is {iscrowd!r}')


def test_coco_negative_rle_counts_are_named(world):
    seg = dict(size=[16, 16], counts=[-4, 260])
    refused(world, 'coco_to_masks.py', [coco_file(world, seg),
                                        osp.join(world['root'], 'm'), '--no-progress'],
            1, 'coco.json', 'negative run length -4')


# ------------------------------------------------------------------ W1 / W2 / W6 kinds
def test_check_names_a_folder_as_a_folder(world):
    folder = osp.join(world['root'], 'dir.csv')
    os.makedirs(folder)
    refused(world, 'make_submission.py', ['--check', folder, '--format', 'handbone'],
            1, 'dir.csv', 'a folder')


def test_check_names_a_fifo_as_a_fifo(world):
    fifo = osp.join(world['root'], 'fifo.csv')
    os.mkfifo(fifo)
    status, lines = run_main('make_submission.py', ['--check', fifo, '--format', 'handbone'])
    assert_refused(status, lines, 1, 'fifo.csv', 'FIFO')


def test_overlay_img_dir_that_is_a_file(world):
    path = osp.join(world['root'], 'imgs', 'ID1', 'a.png')
    refused(world, 'visualize.py', ['overlay', world['probs'], '--img-dir', path,
                                    '--out-dir', osp.join(world['root'], 'o'),
                                    '--no-progress'],
            1, 'imgs/ID1/a.png: not a folder', 'image folder')


def test_a_folder_named_like_an_image_is_named_as_a_folder(world):
    path = osp.join(world['imgs'], 'ID1', 'a.png')
    os.remove(path)
    os.makedirs(path)
    refused(world, 'make_submission.py', [world['probs'], '--format', 'handbone', '--out',
                                          osp.join(world['root'], 's.csv'), '--img-dir',
                                          world['imgs'], '--no-progress'],
            1, 'imgs/ID1/a.png', 'a folder')


@pytest.mark.parametrize('bad', [float('nan'), float('inf'), -float('inf')])
@pytest.mark.parametrize('dtype', ['uint8', 'float16'])
def test_non_finite_model_output_is_refused_not_stored(tmp_path, bad, dtype):
    """Hostile round A, cases 10/11: a NaN checkpoint's output was stored as all-0 uint8
    (or NaN float16) with exit 0, and self-training trained a student on it."""
    import numpy as np

    from mmseg_ext.io.probs import ProbFolderWriter
    from mmseg_ext.utils.errors import DataError
    probs = np.full((2, 4, 4), 0.5, np.float32)
    probs[1, 2, 3] = bad
    with pytest.raises(DataError, match='ID1/a.png: the model produced non-finite'):
        with ProbFolderWriter(str(tmp_path / 'p'), ['A', 'B'], 'multi-label',
                              dtype=dtype) as writer:
            writer.write(probs, 'ID1/a.png', (4, 4))
            writer.commit()
    assert not (tmp_path / 'p').exists() and [p.name for p in tmp_path.iterdir()] == []
