"""Round AJ of bad inputs (issue 28): pseudo-labels read from a part of their folder or
without their report, and a ground-truth folder that holds the images themselves."""
import os
import os.path as osp

import cv2
import numpy as np
import pytest

from mmseg_ext.utils.errors import DataError


def _image(path, value):
    os.makedirs(osp.dirname(path), exist_ok=True)
    cv2.imwrite(path, np.full((8, 10, 3), value, np.uint8))
    return path


def _label_png_pseudo_labels(tmp_path):
    """Images ``images/{train,val}/a.png`` (other pixels each), multi-class
    probabilities of both as inference writes them (each image's SHA-256 recorded), and
    their label-PNG pseudo-labels ``pl/{train,val}/a.png``."""
    from mmseg_ext.io.paths import file_sha256
    from mmseg_ext.io.probs import ProbFolderWriter
    from mmseg_ext.workflows.pseudo_label import pseudo_label_folder
    images = tmp_path / 'images'
    probs = np.stack([np.full((8, 10), 0.9), np.full((8, 10), 0.1)]).astype(np.float32)
    with ProbFolderWriter(str(tmp_path / 'probs'), ['sky', 'road'], 'multi-class') as w:
        for split, value in (('train', 40), ('val', 200)):
            path = _image(str(images / split / 'a.png'), value)
            w.write(probs, f'{split}/a.png', (8, 10), img_sha256=file_sha256(path))
        w.commit()
    pl = str(tmp_path / 'pl')
    pseudo_label_folder(str(tmp_path / 'probs'), pl, fmt='label-png', pixel_conf=0.0,
                        progress=False)
    return str(images), pl


def _folder_dataset(img_dir, seg_dir):
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS
    init_default_scope('mmseg')
    return DATASETS.build(dict(
        type='BaseSegDataset', data_prefix=dict(img_path=img_dir, seg_map_path=seg_dir),
        img_suffix='.png', seg_map_suffix='.png', metainfo=dict(classes=('sky', 'road')),
        pipeline=[]))


def test_labels_read_from_part_of_a_pseudo_label_folder_are_checked(tmp_path):
    """AJ-1: a data set reading the labels of ``pl/val`` (inference had run on the
    whole image tree, so the report names ``val/a.png``) with other images named
    ``a.png`` matched no report entry by name and was trained on, exit 0. The check now
    goes from each label file to the report entry that wrote it: the val image passes,
    the train image (same name, other picture) is refused naming both."""
    from mmseg_ext.training.pseudo_label_images import check_dataset_pseudo_images
    images, pl = _label_png_pseudo_labels(tmp_path)
    check_dataset_pseudo_images(_folder_dataset(osp.join(images, 'val'),
                                                osp.join(pl, 'val')))
    with pytest.raises(DataError, match=r'train/a.png: not the image the pseudo-label '
                                        r'.*pl/val/a.png was made from \(val/a.png'):
        check_dataset_pseudo_images(_folder_dataset(osp.join(images, 'train'),
                                                    osp.join(pl, 'val')))


def test_a_pseudo_label_folder_without_its_report_or_with_foreign_labels(tmp_path):
    """AJ-3: with ``pseudo_labels.json`` deleted, a training on the folder took any
    images (the folder's own manifest still listed the report). It is refused, and so
    is a label file the report does not list (put there by hand)."""
    from mmseg_ext.training.pseudo_label_images import check_dataset_pseudo_images
    images, pl = _label_png_pseudo_labels(tmp_path)
    extra = osp.join(pl, 'val', 'b.png')
    cv2.imwrite(extra, np.zeros((8, 10), np.uint8))
    _image(osp.join(images, 'val', 'b.png'), 90)
    with pytest.raises(DataError, match='val/b.png: a label in the pseudo-label folder '
                                        '.* does not list'):
        check_dataset_pseudo_images(_folder_dataset(osp.join(images, 'val'),
                                                    osp.join(pl, 'val')))
    os.remove(extra)
    os.remove(osp.join(images, 'val', 'b.png'))
    os.remove(osp.join(pl, 'pseudo_labels.json'))
    with pytest.raises(DataError, match='pl: a pseudo-label folder without its '
                                        'pseudo_labels.json'):
        check_dataset_pseudo_images(_folder_dataset(osp.join(images, 'val'),
                                                    osp.join(pl, 'val')))


def test_images_are_never_taken_for_their_own_labels(tmp_path):
    """AJ-2: ``tune_thresholds.py --gt`` (and ``visualize --gt``) given a hand-bone
    root without ``outputs_json/``, or the image folder itself, read the X-rays as label
    maps: a misleading "label value 33", or (dark images) thresholds tuned against the
    images, exit 0. A root with ``DCM/`` and no polygons is refused by name; a mask file
    that is the image itself (its SHA-256 recorded by the probabilities) is refused."""
    from mmseg_ext.io.ground_truth import GroundTruth
    from mmseg_ext.io.paths import file_sha256
    root = tmp_path / 'test'
    image = str(root / 'DCM' / 'ID1' / 'a.png')
    os.makedirs(osp.dirname(image))
    cv2.imwrite(image, np.full((8, 10), 1, np.uint8))  # values a label map could hold
    with pytest.raises(DataError, match='a hand-bone data root .* without outputs_json/'):
        GroundTruth(str(root), ['a', 'b'])
    gt = GroundTruth(str(root / 'DCM'), ['a', 'b'])
    with pytest.raises(DataError, match='a.png: the image ID1/a itself, not its labels'):
        gt.load('ID1/a', (8, 10), file_sha256(image))
    assert gt.load('ID1/a', (8, 10)).shape == (2, 8, 10)  # no digest: nothing to compare
