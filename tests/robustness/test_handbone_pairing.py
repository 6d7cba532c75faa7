"""A hand-bone annotation belongs to one image (round H): a JSON whose ``filename``
names another image (two files swapped) and a JSON whose image is missing were used or
dropped with exit 0. Now each is one error naming the JSON, wherever the layout is read:
the data set (training), the ground truth of the scoring tools, and ``kfold``."""
import glob
import os
import os.path as osp

import pytest
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS

from mmseg_ext.datasets.synthetic.hand_bone import make_handbone_dataset
from mmseg_ext.io.ground_truth import GroundTruth
from mmseg_ext.preparation.kfold import kfold_handbone
from mmseg_ext.utils.class_names import HAND_BONE_CLASSES
from mmseg_ext.utils.errors import DataFileError

init_default_scope('mmseg')


@pytest.fixture
def root(tmp_path):
    make_handbone_dataset(str(tmp_path / 'hb'), num_patients=2, images_per_patient=2,
                          size=(32, 32), num_test_patients=0, progress=False)
    return str(tmp_path / 'hb' / 'train')


def dataset(root):
    return DATASETS.build(dict(
        type='HandBoneDataset', data_root=root, pipeline=[
            dict(type='LoadImageFromFileChecked'),
            dict(type='LoadHandBoneAnnotations', rasterize=True)]))


def test_swapped_annotation_files_are_refused(root):
    right, left = sorted(glob.glob(osp.join(root, 'outputs_json', 'ID001', '*.json')))
    os.rename(right, right + '.tmp')
    os.rename(left, right)
    os.rename(right + '.tmp', left)
    stem_l = osp.splitext(osp.basename(left))[0]
    stem_r = osp.splitext(osp.basename(right))[0]
    ds = dataset(root)
    index = next(i for i in range(len(ds)) if stem_r in ds.get_data_info(i)['img_path'])
    with pytest.raises(DataFileError) as err:
        ds[index]
    assert str(err.value) == (f"{right}: written for the image '{stem_l}.png' (its "
                              f'"filename"), but read as the annotation of '
                              f'{osp.join(root, "DCM", "ID001", stem_r + ".png")}')
    gt = GroundTruth(root, HAND_BONE_CLASSES)
    with pytest.raises(DataFileError, match=f'{right}: written for the image'):
        gt.load(f'ID001/{stem_r}', (32, 32))


def test_a_filename_in_another_case_or_folder_is_the_same_image(root):
    """Stems are compared, case aside: ``filename`` may carry a folder or another case."""
    import json
    path = sorted(glob.glob(osp.join(root, 'outputs_json', 'ID001', '*.json')))[0]
    doc = json.load(open(path))
    doc['filename'] = 'C:\\scans\\' + doc['filename'].upper()
    json.dump(doc, open(path, 'w'))
    ds = dataset(root)
    assert all(ds[i]['gt_seg_map'].shape[:2] == (32, 32) for i in range(len(ds)))


def test_an_annotation_without_its_image_is_refused(root, tmp_path):
    image = sorted(glob.glob(osp.join(root, 'DCM', 'ID002', '*.png')))[0]
    os.remove(image)
    stem = osp.splitext(osp.basename(image))[0]
    orphan = osp.join(root, 'outputs_json', 'ID002', stem + '.json')
    message = (f'{orphan}: annotation without its image (expected {image}; 1 such file(s) '
               f'under {osp.join(root, "outputs_json")})')
    with pytest.raises(DataFileError) as err:
        dataset(root)
    assert str(err.value) == message
    with pytest.raises(DataFileError) as err:
        kfold_handbone(root, str(tmp_path / 'splits'), num_folds=2)
    assert str(err.value) == message
    assert not osp.exists(tmp_path / 'splits')
    # a split file lists a subset on purpose: the JSONs it leaves out are not orphans
    split = tmp_path / 'split.txt'
    split.write_text(''.join(f'{osp.relpath(p, osp.join(root, "DCM"))[:-4]}\n'
                             for p in sorted(glob.glob(osp.join(root, 'DCM', '*', '*.png')))))
    ds = DATASETS.build(dict(type='HandBoneDataset', data_root=root, ann_file=str(split),
                             pipeline=[]))
    assert len(ds) == 3
    os.remove(orphan)
    assert len(dataset(root)) == 3
