"""Multi-label (H, W, C) masks through stock and plugin transforms, compared with the
same transform applied to each channel as a 2-D mask."""
import os.path as osp
import tracemalloc

import albumentations as A
import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS, TRANSFORMS

from mmseg_ext.datasets.synthetic import make_handbone_dataset
from mmseg_ext.io.hand_bone_json import (
    rasterize_full,
    rasterize_nearest,
    rasterize_scaled,
)

init_default_scope('mmseg')
C = 29


def random_sample(h=37, w=45, c=C, seed=0):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    mask = rng.integers(0, 2, (h, w, c), dtype=np.uint8)
    return img, mask


def run(transform, img, seg, seed):
    """Apply ``transform`` with numpy's global RNG seeded; return the results dict."""
    np.random.seed(seed)
    results = dict(img=img.copy(), gt_seg_map=seg.copy(), seg_fields=['gt_seg_map'],
                   img_shape=img.shape[:2], ori_shape=img.shape[:2])
    return transform(results)


def per_channel(cfg, img, mask, seed):
    """The transform on the stack and, separately, on every channel as a 2-D mask."""
    stacked = run(TRANSFORMS.build(cfg), img, mask, seed)
    channels = [run(TRANSFORMS.build(cfg), img, np.ascontiguousarray(mask[..., k]),
                    seed)['gt_seg_map'] for k in range(mask.shape[2])]
    return stacked, np.stack(channels, axis=-1)


STOCK = [
    dict(type='Resize', scale=(23, 61), keep_ratio=False),
    dict(type='Resize', scale=(100, 30), keep_ratio=True),
    dict(type='RandomResize', scale=(60, 60), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=(20, 17)),
    dict(type='RandomFlip', prob=1.0, direction=['horizontal', 'vertical', 'diagonal']),
]


@pytest.mark.parametrize('cfg', STOCK, ids=lambda c: c['type'])
@pytest.mark.parametrize('seed', [0, 1, 2])
def test_stock_transforms_match_per_channel(cfg, seed):
    img, mask = random_sample(seed=seed)
    stacked, reference = per_channel(cfg, img, mask, seed)
    out = stacked['gt_seg_map']
    assert out.shape == reference.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out, reference)
    assert set(np.unique(out)) <= {0, 1}
    assert out.shape[:2] == stacked['img'].shape[:2] == tuple(stacked['img_shape'])


def test_stock_rotate_differs_from_per_channel():
    """Why MultiLabelRandomRotate exists: stock fills channels 0, 4, 8, ... with 255
    and the others with 0 (OpenCV reads the number 255 as the Scalar (255, 0, 0, 0)),
    and OpenCV's warp for more than 4 channels rounds some pixels differently."""
    img, mask = random_sample()
    cfg = dict(type='RandomRotate', prob=1.0, degree=(30, 30))
    stacked, reference = per_channel(cfg, img, mask, 0)
    out = stacked['gt_seg_map']
    filled = (reference == 255).all(-1)
    assert filled.any()
    assert (out[filled][:, 0::4] == 255).all() and (out[filled][:, 1] == 0).all()
    inside = (out[~filled] != reference[~filled]).any(-1).mean()
    assert 0 < inside < 0.05


@pytest.mark.parametrize('seed', [0, 3])
@pytest.mark.parametrize('auto_bound', [False, True])
def test_multilabel_rotate_matches_stock_per_channel(seed, auto_bound):
    img, mask = random_sample(seed=seed)
    ours = TRANSFORMS.build(dict(type='MultiLabelRandomRotate', prob=1.0, degree=40,
                                 auto_bound=auto_bound))
    stacked = run(ours, img, mask, seed)
    stock = dict(type='RandomRotate', prob=1.0, degree=40, auto_bound=auto_bound)
    reference = np.stack([run(TRANSFORMS.build(stock), img,
                              np.ascontiguousarray(mask[..., k]), seed)['gt_seg_map']
                          for k in range(C)], -1)
    np.testing.assert_array_equal(stacked['gt_seg_map'], reference)
    assert set(np.unique(stacked['gt_seg_map'])) == {0, 1, 255}
    np.testing.assert_array_equal(
        stacked['img'], run(TRANSFORMS.build(stock), img, mask[..., 0].copy(), seed)['img'])
    assert tuple(stacked['img_shape']) == stacked['img'].shape[:2]


def test_multilabel_rotate_one_channel_keeps_axis():
    img, mask = random_sample(c=1)
    out = run(TRANSFORMS.build(dict(type='MultiLabelRandomRotate', prob=1.0, degree=30)),
              img, mask, 0)['gt_seg_map']
    assert out.shape == (37, 45, 1)


def test_stock_pad_fails_for_many_channels():
    img, mask = random_sample()
    with pytest.raises(Exception):  # noqa: B017  (cv2.error: Scalar of 29 values)
        run(TRANSFORMS.build(dict(type='Pad', size=(64, 48))), img, mask, 0)


@pytest.mark.parametrize('cfg', [
    dict(size=(64, 48)),
    dict(size_divisor=16),
    dict(pad_to_square=True),
    dict(size=(50, 40), pad_val=dict(img=7, seg=200)),
    dict(size_divisor=8, padding_mode='reflect'),
])
@pytest.mark.parametrize('channels', [29, 3, 1])
def test_multilabel_pad_matches_stock_pad_per_channel(cfg, channels):
    img, mask = random_sample(c=channels)
    ours = run(TRANSFORMS.build(dict(type='MultiLabelPad', **cfg)), img, mask, 0)
    stock = [run(TRANSFORMS.build(dict(type='Pad', **cfg)), img,
                 np.ascontiguousarray(mask[..., k]), 0) for k in range(channels)]
    reference = np.stack([s['gt_seg_map'] for s in stock], -1)
    np.testing.assert_array_equal(ours['gt_seg_map'], reference)
    np.testing.assert_array_equal(ours['img'], stock[0]['img'])
    for key in ('pad_shape', 'img_shape', 'pad_fixed_size', 'pad_size_divisor'):
        assert ours[key] == stock[0][key]


# ------------------------------------------------ polygon rasterisation ---------------

def random_polygons(rng, h, w, n=12):
    labels, points = [], []
    for _ in range(n):
        centre = rng.uniform([0, 0], [w, h])
        radius = rng.uniform(1, max(h, w) / 3)
        pts = centre + rng.uniform(-radius, radius, (int(rng.integers(3, 9)), 2))
        pts[:, 0] = pts[:, 0].clip(-1, w)
        pts[:, 1] = pts[:, 1].clip(-1, h)
        labels.append(int(rng.integers(0, 5)))
        points.append(pts)
    return labels, points


def naive_mask(labels, points, h, w, c):
    """Obvious reference: a full-size canvas per polygon, OR-ed into its channel."""
    out = np.zeros((h, w, c), np.uint8)
    for label, pts in zip(labels, points):
        canvas = np.zeros((h, w), np.uint8)
        cv2.fillPoly(canvas, [np.rint(pts).astype(np.int32)], 1)
        out[..., label] |= canvas
    return out


@pytest.mark.parametrize('seed', range(4))
def test_rasterize_full_and_nearest_equal_the_naive_way(seed):
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(20, 90)), int(rng.integers(20, 90))
    labels, points = random_polygons(rng, h, w)
    full = naive_mask(labels, points, h, w, 5)
    np.testing.assert_array_equal(rasterize_full(labels, points, (h, w), 5), full)
    for dst in [(h // 4, w // 4), (h // 3 + 1, w // 2), (2 * h + 1, w + 3), (7, 5)]:
        resized = cv2.resize(full, dst[::-1], interpolation=cv2.INTER_NEAREST)
        np.testing.assert_array_equal(
            rasterize_nearest(labels, points, (h, w), dst, 5), resized)
        scaled = rasterize_scaled(labels, points, (h, w), dst, 5)
        assert scaled.shape == resized.shape and set(np.unique(scaled)) <= {0, 1}


@pytest.fixture(scope='module')
def synth(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('handbone_t'))
    make_handbone_dataset(root, num_patients=3, images_per_patient=2, size=(96, 80),
                          num_test_patients=0, seed=2)
    return osp.join(root, 'train')


def build_dataset(root, pipeline):
    return DATASETS.build(dict(type='HandBoneDataset', data_root=root, pipeline=pipeline))


LOAD = [dict(type='LoadImageFromFile')]


@pytest.mark.parametrize('resize', [
    dict(type='Resize', scale=(40, 40), keep_ratio=True),
    dict(type='Resize', scale=(33, 51), keep_ratio=False),
    dict(type='RandomResize', scale=(64, 64), ratio_range=(0.5, 2.0), keep_ratio=True),
])
def test_deferred_rasterisation_is_bit_identical_to_resizing_the_mask(synth, resize):
    eager = build_dataset(synth, LOAD + [dict(type='LoadHandBoneAnnotations'), resize])
    deferred = build_dataset(synth, LOAD + [
        dict(type='LoadHandBoneAnnotations', rasterize=False), resize,
        dict(type='RasterizePolygons')])
    for i in range(len(eager)):
        np.random.seed(i)
        a = eager[i]
        np.random.seed(i)
        b = deferred[i]
        np.testing.assert_array_equal(a['img'], b['img'])
        np.testing.assert_array_equal(a['gt_seg_map'], b['gt_seg_map'])
        assert b['seg_fields'] == ['gt_seg_map'] and 'gt_polygons' not in b


def test_rasterize_after_flip_or_without_rasteriser_is_an_error(synth):
    flipped = build_dataset(synth, LOAD + [
        dict(type='LoadHandBoneAnnotations', rasterize=False),
        dict(type='RandomFlip', prob=1.0), dict(type='RasterizePolygons')])
    with pytest.raises(ValueError, match='after a flip'):
        flipped[0]
    forgotten = build_dataset(synth, LOAD + [
        dict(type='LoadHandBoneAnnotations', rasterize=False),
        dict(type='PackMultiLabelSegInputs')])
    with pytest.raises(ValueError, match='RasterizePolygons'):
        forgotten[0]


# ----------------------------------------------------------- packing ------------------

def test_pack_multilabel_is_uint8_chw_with_stock_metainfo():
    img, mask = random_sample(h=20, w=30)
    mask[0, 0, 3] = 255
    results = dict(img=img, gt_seg_map=mask, img_path='x.png', seg_map_path='x.json',
                   ori_shape=(20, 30), img_shape=(20, 30))
    packed = TRANSFORMS.build(dict(type='PackMultiLabelSegInputs'))(results)
    data = packed['data_samples'].gt_sem_seg.data
    assert data.dtype == torch.uint8 and data.shape == (C, 20, 30)
    np.testing.assert_array_equal(data.numpy(), mask.transpose(2, 0, 1))
    assert packed['inputs'].shape == (3, 20, 30) and packed['inputs'].dtype == torch.uint8
    np.testing.assert_array_equal(packed['inputs'].numpy(), img.transpose(2, 0, 1))
    meta = packed['data_samples'].metainfo
    for key in ('img_path', 'seg_map_path', 'ori_shape', 'img_shape', 'pad_shape',
                'scale_factor', 'flip', 'flip_direction', 'reduce_zero_label'):
        assert key in meta
    assert meta['flip'] is False and meta['scale_factor'] == (1.0, 1.0)


def test_pack_2d_mask_like_stock():
    img, mask = random_sample(h=8, w=6, c=1)
    mask2d = mask[..., 0] * 3
    ours = TRANSFORMS.build(dict(type='PackMultiLabelSegInputs'))(
        dict(img=img, gt_seg_map=mask2d))['data_samples'].gt_sem_seg.data
    stock = TRANSFORMS.build(dict(type='PackSegInputs'))(
        dict(img=img, gt_seg_map=mask2d))['data_samples'].gt_sem_seg.data
    assert ours.dtype == stock.dtype == torch.int64 and torch.equal(ours, stock)
    one_class = TRANSFORMS.build(dict(type='PackMultiLabelSegInputs', multi_label=True))(
        dict(img=img, gt_seg_map=mask[..., 0]))['data_samples'].gt_sem_seg.data
    assert one_class.dtype == torch.uint8 and one_class.shape == (1, 8, 6)


def test_pack_peak_memory_stays_uint8():
    _, mask = random_sample(h=128, w=96)
    img = np.zeros((128, 96, 3), np.uint8)
    pack = TRANSFORMS.build(dict(type='PackMultiLabelSegInputs'))
    tracemalloc.start()
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    packed = pack(dict(img=img, gt_seg_map=mask))
    peak = tracemalloc.get_traced_memory()[1] - before
    tracemalloc.stop()
    data = packed['data_samples'].gt_sem_seg.data
    assert data.element_size() * data.numel() == mask.nbytes  # 1 byte per label
    # one uint8 copy (plus the small image); an int64 copy alone would be 8x the mask
    assert peak < 1.5 * mask.nbytes, (peak, mask.nbytes)


# ----------------------------------------------------- albumentations ----------------

def albu_results(img, mask):
    return dict(img=img.copy(), gt_seg_map=mask.copy(), seg_fields=['gt_seg_map'],
                img_shape=img.shape[:2], img_path='x.png')


def test_albumentations_clahe_equals_cv2_on_grey_xray():
    rng = np.random.default_rng(0)
    grey = cv2.GaussianBlur(rng.integers(0, 256, (64, 48), dtype=np.uint8), (5, 5), 2)
    bgr = np.repeat(grey[..., None], 3, axis=2)  # how LoadImageFromFile reads an X-ray
    _, mask = random_sample(64, 48)
    t = TRANSFORMS.build(dict(type='Albumentations', transforms=[
        dict(type='CLAHE', clip_limit=(2.0, 2.0), tile_grid_size=(8, 8), p=1.0)]))
    out = t(albu_results(bgr, mask))
    expected = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(grey)
    assert not np.array_equal(expected, grey)
    for k in range(3):
        np.testing.assert_array_equal(out['img'][..., k], expected)
    np.testing.assert_array_equal(out['gt_seg_map'], mask)


def test_albumentations_colour_order_and_masks_untouched():
    img = np.zeros((16, 12, 3), np.uint8)
    img[..., 0] = 10  # B
    img[..., 2] = 200  # R
    mask = np.zeros((16, 12, 3), np.uint8)
    mask[..., 0] = 1  # a 3-channel mask must not be treated as a colour image
    shift = dict(type='RGBShift', r_shift_limit=(40, 40), g_shift_limit=(0, 0),
                 b_shift_limit=(0, 0), p=1.0)
    out = TRANSFORMS.build(dict(type='Albumentations', transforms=[shift]))(
        albu_results(img, mask))
    assert out['img'][0, 0].tolist() == [10, 0, 240]  # the red (BGR index 2) channel
    np.testing.assert_array_equal(out['gt_seg_map'], mask)
    raw = TRANSFORMS.build(dict(type='Albumentations', transforms=[shift],
                                bgr_to_rgb=False))(albu_results(img, mask))
    assert raw['img'][0, 0].tolist() == [50, 0, 200]  # without conversion: BGR[0] moves


def test_albumentations_geometry_updates_img_shape_and_keeps_all_channels():
    img, mask = random_sample(40, 30)
    cfg = dict(type='Albumentations', seed=0, transforms=[
        dict(type='RandomCrop', height=20, width=16, p=1.0),
        dict(type='OneOf', transforms=[dict(type='HorizontalFlip', p=1.0),
                                       dict(type='VerticalFlip', p=1.0)], p=1.0),
    ])
    out = TRANSFORMS.build(cfg)(albu_results(img, mask))
    assert out['img'].shape == (20, 16, 3) and tuple(out['img_shape']) == (20, 16)
    assert out['gt_seg_map'].shape == (20, 16, C) and out['gt_seg_map'].dtype == np.uint8
    # same geometry on image and every mask channel: find the crop + flip in the image
    found = False
    for y in range(21):
        for x in range(15):
            for flip in (lambda a: a[:, ::-1], lambda a: a[::-1]):
                if np.array_equal(flip(img[y:y + 20, x:x + 16]), out['img']):
                    np.testing.assert_array_equal(out['gt_seg_map'],
                                                  flip(mask[y:y + 20, x:x + 16]))
                    found = True
    assert found


def test_albumentations_without_seed_repeats_with_numpy_global_seed():
    """seed=None follows numpy's global generator (the one the runner seeds from
    ``randomness.seed``): the same global seed gives the same crops, another seed
    other crops. Drawing from the OS made two runs of one seed train differently."""
    img, mask = random_sample(40, 30)
    t = TRANSFORMS.build(dict(type='Albumentations', transforms=[
        dict(type='RandomCrop', height=10, width=10, p=1.0)]))

    def crops(global_seed):
        np.random.seed(global_seed)
        return [t(albu_results(img, mask))['img'] for _ in range(6)]

    first, again, other = crops(3), crops(3), crops(4)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(first, other))
    # each call draws anew: six 10x10 crops of a 40x30 image are not all one crop
    assert any(not np.array_equal(first[0], c) for c in first[1:])


def test_albumentations_with_seed_is_its_own_stream():
    """An explicit seed ignores numpy's global generator (albumentations' own stream)."""
    img, mask = random_sample(40, 30)
    cfg = dict(type='Albumentations', seed=7, transforms=[
        dict(type='RandomCrop', height=10, width=10, p=1.0)])
    outs = []
    for global_seed in (0, 1):
        np.random.seed(global_seed)
        t = TRANSFORMS.build(cfg)
        outs.append([t(albu_results(img, mask))['img'] for _ in range(3)])
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)


class _CropSet:
    """Six 10x10 crops of one image, each drawn by the transform in the worker that
    loads it (a data set as the runner builds one: the transform copied per worker)."""

    def __init__(self, transform, img, mask):
        self.transform, self.img, self.mask = transform, img, mask

    def __len__(self):
        return 6

    def __getitem__(self, i):
        return self.transform(albu_results(self.img, self.mask))['img']


def test_albumentations_with_seed_gives_each_worker_its_own_stream():
    """Two data-loader workers with one explicit seed do not draw the same crops (they
    did: each worker held a copy of one generator), and a second run repeats the first."""
    import torch.utils.data
    img, mask = random_sample(40, 30)
    t = TRANSFORMS.build(dict(type='Albumentations', seed=7, transforms=[
        dict(type='RandomCrop', height=10, width=10, p=1.0)]))

    def load():
        loader = torch.utils.data.DataLoader(_CropSet(t, img, mask), batch_size=1,
                                             num_workers=2)
        return [batch[0].numpy() for batch in loader]  # worker 0: items 0, 2, 4

    first, again = load(), load()
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    worker0, worker1 = first[0::2], first[1::2]
    assert any(not np.array_equal(a, b) for a, b in zip(worker0, worker1))
    # one process without workers keeps the seed's own stream
    ref = A.Compose([A.RandomCrop(height=10, width=10, p=1.0)], seed=7)
    fresh = TRANSFORMS.build(dict(type='Albumentations', seed=7, transforms=[
        dict(type='RandomCrop', height=10, width=10, p=1.0)]))
    rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(
        fresh(albu_results(img, mask))['img'],
        cv2.cvtColor(ref(image=rgb)['image'], cv2.COLOR_RGB2BGR))


def test_albumentations_rotate_fills_every_channel_with_ignore():
    img, mask = random_sample(40, 30)
    out = TRANSFORMS.build(dict(type='Albumentations', transforms=[
        dict(type='Rotate', limit=(30, 30), fill_mask=255, p=1.0)]))(albu_results(img, mask))
    seg = out['gt_seg_map']
    border = (seg == 255).any(-1)
    assert border.any() and (seg[border] == 255).all()
    assert set(np.unique(seg[~border])) <= {0, 1}


def test_albumentations_from_a_config_file(tmp_path):
    cfg_file = tmp_path / 'cfg.py'
    cfg_file.write_text("t = dict(type='Albumentations', transforms=[dict(type='CLAHE', "
                        "clip_limit=(2.0, 2.0), p=1.0), dict(type='OneOf', transforms=["
                        "dict(type='RandomBrightnessContrast', p=1.0), "
                        "dict(type='GaussNoise', p=1.0)], p=0.5)])\n")
    t = TRANSFORMS.build(Config.fromfile(str(cfg_file)).t)
    assert isinstance(t.pipeline.transforms[1], A.OneOf)
    img, mask = random_sample(32, 32)
    out = t(albu_results(img, mask))
    np.testing.assert_array_equal(out['gt_seg_map'], mask)
    with pytest.raises(ValueError, match='no transform'):
        TRANSFORMS.build(dict(type='Albumentations', transforms=[dict(type='Nope')]))


# ----------------------------------------------------- full pipeline ------------------

@pytest.mark.parametrize('rasterize', [True, False])
def test_training_pipeline_yields_uint8_chw(synth, rasterize):
    pipeline = LOAD + [dict(type='LoadHandBoneAnnotations', rasterize=rasterize),
                       dict(type='RandomResize', scale=(64, 64), ratio_range=(0.5, 1.5),
                            keep_ratio=True)]
    if not rasterize:
        pipeline.append(dict(type='RasterizePolygons'))
    pipeline += [dict(type='RandomCrop', crop_size=(48, 48)),
                 dict(type='RandomFlip', prob=0.5),
                 dict(type='MultiLabelPad', size=(48, 48)),
                 dict(type='PackMultiLabelSegInputs')]
    ds = build_dataset(synth, pipeline)
    np.random.seed(0)
    for i in range(len(ds)):
        out = ds[i]
        data = out['data_samples'].gt_sem_seg.data
        assert data.dtype == torch.uint8 and data.shape == (C, 48, 48)
        assert set(data.unique().tolist()) <= {0, 1, 255}
        assert out['inputs'].shape == (3, 48, 48)
        meta = out['data_samples'].metainfo
        assert meta['ori_shape'] == (96, 80) and meta['img_path'].endswith('.png')


def recommended_pipelines(scale):
    """docs/handbone.md's train/test pipelines, at ``scale`` instead of 512."""
    train = [
        dict(type='LoadImageFromFileChecked'),
        dict(type='LoadHandBoneAnnotations', rasterize=False),
        dict(type='RandomResize', scale=(scale, scale), ratio_range=(0.8, 1.25),
             keep_ratio=True),
        dict(type='RasterizePolygons'),
        dict(type='RandomCrop', crop_size=(scale, scale)),
        dict(type='RandomFlip', prob=0.5),
        dict(type='MultiLabelRandomRotate', prob=0.5, degree=10),
        dict(type='Albumentations', transforms=[
            dict(type='CLAHE', clip_limit=(2.0, 2.0), p=0.5),
            dict(type='RandomBrightnessContrast', brightness_limit=0.1,
                 contrast_limit=0.1, p=0.5)]),
        dict(type='MultiLabelPad', size=(scale, scale)),
        dict(type='PackMultiLabelSegInputs'),
    ]
    test = [
        dict(type='LoadImageFromFileChecked'),
        dict(type='Resize', scale=(scale, scale), keep_ratio=True),
        dict(type='LoadHandBoneAnnotations'),
        dict(type='PackMultiLabelSegInputs'),
    ]
    return train, test


def test_recommended_pipelines(synth):
    train, test = recommended_pipelines(48)
    np.random.seed(1)
    for i in range(2):
        out = build_dataset(synth, train)[i]
        data = out['data_samples'].gt_sem_seg.data
        assert data.dtype == torch.uint8 and data.shape == (C, 48, 48)
        assert set(data.unique().tolist()) <= {0, 1, 255} and (data == 1).any()
        out = build_dataset(synth, test)[i]
        data = out['data_samples'].gt_sem_seg.data
        assert data.shape == (C, 96, 80)  # ground truth at the original size
        assert out['inputs'].shape == (3, 48, 40)  # 96x80 rescaled to fit 48x48
        assert out['data_samples'].metainfo['scale_factor'] == (0.5, 0.5)
