"""Flips that know left from right: lateral class pairs swap their channels when a
multi-label sample is flipped, flipped TTA views are swapped back before the merge, and a
config that flips lateral classes without swapping them is warned about."""
import numpy as np
import pytest
import torch
from mmengine.config import Config

from mmseg_ext.utils.class_names import class_pair_indices, lateral_pairs, mirror_name

CHEST = ('right_lung', 'left_lung', 'heart', 'right_clavicle', 'left_clavicle')


def test_lateral_pairs_by_name():
    assert lateral_pairs(CHEST) == [('right_lung', 'left_lung'),
                                    ('right_clavicle', 'left_clavicle')]
    assert lateral_pairs(['L-kidney', 'R-kidney', 'LeftHand', 'RightHand', 'liver']) == [
        ('L-kidney', 'R-kidney'), ('LeftHand', 'RightHand')]
    assert mirror_name('Radius') == '' and mirror_name('Left Hand') == 'Right Hand'
    assert class_pair_indices([('right_lung', 'left_lung')], CHEST, 'w') == ((0, 1),)
    with pytest.raises(ValueError, match="'lung' is not one of the classes"):
        class_pair_indices([('right_lung', 'lung')], CHEST, 'w')


def test_multilabel_flip_swaps_the_lateral_channels():
    """2x4 mask, classes right_lung, left_lung, heart: a right lung on the left half of
    row 0 and the heart at the far right of row 1. Flipped horizontally, the lung is on
    the right half of row 0 and is a *left* lung; the heart moves to column 0."""
    import mmseg_ext  # noqa: F401
    from mmseg_ext.datasets.transforms import MultiLabelRandomFlip
    mask = np.zeros((2, 4, 3), np.uint8)
    mask[0, 0:2, 0] = 1          # right_lung
    mask[1, 3, 2] = 1            # heart
    expected = np.zeros((2, 4, 3), np.uint8)
    expected[0, 2:4, 1] = 1      # now left_lung, mirrored
    expected[1, 0, 2] = 1        # heart, mirrored
    flip = MultiLabelRandomFlip(prob=1.0, direction='horizontal')
    out = flip(dict(img=np.zeros((2, 4, 3), np.uint8), gt_seg_map=mask.copy(),
                    flip_swap_pairs=((0, 1),), img_shape=(2, 4)))
    assert np.array_equal(out['gt_seg_map'], expected)
    # without pairs it is the stock flip: the channel stays right_lung
    out = flip(dict(img=np.zeros((2, 4, 3), np.uint8), gt_seg_map=mask.copy(),
                    img_shape=(2, 4)))
    assert out['gt_seg_map'][0, 2:4, 0].tolist() == [1, 1]
    # a vertical flip keeps left and right
    vflip = MultiLabelRandomFlip(prob=1.0, direction='vertical')
    out = vflip(dict(img=np.zeros((2, 4, 3), np.uint8), gt_seg_map=mask.copy(),
                     flip_swap_pairs=((0, 1),), img_shape=(2, 4)))
    assert out['gt_seg_map'][1, 0:2, 0].tolist() == [1, 1]


def _view(logits, flip, pairs=((0, 1),)):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    s = SegDataSample(metainfo=dict(flip=flip, flip_direction='horizontal' if flip else None,
                                    flip_swap_pairs=pairs, ori_shape=(1, 2)))
    s.seg_logits = PixelData(data=logits)
    return s


def test_tta_adds_a_flipped_left_object_to_the_left_class():
    """A left-only object at pixel 0: the plain view says left_lung; the flipped view
    (un-flipped in space by the segmentor) says right_lung, because in the mirrored image
    the left lung looked like a right one. Merged: left, not half and half."""
    from mmseg.registry import MODELS

    import mmseg_ext  # noqa: F401
    model = MODELS.build(dict(
        type='MultiLabelEncoderDecoder',
        backbone=dict(type='ResNetV1c', depth=18, stem_channels=8, base_channels=8,
                      num_stages=1, out_indices=(0,), dilations=(1,), strides=(1,)),
        decode_head=dict(type='MultiLabelFCNHead', in_channels=8, channels=4, num_convs=1,
                         num_classes=3, loss_decode=[dict(type='MultiLabelBCELoss')]),
        test_cfg=dict(mode='whole', threshold=0.5)))
    tta = MODELS.build(dict(type='MultiLabelSegTTAModel', module=model))
    plain = torch.full((3, 1, 2), -10.0)
    plain[1, 0, 0] = 10.0           # left_lung at pixel 0
    flipped = torch.full((3, 1, 2), -10.0)
    flipped[0, 0, 0] = 10.0         # right_lung at pixel 0 in the mirrored view
    merged = tta.merge_preds([[_view(plain, False), _view(flipped, True)]])[0]
    probs = merged.seg_logits.data.sigmoid()
    assert probs[1, 0, 0] > 0.99 and probs[0, 0, 0] < 0.01
    assert merged.pred_sem_seg.data[:, 0, 0].tolist() == [0, 1, 0]
    # without the pairs the flipped view would split the object between the sides
    merged = tta.merge_preds([[_view(plain, False, ()), _view(flipped, True, ())]])[0]
    assert merged.seg_logits.data.sigmoid()[:2, 0, 0] == pytest.approx([0.5, 0.5],
                                                                       abs=1e-3)


def _chest_config(flip_type='MultiLabelRandomFlip', named=True):
    metainfo = dict(classes=CHEST)
    if named:
        metainfo['flip_swap_classes'] = [('right_lung', 'left_lung'),
                                         ('right_clavicle', 'left_clavicle')]
    return Config(dict(
        model=dict(type='MultiLabelEncoderDecoder'),
        train_dataloader=dict(dataset=dict(type='HandBoneDataset', metainfo=metainfo,
                                           pipeline=[dict(type=flip_type, prob=0.5)]))))


def test_a_flip_without_the_swap_is_warned_about():
    import mmseg_ext  # noqa: F401
    from mmseg_ext.config.tta import lateral_flip_problem
    assert lateral_flip_problem(_chest_config()) is None
    problem = lateral_flip_problem(_chest_config(named=False))
    assert 'right_lung/left_lung, right_clavicle/left_clavicle' in problem
    assert 'flip_swap_classes' in problem
    assert 'use MultiLabelRandomFlip' in lateral_flip_problem(_chest_config('RandomFlip'))
    # the hand-bone classes have no sides: nothing to say
    cfg = _chest_config(named=False)
    cfg.train_dataloader.dataset.metainfo = None
    assert lateral_flip_problem(cfg) is None


def test_dataset_hands_the_pairs_to_every_sample(tmp_path):
    from mmseg_ext.datasets import HandBoneDataset
    from mmseg_ext.datasets.synthetic.hand_bone import make_handbone_dataset
    from mmseg_ext.utils.class_names import HAND_BONE_CLASSES
    from mmseg_ext.utils.errors import ConfigError
    make_handbone_dataset(str(tmp_path / 'hb'), num_patients=1, images_per_patient=1,
                          size=(32, 32), num_test_patients=0, seed=1)
    root = str(tmp_path / 'hb' / 'train')
    pair = ('Trapezium', 'Trapezoid')  # not lateral, but any pair of names works
    ds = HandBoneDataset(data_root=root, metainfo=dict(classes=HAND_BONE_CLASSES,
                                                       flip_swap_classes=[pair]))
    info = ds.get_data_info(0)
    assert info['flip_swap_pairs'] == ((HAND_BONE_CLASSES.index(pair[0]),
                                        HAND_BONE_CLASSES.index(pair[1])),)
    assert 'flip_swap_pairs' not in HandBoneDataset(data_root=root).get_data_info(0)
    with pytest.raises(ConfigError, match="'Lunate2' is not one of the classes"):
        HandBoneDataset(data_root=root, metainfo=dict(flip_swap_classes=[('Lunate',
                                                                          'Lunate2')]))


def test_inference_reads_the_pairs_from_the_config():
    import mmseg_ext  # noqa: F401
    from mmseg_ext.inference.predictor import flip_swap_pairs_of
    from mmseg_ext.utils.errors import ConfigError
    assert flip_swap_pairs_of(_chest_config(), CHEST) == ((0, 1), (3, 4))
    assert flip_swap_pairs_of(_chest_config(named=False), CHEST) == ()
    with pytest.raises(ConfigError, match='flip_swap_classes'):
        flip_swap_pairs_of(_chest_config(), CHEST[:3])
