"""Test-time augmentation from the configs: views at the test scale, the right merge, and
``tools/test.py --tta`` loading a checkpoint for every config family."""
import glob
import logging
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from config_smoke import SHRINK
from conftest import REPO, run_tool
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope

from mmseg_ext.config.tta import check_tta_config, config_test_pipeline, config_tta_pipeline
from mmseg_ext.datasets.transforms.pipeline_geometry import (
    resized_shape,
    tta_ratios,
    tta_scale_mismatch,
    tta_views,
)
from mmseg_ext.utils.errors import ConfigError

pytestmark = pytest.mark.stacks

SHIPPED = sorted(p for p in glob.glob(osp.join(REPO, 'custom_configs', '**', '*.py'),
                                      recursive=True) if '_base_' not in p)

# mmseg's stock pattern: ratios applied to the original image, whatever the test scale
STOCK_TTA = [
    dict(type='LoadImageFromFile'),
    dict(type='TestTimeAug', transforms=[
        [dict(type='Resize', scale_factor=r, keep_ratio=True) for r in (0.75, 1.0, 1.25)],
        [dict(type='RandomFlip', prob=0., direction='horizontal'),
         dict(type='RandomFlip', prob=1., direction='horizontal')],
        [dict(type='PackSegInputs')]]),
]
TEST_512 = [dict(type='LoadImageFromFile'),
            dict(type='Resize', scale=(512, 512), keep_ratio=True),
            dict(type='PackSegInputs')]


@pytest.fixture(autouse=True)
def _scope():
    init_default_scope('mmseg')


def test_upernet_beit_views_are_ratios_of_the_512_test_scale(tmp_path):
    """The real pipeline on a real 2048x2048 file: views 410, 512, 640 (0.8/1/1.25 x 512:
    the default ratios kept inside the training range 0.8-1.25), each flipped and not."""
    from mmengine.dataset import Compose
    cfg = Config.fromfile(osp.join(REPO, 'custom_configs', 'upernet_beit.py'))
    img = str(tmp_path / 'ID001' / 'image1.png')
    osp.isdir(osp.dirname(img)) or __import__('os').makedirs(osp.dirname(img))
    cv2.imwrite(img, np.full((2048, 2048), 90, np.uint8))
    tta = config_tta_pipeline(cfg, 'upernet_beit.py')
    data = Compose(tta)(dict(img_path=img))
    shapes = sorted((tuple(s.img_shape), bool(s.flip)) for s in data['data_samples'])
    assert shapes == [((410, 410), False), ((410, 410), True), ((512, 512), False),
                      ((512, 512), True), ((640, 640), False), ((640, 640), True)]
    assert all(tuple(s.ori_shape) == (2048, 2048) for s in data['data_samples'])
    # the simulation (no image decoded) agrees with the real pipeline
    assert resized_shape(config_test_pipeline(cfg), (2048, 2048)) == (512, 512)
    assert sorted(v.shape for v in tta_views(tta, (2048, 2048))) == \
        [(410, 410)] * 2 + [(512, 512)] * 2 + [(640, 640)] * 2


def test_stock_tta_pattern_is_reported_with_the_sizes():
    # 2048 px image: test scale 512, views 1536/2048/2560 = 3, 4 and 5 times it
    problem = tta_scale_mismatch(TEST_512, STOCK_TTA)
    assert problem is not None
    assert 'for a 2048x2048 image the test pipeline gives 512x512' in problem
    assert '1536x1536 (3.00x), 2048x2048 (4.00x), 2560x2560 (5.00x)' in problem
    assert tta_ratios(STOCK_TTA) == (0.75, 1.0, 1.25)
    # the same views behind the test resize are fine; so is a test pipeline that keeps
    # the size with the stock views
    fixed = [STOCK_TTA[0], TEST_512[1], STOCK_TTA[1]]
    assert tta_scale_mismatch(TEST_512, fixed) is None
    assert tta_scale_mismatch([TEST_512[0], TEST_512[2]], STOCK_TTA) is None


def test_non_square_test_scale_is_checked_per_side():
    test = [dict(type='Resize', scale=(480, 360), keep_ratio=True)]
    tta = [dict(type='Resize', scale=(480, 360), keep_ratio=True),
           dict(type='TestTimeAug', transforms=[[dict(type='Resize', scale_factor=0.5,
                                                      keep_ratio=True)]])]
    # 768x1024 (H, W) -> 360x480 -> 180x240 at the named ratio 0.5
    assert resized_shape(test, (768, 1024)) == (360, 480)
    assert [v.shape for v in tta_views(tta, (768, 1024))] == [(180, 240)]
    assert tta_scale_mismatch(test, tta) is None
    # a view at a ratio the pipeline does not name
    tta[1]['transforms'][0][0]['scale_factor'] = 0.5
    assert tta_scale_mismatch([dict(type='Resize', scale=(960, 720), keep_ratio=True)],
                              tta) is not None


@pytest.mark.slow
def test_every_shipped_config_has_tta_views_at_its_test_scale():
    checked = 0
    for path in SHIPPED:
        cfg = Config.fromfile(path)
        assert 'tta_model' in cfg and 'tta_pipeline' not in cfg, path  # built, not written
        assert tta_scale_mismatch(config_test_pipeline(cfg),
                                  config_tta_pipeline(cfg, path)) is None, path
        checked += 1
    assert checked == len(SHIPPED) >= 20


def _warnings(caplog_records):
    return [r.getMessage() for r in caplog_records if r.levelno >= logging.WARNING]


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def log_capture():
    logger = MMLogger.get_current_instance()
    handler = _Capture()
    logger.addHandler(handler)
    yield handler.records
    logger.removeHandler(handler)


def test_multilabel_model_gets_the_multilabel_merge(log_capture):
    import mmseg_ext  # noqa: F401  (registers the models)
    path = osp.join(REPO, 'custom_configs', 'demo',
                    'unet-s5-tiny_multilabel_1xb4-1500i_handbone-synth-128x128.py')
    cfg = Config.fromfile(path)
    cfg.tta_model = dict(type='SegTTAModel')  # what default_runtime.py leaves
    check_tta_config(cfg, path)
    assert cfg.tta_model.type == 'MultiLabelSegTTAModel'
    msgs = _warnings(log_capture)
    assert len(msgs) == 1 and 'multi-label' in msgs[0] and 'SegTTAModel' in msgs[0]


def test_softmax_model_with_multilabel_merge_is_refused():
    import mmseg_ext  # noqa: F401
    path = osp.join(REPO, 'custom_configs', 'demo', 'fcn_r18-tiny_shapes-64x80.py')
    cfg = Config.fromfile(path)
    cfg.tta_model = dict(type='MultiLabelSegTTAModel')
    with pytest.raises(ConfigError, match='softmax segmentor'):
        check_tta_config(cfg, path)
    cfg = Config.fromfile(path)
    cfg.tta_model = None
    with pytest.raises(ConfigError, match='needs tta_model'):
        check_tta_config(cfg, path)
    cfg = Config.fromfile(path)
    for key in ('test_pipeline', 'test_dataloader'):
        cfg._cfg_dict.pop(key)
    with pytest.raises(ConfigError, match='needs a test pipeline'):
        check_tta_config(cfg, path)


def test_misplaced_views_warn_at_start(log_capture):
    path = osp.join(REPO, 'custom_configs', 'upernet_beit.py')
    cfg = Config.fromfile(path)
    check_tta_config(cfg, path)
    assert _warnings(log_capture) == []
    del cfg.tta_pipeline[1]  # (built by the check) the stock pattern: no resize before
    check_tta_config(cfg, path)
    msgs = _warnings(log_capture)
    assert len(msgs) == 1 and 'the TTA views are' in msgs[0] and '1638x1638' in msgs[0]


# --- tools/test.py --tta for each config family, with a checkpoint of its model ------

def _cfg_option(key, value):
    text = repr(value).replace(' ', '')
    return f'{key}={text}'


def _save_checkpoint(config, options, path, seed=123):
    """A checkpoint of the config's model with weights unlike a fresh init (a TTA model
    that silently kept its own random weights would then score differently)."""
    from mmseg_ext.config.model import build_bare_model
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(options)
    torch.manual_seed(seed)
    model = build_bare_model(cfg)
    state = model.state_dict()
    for k, v in state.items():
        if v.dtype.is_floating_point and 'bias' in k:
            state[k] = v + 0.05 * torch.randn_like(v)
    torch.save({'state_dict': state, 'meta': {}}, path)
    return path


#: family -> (config under custom_configs/, shrink options, test scale or None,
#: hand-bone folds: data under train/ with 3 folds)
FAMILIES = {
    'handbone': ('upernet_beit.py', 'beit', (64, 64), True),
    'demo': ('demo/unet-s5-tiny_multilabel_1xb4-1500i_handbone-synth-128x128.py', None,
             (48, 48), True),
    'trash': ('trash/deeplabv3_r101-d8_4xb4-20k_trash-512x512.py', 'resnet', (64, 64), False),
    'folders': ('demo/fcn_r18-tiny_shapes-64x80.py', None, None, False),
}


def _family_options(family, root):
    """(config, options) for a family on its tiny synthetic data."""
    config, shrink, scale, hand_bone = FAMILIES[family]
    opts = dict(SHRINK[shrink]) if shrink else {}
    for loader in ('val_dataloader', 'test_dataloader'):
        opts[f'{loader}.dataset.data_root'] = osp.join(root, 'train') if hand_bone else root
        if hand_bone:
            opts[f'{loader}.dataset.num_folds'] = 3
        if scale:
            opts[f'{loader}.dataset.pipeline.1.scale'] = scale
        opts.update({f'{loader}.num_workers': 0, f'{loader}.persistent_workers': False})
    opts['log_level'] = 'WARNING'
    return osp.join(REPO, 'custom_configs', config), opts


@pytest.fixture(scope='module')
def family_data(tmp_path_factory):
    from mmseg_ext.datasets.synthetic import make_shapes_dataset
    from mmseg_ext.datasets.synthetic.coco import make_trash_coco
    from mmseg_ext.datasets.synthetic.hand_bone import make_handbone_dataset
    base = tmp_path_factory.mktemp('ttadata')
    make_handbone_dataset(str(base / 'handbone'), num_patients=3, images_per_patient=1,
                          size=(64, 80), num_test_patients=1, seed=3, progress=False)
    make_trash_coco(str(base / 'trash'), num_train=1, num_val=2, num_test=1, size=(64, 64))
    make_shapes_dataset(str(base / 'folders'), num_train=1, num_val=2, size=(32, 40),
                        seed=2)
    return {'handbone': str(base / 'handbone'), 'demo': str(base / 'handbone'),
            'trash': str(base / 'trash'), 'folders': str(base / 'folders')}


def _metrics(stdout):
    line = [x for x in stdout.splitlines() if x.startswith('test metrics:')][-1]
    return dict(kv.split('=') for kv in line[len('test metrics: '):].split(', '))


@pytest.mark.slow
def test_tools_test_tta_runs_upernet_beit(family_data, tmp_path):
    """The README's step: ``tools/test.py custom_configs/upernet_beit.py CKPT --tta``."""
    config, opts = _family_options('handbone', family_data['handbone'])
    ckpt = _save_checkpoint(config, opts, str(tmp_path / 'beit.pth'))
    args = ['--cfg-options', *[_cfg_option(k, v) for k, v in opts.items()]]
    proc = run_tool('tools/test.py', config, ckpt, '--tta', '--work-dir',
                    str(tmp_path / 'w'), *args, env={'OMP_NUM_THREADS': '1'})
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = _metrics(proc.stdout)
    assert 0.0 <= float(metrics['mDice']) <= 1.0
    assert 'the TTA views are' not in proc.stderr + proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize('family', ['handbone', 'demo', 'trash', 'folders'])
def test_tta_loads_the_checkpoint_for_each_family(family, family_data, tmp_path, fast_cpu):
    """tools/test.py's path (test_config + test_checkpoint) with --tta: the checkpoint
    loads into the wrapped model; a one-view TTA reproduces the plain test exactly, and
    the six views give another (valid) score."""
    from mmseg_ext.training.runner import test_checkpoint, test_config
    config, opts = _family_options(family, family_data[family])
    ckpt = _save_checkpoint(config, opts, str(tmp_path / 'model.pth'))

    def run(tta, **extra):
        options = {**opts, **extra,
                   'visualizer.name': f'vis_tta_{family}_{tta}_{len(extra)}_{tmp_path.name}'}
        cfg = test_config(config, ckpt, work_dir=str(tmp_path / 'w'), tta=tta,
                          cfg_options=options)
        return test_checkpoint(cfg, ckpt, config=config)

    plain = run(False)
    single = run(True, tta_views=dict(scales=(1.0,), flip=False))
    full = run(True)
    key = 'mDice' if family in ('handbone', 'demo') else 'mIoU'
    assert single[key] == pytest.approx(plain[key], abs=1e-6)
    assert 0.0 <= full[key] <= (1.0 if key == 'mDice' else 100.0)


@pytest.mark.slow
def test_inference_tta_stores_probabilities_at_the_test_scale(family_data, tmp_path,
                                                               fast_cpu):
    """``tools/inference.py --tta`` with ``--out-size native``: the views are 0.9-1.1x
    the test scale (the demo's training range; no flip, as training never flips), the
    stored probabilities are at the test scale (as without TTA)."""
    from mmseg_ext.inference.predictor import build_predictor
    config, opts = _family_options('demo', family_data['demo'])
    ckpt = _save_checkpoint(config, opts, str(tmp_path / 'model.pth'))
    img = sorted(glob.glob(osp.join(family_data['demo'], 'train', 'DCM', '*', '*.png')))[0]
    plain, ori = build_predictor(config, ckpt, cfg_options=opts).predict(img)
    tta, ori_tta = build_predictor(config, ckpt, cfg_options=opts, tta=True).predict(img)
    assert ori == ori_tta == (64, 80)
    # 64x80 (H, W) at scale 48 keeping the ratio: 38x48
    assert plain.shape == tta.shape == (29, 38, 48)
    assert not np.allclose(plain, tta)  # three views averaged, not the plain view
    assert tta.min() >= 0.0 and tta.max() <= 1.0


@pytest.mark.slow
def test_thresholds_by_name_take_the_checkpoints_class_names(family_data, tmp_path,
                                                              fast_cpu):
    """Round V-6 and V-2: a threshold given by class name (``test_cfg.threshold=
    {'finger-1': ...}``) without ``test_cfg.classes`` resolves against the checkpoint's
    ``meta.dataset_meta.classes`` in inference (before: "the model has no class names")
    and in tools/test.py's path; a ``test_cfg.classes`` in another order than the data
    set is refused when the config is read (before: the threshold moved to Ulna)."""
    from mmseg_ext.inference.predictor import build_predictor
    from mmseg_ext.training.runner import test_checkpoint, test_config
    from mmseg_ext.utils.class_names import HAND_BONE_CLASSES
    config, opts = _family_options('demo', family_data['demo'])
    ckpt = _save_checkpoint(config, opts, str(tmp_path / 'model.pth'))
    saved = torch.load(ckpt, map_location='cpu')  # named as mmengine saves a checkpoint
    saved['meta'] = {'dataset_meta': {'classes': list(HAND_BONE_CLASSES)}}
    torch.save(saved, ckpt)

    def derived(name, test_cfg):
        path = tmp_path / name
        path.write_text(f"_base_ = ['{config}']\nmodel = dict(test_cfg=dict(_delete_=True, "
                        f"mode='whole', **{test_cfg!r}))\n")
        return str(path)
    by_name = derived('by_name.py', dict(threshold={'finger-1': 0.4}))
    predictor = build_predictor(by_name, ckpt, cfg_options=opts)
    assert predictor.model.class_thresholds().tolist() == pytest.approx([0.4] + [0.5] * 28)

    def test(path):
        options = {**opts, 'visualizer.name': f'vis_names_{osp.basename(path)}_{tmp_path.name}'}
        cfg = test_config(path, ckpt, work_dir=str(tmp_path / 'w'), cfg_options=options)
        return test_checkpoint(cfg, ckpt, config=path)
    plain = test(derived('plain.py', {}))
    never = test(derived('never.py', dict(threshold={'finger-1': 1.0})))  # p > 1 never
    assert never['Dice.finger-1'] < 1e-4 < plain['Dice.finger-1']  # Dice's smoothing term
    assert never['Dice.Ulna'] == plain['Dice.Ulna']  # the other channels are unchanged

    reversed_ = derived('reversed.py', dict(threshold={'finger-1': 0.999},
                                           classes=list(HAND_BONE_CLASSES[::-1])))
    with pytest.raises(ConfigError) as info:
        test_config(reversed_, ckpt, work_dir=str(tmp_path / 'w'), cfg_options=opts)
    assert str(info.value) == (
        f'{reversed_}: model.test_cfg.classes is not the class list of '
        "test_dataloader.dataset in order: class 0 is 'Ulna' there but 'finger-1' in the "
        'class list of test_dataloader.dataset, so a threshold given by name would apply '
        'to another channel (test_cfg.classes is not needed when the names are known)')
    with pytest.raises(ConfigError) as info:
        build_predictor(reversed_, ckpt, cfg_options=opts)
    assert str(info.value).startswith(f'{reversed_}: model.test_cfg.classes is not the '
                                      'class list of test_dataloader.dataset in order')
