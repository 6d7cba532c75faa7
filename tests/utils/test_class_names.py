"""The class lists of the configs are the ones of mmseg_ext.utils.class_names, and the
data sets default to them."""
import os.path as osp

import pytest
from conftest import REPO
from mmengine.config import Config

from mmseg_ext.utils.class_names import (
    HAND_BONE_CLASSES,
    HAND_BONE_PALETTE,
    PORT_CLASSES,
    PORT_PALETTE,
    TRASH_CLASSES,
    TRASH_PALETTE,
    random_palette,
)


@pytest.mark.parametrize('base, classes, palette', [
    ('trash_coco.py', TRASH_CLASSES, TRASH_PALETTE),
])
def test_config_class_lists_match(base, classes, palette):
    cfg = Config.fromfile(osp.join(REPO, 'custom_configs', '_base_', 'datasets', base))
    assert tuple(cfg.classes) == classes
    assert [list(c) for c in cfg.palette] == palette


def test_datasets_default_to_the_lists():
    from mmseg_ext.datasets import HandBoneDataset, PortStructuresDataset
    assert HandBoneDataset.METAINFO['classes'] == HAND_BONE_CLASSES
    assert HandBoneDataset.METAINFO['palette'] == HAND_BONE_PALETTE
    assert PortStructuresDataset.METAINFO['classes'] == PORT_CLASSES
    assert PortStructuresDataset.METAINFO['palette'] == PORT_PALETTE


def test_lists_are_well_formed():
    assert len(HAND_BONE_CLASSES) == 29 and HAND_BONE_CLASSES[0] == 'finger-1'
    assert HAND_BONE_CLASSES[-2:] == ('Radius', 'Ulna')
    for classes, palette in ((HAND_BONE_CLASSES, HAND_BONE_PALETTE),
                             (TRASH_CLASSES, TRASH_PALETTE), (PORT_CLASSES, PORT_PALETTE)):
        assert len(set(classes)) == len(classes) == len(palette)
        assert all(len(c) == 3 and all(0 <= v <= 255 for v in c) for c in palette)
    # the hand-bone colours stay the ones shipped before the lists moved here (first and
    # last recorded from that release), so saved overlays keep their colours
    assert HAND_BONE_PALETTE[0] == [241, 50, 169] and HAND_BONE_PALETTE[28] == [87, 91, 137]
    assert all(40 <= v <= 255 for c in HAND_BONE_PALETTE for v in c)
    # other seeds give other, equally reproducible colours
    assert random_palette(5, seed=3) == random_palette(5, seed=3) != random_palette(5)
