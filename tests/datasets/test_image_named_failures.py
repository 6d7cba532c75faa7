"""ImageNamedFailuresMixin: a sample's pipeline failure is one error naming its image."""
import cv2
import numpy as np
import pytest
from mmengine.registry import init_default_scope

from mmseg_ext.datasets import CocoSemanticDataset, HandBoneDataset, PortStructuresDataset
from mmseg_ext.datasets.image_named_failures import ImageNamedFailuresMixin
from mmseg_ext.datasets.synthetic.port import make_port_dataset
from mmseg_ext.utils.errors import DataFileError

init_default_scope('mmseg')


class _Base:
    """Stands in for mmengine's BaseDataset: one item whose pipeline raises."""

    def __init__(self, info, exc):
        self.info, self.exc = info, exc

    def get_data_info(self, idx):
        return dict(self.info)

    def prepare_data(self, idx):
        raise self.exc


class _Dataset(ImageNamedFailuresMixin, _Base):
    pass


@pytest.mark.parametrize('cls', [CocoSemanticDataset, HandBoneDataset,
                                 PortStructuresDataset])
def test_registered_datasets_use_the_mixin(cls):
    assert issubclass(cls, ImageNamedFailuresMixin)
    assert cls.prepare_data is ImageNamedFailuresMixin.prepare_data


def test_failure_names_the_image(tmp_path):
    narrow = str(tmp_path / 'narrow.png')
    cv2.imwrite(narrow, np.zeros((1, 3000, 3), np.uint8))
    ds = _Dataset(dict(img_path=narrow), ValueError('cv2 said no'))
    with pytest.raises(DataFileError, match=r'narrow\.png: the pipeline cannot process '
                       r'this 1x3000 .*ValueError: cv2 said no.*rounds the short side'):
        ds.prepare_data(0)


def test_item_without_image_and_domain_errors(tmp_path):
    with pytest.raises(DataFileError, match=r'^item 3: the pipeline failed '
                       r'\(KeyError'):
        _Dataset({}, KeyError('img')).prepare_data(3)
    own = DataFileError('already named')
    with pytest.raises(DataFileError, match='^already named$'):
        _Dataset({}, own).prepare_data(0)


def test_dataset_sample_passes_through(tmp_path):
    root = str(tmp_path / 'port')
    make_port_dataset(root, num_labeled=1, num_unlabeled=0, num_test=0, size=(24, 40))
    ds = PortStructuresDataset(data_root=root, pipeline=[dict(type='LoadImageFromFile')])
    assert ds[0]['img'].shape == (24, 40, 3)
