"""tools/coco_to_masks.py: PNGs equal a pycocotools reference, idempotent, no overwrite."""
import os.path as osp

import cv2
import numpy as np
import pytest
from coco_reference import load_coco, reference_label_maps
from conftest import run_tool

from mmseg_ext.datasets.synthetic.coco import make_trash_coco
from mmseg_ext.preparation.coco_to_masks import coco_to_masks
from mmseg_ext.utils.class_names import TRASH_CLASSES
from mmseg_ext.utils.errors import MmsegExtError


def reference(ann_file, order):
    return reference_label_maps(load_coco(ann_file), TRASH_CLASSES, order)


@pytest.fixture
def trash(tmp_path):
    return make_trash_coco(str(tmp_path / 'trash'), num_train=4, num_val=0, num_test=0,
                           size=(40, 48), seed=3)['train']


def test_tool_writes_reference_masks_refuses_overwrite_and_is_idempotent(trash, tmp_path):
    out = str(tmp_path / 'masks')
    classes = ','.join(TRASH_CLASSES)
    args = ['tools/coco_to_masks.py', trash, out, '--classes', classes, '--no-progress']
    proc = run_tool(*args)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1].startswith('wrote 4 label maps (')
    ref = reference(trash, 'area_desc')
    first = {}
    for file_name, expected in ref.items():
        path = osp.join(out, osp.splitext(file_name)[0] + '.png')
        np.testing.assert_array_equal(cv2.imread(path, cv2.IMREAD_UNCHANGED), expected)
        first[path] = open(path, 'rb').read()
    assert sum(m.max() > 0 for m in ref.values()) == 3          # one image has no objects

    proc = run_tool(*args)
    assert proc.returncode == 1 and proc.stderr.count('\n') == 1
    assert 'masks: already exists (use --force to replace it)' in proc.stderr
    proc = run_tool(*args, '--force')
    assert proc.returncode == 0
    assert all(open(p, 'rb').read() == data for p, data in first.items())


def test_drawing_order_and_default_classes(trash, tmp_path):
    summary = coco_to_masks(trash, str(tmp_path / 'm'), classes=TRASH_CLASSES,
                            draw_order='polygon_length', progress=False)
    assert summary.images == 4 and summary.empty_images == 1
    for file_name, expected in reference(trash, 'polygon_length').items():
        got = cv2.imread(osp.join(str(tmp_path / 'm'), osp.splitext(file_name)[0] + '.png'),
                         cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(got, expected)
    # default classes: background + categories in id order ('Paper' has id 0 -> 1)
    coco_to_masks(trash, str(tmp_path / 'd'), progress=False)
    with pytest.raises(MmsegExtError, match='first class must be the background'):
        coco_to_masks(trash, str(tmp_path / 'e'), classes=['Paper', 'Background'])


def test_image_size_check(trash, tmp_path):
    root = osp.dirname(trash)
    cv2.imwrite(osp.join(root, 'batch_01_vt/0001.jpg'), np.zeros((48, 40, 3), np.uint8))
    with pytest.raises(MmsegExtError, match=r'0001\.jpg: image is 40x48 .* says 48x40'):
        coco_to_masks(trash, str(tmp_path / 'm'), classes=TRASH_CLASSES, img_root=root,
                      progress=False)


def test_a_category_id_written_as_text_is_named_as_text(trash, tmp_path):
    """"category_id": "1" where the category's id is the number 1: the message says
    why it does not match (it read as if category 1 did not exist)."""
    import json
    coco = json.load(open(trash))
    ann = coco['annotations'][0]
    number = ann['category_id']
    ann['category_id'] = str(number)
    path = tmp_path / 'text_id.json'
    path.write_text(json.dumps(coco))
    proc = run_tool('tools/coco_to_masks.py', str(path), str(tmp_path / 'masks'),
                    '--no-progress')
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert f"category_id '{number}' is not in \"categories\" (the category id {number} " \
        'there is a number, this one text)' in lines[0], lines[0]
    assert not (tmp_path / 'masks').exists()


def test_an_image_id_written_as_text_is_named_as_text(trash, tmp_path):
    """Round U, U-13: "image_id": "1" where the image's id is the number 1 read as
    "image_id 1 is not in images"; it gets the category_id explanation, with the value
    quoted, in coco_to_masks and in kfold coco (the other reader of annotation ids)."""
    import json
    coco = json.load(open(trash))
    ann = coco['annotations'][0]
    number = ann['image_id']
    assert isinstance(number, int)
    ann['image_id'] = str(number)
    path = tmp_path / 'text_id.json'
    path.write_text(json.dumps(coco))
    hint = f'(the image id {number} there is a number, this one text)'
    proc = run_tool('tools/coco_to_masks.py', str(path), str(tmp_path / 'masks'),
                    '--no-progress')
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"error: {path}: annotation {ann['id']}: image_id '{number}' is not in \"images\" "
        + hint]
    assert not (tmp_path / 'masks').exists()
    proc = run_tool('tools/kfold.py', 'coco', str(path), '-k', '2', '--out',
                    str(tmp_path / 'folds'), '--no-progress')
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"error: {path}: annotation {ann['id']} names image id '{number}', which is not in "
        'images ' + hint]
