"""Round X of bad inputs (issue 28): common ``--cfg-options`` overrides of the shipped
configs after round W's component checks, metric names the hooks watch, and values a
class refuses only when it is built. Each test names the finding it closes."""
import os
import os.path as osp
import re

import pytest
import torch
from conftest import CONFIG, data_options, logged_messages, run_tool

from mmseg_ext.utils.errors import ConfigError, InvalidArgumentError

from .cv_fakes import SHAPES
from .test_bad_inputs import run_main

CONFIGS = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
                   'custom_configs')


def load(options, config=SHAPES):
    from mmseg_ext.config.loading import load_config
    return load_config(config, options)


def test_settings_the_shipped_configs_leave_none_or_set_can_be_extended():
    """X-1: ``clip_grad.max_norm`` on a config whose base has ``clip_grad=None``, and a
    key added to an existing ``paramwise_cfg`` or ``custom_keys`` entry, crashed the
    option check (or were refused by mmengine's merge)."""
    deeplab = osp.join(CONFIGS, 'deeplabv3_r101.py')
    cfg = load({'optim_wrapper.clip_grad.max_norm': 10}, deeplab)
    assert cfg.optim_wrapper.clip_grad == dict(max_norm=10)
    cfg = load({'optim_wrapper.clip_grad.type': 'value',  # a setting, not a class
                'optim_wrapper.clip_grad.clip_value': 0.5}, deeplab)
    assert cfg.optim_wrapper.clip_grad == dict(type='value', clip_value=0.5)
    segformer = osp.join(CONFIGS, 'segformer_mit-b2_multilabel_4xb2-20k_handbone-512x512.py')
    before = load({}, segformer).optim_wrapper.paramwise_cfg.custom_keys.head
    cfg = load({'optim_wrapper.paramwise_cfg.custom_keys.head.decay_mult': 0.0}, segformer)
    assert cfg.optim_wrapper.paramwise_cfg.custom_keys.head == dict(before, decay_mult=0.0)
    beit = osp.join(CONFIGS, 'upernet_beit.py')
    cfg = load({'optim_wrapper.paramwise_cfg.decay_rate': 0.8}, beit)
    assert cfg.optim_wrapper.paramwise_cfg.decay_rate == 0.8


@pytest.mark.parametrize('options, expected', [
    # the added keys are arguments of the new type, not of the one it replaces
    ({'optim_wrapper.optimizer.type': 'SGD', 'optim_wrapper.optimizer.momentum': 0.9},
     ('optim_wrapper.optimizer', 'momentum', 0.9)),
    ({'model.decode_head.norm_cfg.type': 'GN', 'model.decode_head.norm_cfg.num_groups': 8},
     ('model.decode_head.norm_cfg', 'num_groups', 8)),
    ({'model.decode_head.loss_decode.type': 'FocalLoss',
      'model.decode_head.loss_decode.gamma': 2.0},
     ('model.decode_head.loss_decode', 'gamma', 2.0)),
    # a layer config's arguments are its builder's (requires_grad, num_features)
    ({'model.backbone.norm_cfg.type': 'SyncBN'}, ('model.backbone.norm_cfg', 'type', 'SyncBN')),
    # arguments the runner gives (loops, schedulers, the TTA wrapper's module)
    ({'train_cfg.type': 'IterBasedTrainLoop'}, ('train_cfg', 'type', 'IterBasedTrainLoop')),
    ({'param_scheduler.0.type': 'PolyLR'}, ('param_scheduler.0', 'type', 'PolyLR')),
    ({'val_cfg.type': 'ValLoop'}, ('val_cfg', 'type', 'ValLoop')),
    # an initialiser's override is taken out by mmengine's initialize
    ({'model.decode_head.init_cfg.type': 'Normal', 'model.decode_head.init_cfg.std': 0.01,
      'model.decode_head.init_cfg.override.name': 'conv_seg'},
     ('model.decode_head.init_cfg', 'override', {'name': 'conv_seg'})),
])
def test_common_overrides_of_a_components_type_load(options, expected):
    from mmseg_ext.config.checks import _lookup
    place, key, value = expected
    node, _ = _lookup(load(options).to_dict(), place.split('.'))
    assert node[key] == value


def test_keys_kept_from_the_replaced_type_are_named_as_such():
    """X-2: mmengine keeps the config's other keys when the type changes; one the new
    class does not take is named as the config's, with the way to drop them."""
    with pytest.raises(InvalidArgumentError, match=r"train_cfg: EpochBasedTrainLoop has no "
                       r"argument 'max_iters' \(kept from the config's IterBasedTrainLoop; "
                       r'add train_cfg._delete_=True'):
        load({'train_cfg.type': 'EpochBasedTrainLoop', 'train_cfg.max_epochs': 2})
    cfg = load({'train_cfg._delete_': True, 'train_cfg.type': 'EpochBasedTrainLoop',
                'train_cfg.max_epochs': 2, 'train_cfg.val_interval': 1})
    assert cfg.train_cfg == dict(type='EpochBasedTrainLoop', max_epochs=2, val_interval=1)
    with pytest.raises(InvalidArgumentError, match="'BNN' is not a model component"):
        load({'model.backbone.norm_cfg.type': 'BNN'})


@pytest.mark.parametrize('options, key', [
    ({'default_hooks.checkpoint.save_best': 'mIOU'}, 'default_hooks.checkpoint.save_best'),
    ({'default_hooks.early_stopping.type': 'EarlyStoppingHook',
      'default_hooks.early_stopping.monitor': 'mIOU'}, 'default_hooks.early_stopping.monitor'),
])
def test_a_watched_metric_the_validation_does_not_log_is_refused(options, key):
    """X-8: ``save_best=mIOU`` ended the run in a KeyError at the first validation;
    X-9: an early stop watching ``mIOU`` never stopped, exit 0."""
    with pytest.raises(InvalidArgumentError, match=rf"{key} is 'mIOU', which the validation "
                       r'does not log \(it logs aAcc, mAcc, mIoU\)'):
        load(options)
    assert load({key: 'mIoU', **{k: v for k, v in options.items() if k != key}})


def test_the_multi_label_metric_names_count_per_class_entries():
    from mmengine.config import Config

    from mmseg_ext.config.checks import check_monitored_metrics
    cfg = Config(dict(val_dataloader=dict(batch_size=1), val_evaluator=dict(type='MultiLabelDiceMetric'),
                      default_hooks=dict(checkpoint=dict(save_best=['mDice', 'Dice.heart']))))
    check_monitored_metrics(cfg, 'c.py', {})
    cfg.default_hooks.checkpoint.save_best = 'mIoU'
    with pytest.raises(ConfigError, match=r"^c.py: default_hooks.checkpoint.save_best is "
                       r"'mIoU', which the validation does not log \(it logs Dice.\*, mDice, "
                       r'mDice_dataset\)'):
        check_monitored_metrics(cfg, 'c.py', {})
    cfg.val_evaluator = dict(type='SomeoneElsesMetric')  # names unknown: not judged
    check_monitored_metrics(cfg, 'c.py', {})


def test_values_a_class_refuses_when_built_are_one_line():
    """X-10: a negative learning rate is refused when the config is read; what only the
    class can judge (``rule='bigger'``, a loss option it asserts against) is given in
    one line naming the config and the class, not a traceback."""
    with pytest.raises(InvalidArgumentError, match=r'optim_wrapper.optimizer.lr is -0.1: it '
                       r'must be a finite number >= 0'):
        load({'optim_wrapper.optimizer.lr': -0.1})
    from mmengine.registry import DefaultScope
    from mmseg.registry import HOOKS

    from mmseg_ext.training.tool_runner import component_error
    with DefaultScope.overwrite_default_scope('mmseg'):
        with pytest.raises(ValueError) as raised:
            HOOKS.build(dict(type='EarlyStoppingHook', monitor='mIoU', rule='bigger'))
    error = component_error(raised.value, 'c.py')
    assert isinstance(error, ConfigError) and str(error).startswith(
        'c.py: EarlyStoppingHook cannot be built from its settings: `rule` should be')
    assert component_error(ValueError('raised elsewhere'), 'c.py') is None


def test_a_custom_key_that_matches_no_parameter_is_named():
    """X-11: ``custom_keys.nosuchmodule.lr_mult`` changed nothing, silently. Y-1: mmseg's
    own configs carry entries that match nothing for some backbone settings (Swin's
    ``absolute_pos_embed``), so it is a warning naming the entry, not a refusal."""

    from mmengine.config import Config

    from mmseg_ext.training.tool_runner import check_custom_keys
    model = torch.nn.Sequential()
    model.add_module('backbone', torch.nn.Conv2d(1, 1, 1))
    model.add_module('head', torch.nn.Conv2d(1, 1, 1))
    cfg = Config(dict(optim_wrapper=dict(paramwise_cfg=dict(custom_keys=dict(
        backbone=dict(lr_mult=0.1), nosuchmodule=dict(lr_mult=0.1))))))
    with logged_messages() as records:
        check_custom_keys(cfg, model)
        del cfg.optim_wrapper.paramwise_cfg.custom_keys['nosuchmodule']
        check_custom_keys(cfg, model)  # 'backbone' is in backbone.weight: no word
    assert records == [
        'the config: optim_wrapper.paramwise_cfg.custom_keys nosuchmodule match no '
        'parameter of the model and change nothing (an entry applies to the parameter '
        'names that contain it: backbone.weight, backbone.bias, head.weight, ...)']


def test_runner_settings_and_wrapper_keys_can_be_set():
    """Y-2: ``optim_wrapper.type=AmpOptimWrapper`` was refused on configs with a
    ``constructor`` and ``paramwise_cfg`` (the wrapper's builder reads those); Y-3:
    ``randomness.seed`` and ``auto_scale_lr`` on configs that leave them out asked for a
    type; Y-4: ``persistent_workers`` without workers failed as the training loop."""
    segformer = osp.join(CONFIGS, 'segformer_mit-b2_multilabel_4xb2-20k_handbone-512x512.py')
    cfg = load({'optim_wrapper.type': 'AmpOptimWrapper'}, segformer)
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper' and cfg.optim_wrapper.paramwise_cfg
    cfg = load({'randomness.seed': 3, 'auto_scale_lr.base_batch_size': 16})
    assert cfg.randomness.seed == 3 and cfg.auto_scale_lr == dict(base_batch_size=16)
    with pytest.raises(InvalidArgumentError, match=r'train_dataloader.persistent_workers is '
                       r'True, but train_dataloader.num_workers is 0'):
        load({'train_dataloader.persistent_workers': True,
              'train_dataloader.num_workers': 0})
    with pytest.raises(InvalidArgumentError, match=r'a custom_keys entry is one name, set '
                       r'key by key: optim_wrapper.paramwise_cfg.custom_keys.backbone.lr_mult'):
        load({'optim_wrapper.paramwise_cfg.custom_keys.backbone.layer1.lr_mult': 0})


def test_one_models_probabilities_at_two_stored_sizes_are_refused_by_content(tmp_path):
    """X-7: settings that do not change the probabilities (``pad_val`` when nothing is
    padded, a window larger than the image) gave another views hash, and folders
    stored at two sizes were never compared: one model was voted twice. The pixels
    are compared after bringing one member to the other's size; another test scale,
    which does change them, is still voted."""
    import numpy as np
    from probs_helpers import write_prob_folder

    from mmseg_ext.inference.probmaps import resize_probs
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:16, 0:16] / 15.0
    native = {f'ID1/{n}.png': (np.stack([np.clip(yy + 0.1 * rng.random((16, 16)), 0, 1),
                                         np.clip(xx, 0, 1)]).astype(np.float32), (8, 8))
              for n in 'ab'}
    classes = ['finger-1', 'finger-2']
    a = write_prob_folder(tmp_path / 'native', native, classes)
    # the same model stored at the original size: its maps resized as the vote resizes
    b = write_prob_folder(tmp_path / 'orig', {k: (resize_probs(p, (8, 8)), s)
                                              for k, (p, s) in native.items()}, classes)
    code, lines = run_main('ensemble.py', [a, b, '--out-dir', tmp_path / 'e',
                                           '--no-progress'])
    assert code == 2 and 'hold the same probabilities on every image' in lines[-1]
    assert not osp.exists(tmp_path / 'e')
    # another scale: the maps differ by more than a level somewhere
    other = {k: (np.clip(resize_probs(p, (8, 8)) ** 1.3, 0, 1), s)
             for k, (p, s) in native.items()}
    c = write_prob_folder(tmp_path / 'other', other, classes)
    code, _ = run_main('ensemble.py', [a, c, '--out-dir', tmp_path / 'e2', '--no-progress'])
    assert code == 0


def test_resuming_with_other_optimizer_settings_names_the_checkpoint(monkeypatch):
    """Y-7: ``--resume`` after adding ``custom_keys`` ended in torch's "loaded state dict
    has a different number of parameter groups" traceback."""
    from mmengine.runner import Runner

    from mmseg_ext.training.tool_runner import ToolRunner
    from mmseg_ext.utils.errors import CheckpointError

    def torch_refuses(self, filename, *args, **kwargs):
        raise ValueError('loaded state dict has a different number of parameter groups')
    monkeypatch.setattr(Runner, 'resume', torch_refuses)
    runner = ToolRunner.__new__(ToolRunner)  # resume() needs nothing else of it here
    with pytest.raises(CheckpointError, match=r"^w/iter_2.pth: its optimizer state does not "
                       r"fit this run's optimizer \(loaded state dict has a different number "
                       r'of parameter groups\): the optimizer settings changed'):
        runner.resume('w/iter_2.pth')


def test_a_sampler_seed_is_a_number_and_a_refused_run_keeps_no_log_folder(tmp_path):
    """Y-8: ``train_dataloader.sampler.seed=abc`` failed at the first iteration (the
    argument is ``Optional[int]`` with no number default to judge by). Y-9: a run
    refused in a work dir the user made left its timestamp log folder there."""
    with pytest.raises(InvalidArgumentError, match=r'train_dataloader.sampler.seed is a '
                       r"number \(Optional\[int\]\), got the text 'abc'"):
        load({'train_dataloader.sampler.seed': 'abc'})
    from mmseg_ext.training.tool_runner import remove_refused_log_folder
    work = tmp_path / 'wd'
    (work / '20261207_064816' / 'vis_data').mkdir(parents=True)
    (work / '20261207_064816' / '20261207_064816.log').write_text('log')
    (work / '20261207_064816' / 'vis_data' / 'config.py').write_text('cfg')
    (work / 'notes.txt').write_text('mine')
    assert remove_refused_log_folder(str(work), '20261207_064816')
    assert sorted(p.name for p in work.iterdir()) == ['notes.txt']
    # a log folder holding anything else stays as it is
    (work / '20261207_070000').mkdir()
    (work / '20261207_070000' / 'iter_2.pth').write_text('x')
    assert not remove_refused_log_folder(str(work), '20261207_070000')
    assert (work / '20261207_070000' / 'iter_2.pth').exists()


@pytest.mark.parametrize('held_before', [True, False])
def test_a_refused_run_removes_only_a_log_folder_it_made(tmp_path, held_before):
    """Z-2: a folder the user had, named as the run's start second and holding only
    log-like files, was removed when the run was refused."""
    from mmseg_ext.training.tool_runner import ToolRunner
    work = tmp_path / 'wd'
    log = work / '20261207_064816'
    (log / 'vis_data').mkdir(parents=True)
    (log / '20261207_064816.log').write_text('log')
    runner = ToolRunner.__new__(ToolRunner)
    runner._made_work_dir, runner._work_dir_lock = False, None
    runner._held_before = {'20261207_064816'} if held_before else set()
    runner._log_dir = str(log)
    runner._refused(ConfigError('refused'), str(work))
    assert log.exists() == held_before


def test_keys_of_the_runner_settings_and_the_amp_wrapper_are_known():
    """Z-4: ``optim_wrapper.dtype`` after switching to AMP and
    ``randomness.deterministic`` were called possible misspellings; a misspelt AMP
    argument is refused."""

    with logged_messages() as records:
        cfg = load({'optim_wrapper.type': 'AmpOptimWrapper', 'optim_wrapper.dtype': 'bfloat16',
                    'randomness.deterministic': True})
    assert cfg.optim_wrapper.dtype == 'bfloat16' and cfg.randomness.deterministic is True
    assert not [m for m in records if 'check the spelling' in m]
    with pytest.raises(InvalidArgumentError, match="AmpOptimWrapper has no argument 'dtyp'"):
        load({'optim_wrapper.type': 'AmpOptimWrapper', 'optim_wrapper.dtyp': 'bfloat16'})


@pytest.mark.parametrize('key,value', [
    ('auto_scale_lr.enabel', True),
    ('randomness.determinstic', True),
    ('log_processor.window', 10),
    ('env_cfg.mp_cfg.start_method', 'fork'),
])
def test_a_misspelt_runner_setting_is_refused(key, value):
    """AA-2/AA-3: ``auto_scale_lr.enabel`` was ignored without a word (the learning
    rate stayed unscaled) and ``randomness.determinstic`` ended in a TypeError when the
    runner started; each is now refused when the config is loaded."""
    holder, name = key.rsplit('.', 1)
    with pytest.raises(InvalidArgumentError, match=f"{holder} has '{name}'"):
        load({key: value})


def test_the_keys_mmengine_reads_in_runner_settings_load():
    """The real keys of the same settings still load with their values."""
    cfg = load({'auto_scale_lr.enable': True, 'auto_scale_lr.base_batch_size': 8,
                'randomness.seed': 3, 'log_processor.window_size': 10,
                'env_cfg.mp_cfg.mp_start_method': 'spawn', 'env_cfg.resource_limit': 8192,
                'log_processor.type': 'LogProcessor'})
    assert cfg.auto_scale_lr == {'enable': True, 'base_batch_size': 8}
    assert cfg.randomness.seed == 3 and cfg.log_processor.window_size == 10
    assert cfg.env_cfg.mp_cfg.mp_start_method == 'spawn'
    assert cfg.env_cfg.resource_limit == 8192 and cfg.log_processor.type == 'LogProcessor'
    with pytest.raises(InvalidArgumentError, match="'LogProcessr' is not a log processor"):
        load({'log_processor.type': 'LogProcessr'})


def test_a_run_does_not_start_in_the_second_of_a_folder_the_work_dir_holds():
    """AA-1: mmengine names the log folder by the start second and writes into it when
    it exists; a run that would start in the second of a folder the user had waits for
    the next second."""
    import time

    from mmseg_ext.training.tool_runner import _wait_for_a_new_log_name
    now = time.strftime('%Y%m%d_%H%M%S', time.localtime())
    _wait_for_a_new_log_name({now})
    assert time.strftime('%Y%m%d_%H%M%S', time.localtime()) != now


def test_a_run_refused_in_training_leaves_a_users_work_dir_as_it_was(tmp_path, shapes_root):
    """Z-3: a run refused when training starts (here: ``last_checkpoint`` names a
    deleted checkpoint) in a work dir the user made left its config dump and ownership
    record there; only the lock file may stay, as after every run."""
    work = tmp_path / 'wd'
    work.mkdir()
    (work / 'notes.txt').write_text('mine')
    (work / 'last_checkpoint').write_text(f'{tmp_path}/gone/iter_9.pth')
    proc = run_tool('tools/train.py', CONFIG, '--work-dir', str(work),
                    *data_options(shapes_root, 1))
    assert proc.returncode == 1 and 'deleted checkpoint' in proc.stderr, proc.stderr[-2000:]
    assert sorted(p.name for p in work.iterdir()) == \
        ['.mmseg_ext.lock', 'last_checkpoint', 'notes.txt']
    assert (work / 'notes.txt').read_text() == 'mine'


@pytest.mark.parametrize('trained', [False, True])
def test_any_error_before_training_removes_the_work_dir_it_made(tmp_path, trained):
    """AA-3: a ``TypeError`` from mmengine while the runner was built (not a domain
    error) left the work dir the run had made, with its lock file. Since round AM
    (AM-2: a data folder missing when the runner built its loaders), any error before
    the first training record removes it; a run that logged training keeps its log."""
    from types import SimpleNamespace

    from mmseg_ext.training.tool_runner import ToolRunner
    work = tmp_path / 'a' / 'wd'
    log = work / '20261207_120000'
    (log / 'vis_data').mkdir(parents=True)
    (work / '.mmseg_ext.lock').write_text('1\n')
    (log / '20261207_120000.log').write_text('started\n')
    runner = ToolRunner.__new__(ToolRunner)
    runner._made_work_dir, runner._made_top, runner._work_dir_lock = True, str(tmp_path / 'a'), None
    runner._held_before, runner._log_dir = set(), str(log)
    if trained:
        runner._train_loop = SimpleNamespace(iter=1)
        (log / 'vis_data' / 'scalars.json').write_text('{"loss": 1.0, "iter": 1}\n')
    runner._refused(TypeError('unexpected keyword'), str(work))
    assert work.exists() == trained
    assert (tmp_path / 'a').exists() == trained


@pytest.mark.parametrize('options,message', [
    ({'auto_scale_lr.enable': True, 'auto_scale_lr.base_batch_size': -4},
     'auto_scale_lr.base_batch_size is -4: it must be a whole number >= 1'),
    ({'auto_scale_lr.enable': True}, 'base_batch_size is missing'),
    ({'auto_scale_lr.enable': 'no', 'auto_scale_lr.base_batch_size': 4},
     "auto_scale_lr.enable is 'no': it must be True or False"),
    ({'randomness.deterministic': 'maybe'}, "randomness.deterministic is 'maybe'"),
    ({'randomness.seed': -5}, 'randomness.seed is -5'),
    ({'env_cfg': None}, 'env_cfg is None: mmengine needs a dict there'),
    ({'randomness': None}, 'randomness is None'),
    ({'env_cfg.mp_cfg.mp_start_method': 'bogus'}, "mp_start_method is 'bogus'"),
    ({'env_cfg.resource_limit': 'abc'}, "env_cfg.resource_limit is 'abc'"),
    ({'env_cfg.mp_cfg': None}, 'env_cfg.mp_cfg is None: it must be a dict'),
    ({'log_processor.window_size': 0}, 'log_processor.window_size is 0'),
])
def test_a_runner_setting_of_the_wrong_kind_is_refused(options, message):
    """AB-2, AB-4, AB-5, AB-6: mmengine passes these values on unchecked: a negative
    ``base_batch_size`` trained with a negative learning rate, ``enable=no`` scaled it,
    a missing or zero batch size, a None dict or a bad start method ended in a
    traceback when the run started."""
    with pytest.raises(InvalidArgumentError, match=re.escape(message)):
        load(options)


def test_runner_settings_mmengine_takes_as_none_or_defaults_load():
    cfg = load({'auto_scale_lr': None, 'log_processor': None, 'randomness.seed': None,
                'randomness.diff_rank_seed': False})
    assert cfg.auto_scale_lr is None and cfg.log_processor is None
    assert cfg.randomness.seed is None


def test_a_timestamp_naming_a_folder_the_work_dir_held_is_refused(tmp_path, monkeypatch):
    """AB-1: when the wait for a new second ran out, mmengine wrote its log and config
    into the user's folder of that name; the run is refused before it writes."""
    from mmengine.runner import Runner

    from mmseg_ext.training.tool_runner import ToolRunner
    from mmseg_ext.utils.errors import OutputError

    def fixed_second(self, env_cfg):
        self._timestamp = '20261207_111252'
    monkeypatch.setattr(Runner, 'setup_env', fixed_second)
    runner = ToolRunner.__new__(ToolRunner)
    runner._work_dir = str(tmp_path)
    runner._held_before = {'20261207_111252', 'notes.txt'}
    with pytest.raises(OutputError, match=re.escape(
            f'{tmp_path}/20261207_111252: already exists, and this run would write')):
        runner.setup_env({})
    runner._held_before = {'20261207_111251'}
    runner.setup_env({})                               # another second: no refusal


def _train_then_refuse(tmp_path, shapes_root, prepare):
    work = tmp_path / 'wd'
    prepare(work, lambda *extra: run_tool('tools/train.py', CONFIG, '--work-dir', str(work),
                                          *data_options(shapes_root, 1), *extra))
    return work, osp.basename(CONFIG)


def test_a_refused_run_puts_back_the_config_dump_it_replaced(tmp_path, shapes_root):
    """AB-3: a run refused when training started replaced the earlier run's config dump
    (another learning rate), so the dump beside that run's checkpoint no longer
    described it; and it left nothing else behind."""
    from mmseg_ext.io.owned_file import replace_problem
    from mmseg_ext.training.tool_runner import CONFIG_DUMP_OWNER
    config = 'fcn_r18-tiny_shapes-64x80.py'
    state = {}

    def prepare(work, train):
        first = train()
        assert first.returncode == 0, first.stderr[-2000:]
        pointer = (work / 'last_checkpoint').read_text().strip()
        os.rename(pointer, pointer + '.moved')
        state['dump'] = (work / config).read_text()
        state['names'] = sorted(p.name for p in work.iterdir())
        again = train('optim_wrapper.optimizer.lr=0.5')
        assert again.returncode == 1 and 'deleted checkpoint' in again.stderr, \
            again.stderr[-2000:]

    work, name = _train_then_refuse(tmp_path, shapes_root, prepare)
    assert name == config and 'lr=0.5' not in state['dump']
    assert (work / config).read_text() == state['dump']
    assert replace_problem(str(work / config), CONFIG_DUMP_OWNER) == ''
    assert sorted(p.name for p in work.iterdir()) == state['names']


def test_a_refused_run_removes_the_log_folder_holding_its_config(tmp_path, shapes_root):
    """AB-7: when the user's own file has the config's name, the dump goes into the
    log folder; a refused run left that folder behind."""
    def prepare(work, train):
        work.mkdir()
        (work / 'fcn_r18-tiny_shapes-64x80.py').write_text('# mine\n')
        (work / 'last_checkpoint').write_text(f'{work}/gone/iter_9.pth')
        proc = train()
        assert proc.returncode == 1 and 'deleted checkpoint' in proc.stderr, \
            proc.stderr[-2000:]
    work, config = _train_then_refuse(tmp_path, shapes_root, prepare)
    assert sorted(p.name for p in work.iterdir()) == \
        ['.mmseg_ext.lock', config, 'last_checkpoint']
    assert (work / config).read_text() == '# mine\n'


def _bad_val_root(tmp_path, shapes_root):
    """A copy of the data set whose first validation image cannot be decoded."""
    import shutil
    bad = tmp_path / 'valbad'
    shutil.copytree(shapes_root, bad)
    first = sorted((bad / 'images' / 'val').iterdir())[0]
    first.write_bytes(b'not a png')
    return bad


def _options(root, iters, val_root=None, *extra):
    return ['--cfg-options', f'train_dataloader.dataset.data_root={root}',
            f'val_dataloader.dataset.data_root={val_root or root}',
            'train_dataloader.batch_size=2',
            'model.data_preprocessor.size=(32,40)', f'train_cfg.max_iters={iters}',
            f'train_cfg.val_interval={iters}', f'default_hooks.checkpoint.interval={iters}',
            f'param_scheduler.0.end={iters}', *extra]


def test_a_run_failing_after_it_replaced_a_checkpoint_keeps_its_dump_and_log(
        tmp_path, shapes_root):
    """AC-1: run B saved ``iter_1.pth`` over run A's and then failed at validation; the
    clean-up saw no new names, removed B's log and dump and put A's dump back beside
    B's weights. A run that changed anything beyond its own files is left as it is."""
    work = tmp_path / 'wd'
    first = run_tool('tools/train.py', CONFIG, '--work-dir', str(work),
                     *_options(shapes_root, 1))
    assert first.returncode == 0, first.stderr[-2000:]
    logs_a = {p.name for p in work.iterdir() if p.is_dir()}
    bad = _bad_val_root(tmp_path, shapes_root)
    second = run_tool('tools/train.py', CONFIG, '--work-dir', str(work),
                      *_options(shapes_root, 1, bad, 'optim_wrapper.optimizer.lr=0.5'))
    assert second.returncode == 1 and 'cannot decode' in second.stderr, \
        second.stderr[-2000:]
    dump = (work / osp.basename(CONFIG)).read_text()
    assert 'lr=0.5' in dump                            # B's, beside B's checkpoint
    weights = torch.load(work / 'iter_1.pth', map_location='cpu', weights_only=False)
    assert 'lr=0.5' in weights['meta']['cfg']
    assert len({p.name for p in work.iterdir() if p.is_dir()} - logs_a) == 1  # B's log


def test_a_run_failing_after_training_began_keeps_its_log(tmp_path, shapes_root):
    """AC-3: a run that trained and then failed at validation, before any checkpoint,
    lost its whole new work dir with the log of the iterations it had run."""
    work = tmp_path / 'wd'
    bad = _bad_val_root(tmp_path, shapes_root)
    proc = run_tool('tools/train.py', CONFIG, '--work-dir', str(work),
                    *_options(shapes_root, 2, bad, 'train_cfg.val_interval=1',
                              'default_hooks.checkpoint.interval=5',
                              'default_hooks.logger.interval=1'))
    assert proc.returncode == 1 and 'cannot decode' in proc.stderr, proc.stderr[-2000:]
    logs = [p for p in work.iterdir() if p.is_dir()]
    assert len(logs) == 1 and (logs[0] / f'{logs[0].name}.log').is_file()
    assert not list(work.glob('iter_*.pth'))


def _fake_runner(work, held, cfg_name='cfg.py'):
    from mmengine.config import Config

    from mmseg_ext.training.tool_runner import ToolRunner, _identities
    runner = ToolRunner.__new__(ToolRunner)
    runner._made_work_dir, runner._made_top, runner._work_dir_lock = False, None, None
    runner._cleans_up = True
    runner._held_before = set(held)
    runner._held_identity = _identities(str(work), set(held))
    runner._log_dir = str(work / '20261207_120000')
    (work.parent / cfg_name).write_text('')           # the config the run was given
    runner.cfg = Config({}, filename=str(work.parent / cfg_name))
    return runner


def _dump(path, text):
    from mmseg_ext.io.atomic import atomic_write_text
    from mmseg_ext.training.tool_runner import CONFIG_DUMP_OWNER
    atomic_write_text(str(path), text, force=True, owner=CONFIG_DUMP_OWNER)


def test_a_dump_the_user_edited_during_the_run_is_not_removed(tmp_path):
    """AC-2: the user's edit of the refused run's new config dump was deleted with it."""
    from mmseg_ext.utils.errors import DataError
    work = tmp_path / 'wd'
    work.mkdir()
    (work / 'notes.txt').write_text('mine')
    runner = _fake_runner(work, {'notes.txt'})
    (work / '20261207_120000').mkdir()
    _dump(work / 'cfg.py', 'lr = 0.5\n')
    with open(work / 'cfg.py', 'a') as f:
        f.write('# my note\n')
    runner._refused(DataError('refused'), str(work))
    assert (work / 'cfg.py').read_text() == 'lr = 0.5\n# my note\n'
    assert not (work / '20261207_120000').exists()     # its own log folder goes


@pytest.mark.parametrize('error', ['interrupt', 'refusal'])
def test_an_interrupted_or_refused_run_puts_back_the_dump_it_replaced(tmp_path, error):
    """AC-4: Ctrl-C or SIGTERM after the dump left the earlier run's dump replaced by
    the interrupted run's settings, beside the earlier run's checkpoints."""
    from mmseg_ext.utils.errors import DataError, Interrupted
    work = tmp_path / 'wd'
    work.mkdir()
    _dump(work / 'cfg.py', 'lr = 0.003\n')
    (work / 'iter_2.pth').write_bytes(b'A')
    held = {p.name for p in work.iterdir()}
    runner = _fake_runner(work, held)
    runner._replaced_dump = (str(work / 'cfg.py'), 'lr = 0.003\n')
    _dump(work / 'cfg.py', 'lr = 0.5\n')
    (work / '20261207_120000').mkdir()
    # AD-3, AD-1: a file the user added meanwhile, another tool's staging folder
    (work / 'notes.txt').write_text('mine')
    (work / '.preds.partial-1').mkdir()
    (work / 'backup.pth').write_bytes(b'a copy')       # AE-5: the user's, not the run's
    exc = Interrupted(2, 'SIGINT') if error == 'interrupt' else DataError('refused')
    runner._refused(exc, str(work))
    assert (work / 'cfg.py').read_text() == 'lr = 0.003\n'
    assert (work / 'notes.txt').read_text() == 'mine' and (work / 'iter_2.pth').exists()
    # before a training record, neither an interrupted run nor a refused one keeps its
    # log folder (round AK, AK-9: a log of nothing trained is clutter either way)
    assert not (work / '20261207_120000').exists()


def test_a_resume_refused_before_an_iteration_counts_as_not_trained(tmp_path):
    """AD-5: mmengine sets the loop's iteration before a resume fails, so the refused
    run counted as trained and kept its log folder."""
    from types import SimpleNamespace

    from mmseg_ext.training.tool_runner import ToolRunner
    runner = ToolRunner.__new__(ToolRunner)
    runner._train_loop = SimpleNamespace(iter=8)
    runner._log_dir = str(tmp_path / '20261207_120000')
    os.makedirs(osp.join(runner._log_dir, 'vis_data'))
    assert not runner._trained()                       # no training record yet
    with open(osp.join(runner._log_dir, 'vis_data', 'scalars.json'), 'w') as f:
        f.write('{"loss": 1.0, "iter": 8}\n')
    assert runner._trained()
    runner._resume_refused = True
    assert not runner._trained()


def test_a_checkpoint_removed_by_the_hook_takes_its_record_with_it(tmp_path):
    """AD-6: ``max_keep_ckpts`` removed ``iter_8.pth`` and left its ownership record."""
    from mmseg_ext.io.checkpoint_backend import AtomicLocalBackend
    from mmseg_ext.io.owned_file import record_path
    path = str(tmp_path / 'iter_8.pth')
    backend = AtomicLocalBackend()
    backend.put(b'weights', path)
    assert osp.isfile(record_path(path))
    backend.remove(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_testing_in_a_training_work_dir_keeps_its_config_dump(tmp_path, shapes_root):
    """AD-2, AD-1: ``tools/test.py --work-dir`` the training's work dir replaced the
    training's config dump with the test config (with ``--tta`` a SegTTAModel, which
    then could not train); a test run's dump goes into its log folder."""
    work = tmp_path / 'wd'
    first = run_tool('tools/train.py', CONFIG, '--work-dir', str(work),
                     *_options(shapes_root, 1))
    assert first.returncode == 0, first.stderr[-2000:]
    name = osp.basename(CONFIG)
    dump = (work / name).read_bytes()
    logs = {p.name for p in work.iterdir() if p.is_dir()}
    proc = run_tool('tools/test.py', CONFIG, str(work / 'iter_1.pth'), '--work-dir',
                    str(work), '--cfg-options',
                    f'test_dataloader.dataset.data_root={shapes_root}')
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (work / name).read_bytes() == dump
    new = [p for p in work.iterdir() if p.is_dir() and p.name not in logs]
    assert len(new) == 1 and (new[0] / name).is_file()
    assert b'test_dataloader' in (new[0] / name).read_bytes()


def test_the_checkpoint_hook_removes_only_the_trainings_own_checkpoints(tmp_path):
    """AE-1, AE-2, AF-2: a training resumed from another work dir's checkpoint removed
    that work dir's ``best_*.pth`` (the resumed state names it), and with
    ``max_keep_ckpts`` an earlier run's ``iter_2.pth`` and a user's ``iter_4.pth`` in
    its own work dir; only what this process saved is removed."""
    from mmseg_ext.io import checkpoint_backend as cb
    backend = cb.AtomicLocalBackend()
    other, own = tmp_path / 'other', tmp_path / 'own'
    other.mkdir()
    own.mkdir()
    backend.put(b'best of another run', str(other / 'best_mIoU_iter_2.pth'))
    backend.put(b'an earlier run', str(own / 'iter_2.pth'))
    del cb.CHANGED_BY_THIS_PROCESS[-2:]                # as if another process wrote them
    (own / 'iter_4.pth').write_bytes(b'the user')      # no ownership record
    backend.put(b'this run', str(own / 'iter_6.pth'))
    for name in ('other/best_mIoU_iter_2.pth', 'own/iter_2.pth', 'own/iter_4.pth'):
        backend.remove(str(tmp_path / name))
        assert (tmp_path / name).exists(), name
    backend.remove(str(own / 'iter_6.pth'))            # its own: removed, record too
    assert sorted(p.name for p in own.iterdir()) == ['.iter_2.pth.mmseg_ext_owner.json',
                                                     'iter_2.pth', 'iter_4.pth']
    # AF-1: a folder of a checkpoint's name is never the training's (it saves files)
    (own / 'iter_8.pth').mkdir()
    (own / 'iter_8.pth' / 'mine.txt').write_text('mine')
    backend.rmtree(str(own / 'iter_8.pth'))
    assert (own / 'iter_8.pth' / 'mine.txt').read_text() == 'mine'


def test_a_tensorboard_only_log_counts_as_training_progress(tmp_path):
    """AE-6: a run logging only to TensorBoard (``log_level='WARNING'``) was taken as
    not trained, and its event file was removed with its log folder."""
    from mmseg_ext.training.tool_runner import _logged_training
    log = tmp_path / '20261207_120000'
    (log / 'vis_data').mkdir(parents=True)
    (log / 'vis_data' / 'config.py').write_text('lr = 0.1\n')
    assert not _logged_training(str(log), log.name)
    (log / 'vis_data' / 'events.out.tfevents.1.host').write_bytes(b'\x00' * 40)
    assert _logged_training(str(log), log.name)


@pytest.mark.parametrize('options,message', [
    ({'model.test_cfg.mode': 'slide', 'model.test_cfg.crop_size': (32, 32),
      'model.test_cfg.stride': (48, 16)}, 'is larger than crop_size'),
    ({'model.test_cfg.mode': 'slide', 'model.test_cfg.crop_size': (32, 32)},
     'model.test_cfg.stride is None'),
    ({'model.test_cfg.mode': 'slide', 'model.test_cfg.crop_size': (32, 0),
      'model.test_cfg.stride': (16, 16)}, 'model.test_cfg.crop_size is (32, 0)'),
    ({'model.test_cfg.mode': 'Slide'}, "model.test_cfg.mode is 'Slide'"),   # AF-6
])
def test_slide_windows_that_skip_pixels_are_refused_at_load(options, message):
    """AE-7, AE-8: a stride larger than the crop, or none, ended in an assertion
    inside mmseg (``.pth``) or a 'broken checkpoint' message (``.onnx``)."""
    with pytest.raises(InvalidArgumentError, match=re.escape(message)):
        load(options)
    cfg = load({'model.test_cfg.mode': 'slide', 'model.test_cfg.crop_size': (32, 32),
                'model.test_cfg.stride': (16, 32)})
    assert cfg.model.test_cfg.stride == (16, 32)


def test_an_onnx_model_slides_with_the_wrapped_segmentors_settings():
    """AE-3: for a semi-supervised wrapper's config the ONNX model read the wrapper's
    (absent) ``test_cfg`` and ran whole images; AE-4: a fixed-shape export padded
    every window to its size, so it is refused unless the crop is that size."""
    from types import SimpleNamespace

    from mmseg_ext.inference.onnx_backend import _slide_settings
    slide = dict(mode='slide', crop_size=(64, 64), stride=(32, 32))
    wrapper = dict(type='MeanTeacher', segmentor=dict(type='EncoderDecoder',
                                                      test_cfg=slide))
    dynamic = SimpleNamespace(fixed_size=None, path='m.onnx')
    assert _slide_settings(wrapper, 'c.py', dynamic) == slide
    fixed = SimpleNamespace(fixed_size=(128, 128), path='m.onnx')
    with pytest.raises(ConfigError, match=r'm.onnx: exported for 128x128 inputs'):
        _slide_settings(wrapper, 'c.py', fixed)
    assert _slide_settings(dict(test_cfg=dict(slide, crop_size=(128, 128))), 'c.py',
                           fixed)['crop_size'] == (128, 128)


def test_a_fixed_shape_onnx_model_refuses_a_window_smaller_than_its_size():
    """AF-4: an image smaller than the slide window was padded to a fixed-shape
    graph's size, which the torch segmentor does not do (probabilities 0.013 apart)."""
    import numpy as np

    from mmseg_ext.inference.onnx_backend import OnnxSegmentor
    from mmseg_ext.utils.errors import DataError
    model = OnnxSegmentor.__new__(OnnxSegmentor)
    model.fixed_size, model.path = (64, 64), 'm.onnx'
    with pytest.raises(DataError, match=r'm.onnx: exported for 64x64 inputs; an image of '
                       r'48x64 is smaller than the slide window'):
        model._window_logits(np.zeros((1, 3, 48, 64), np.float32))


def test_two_work_dirs_of_one_name_sharing_a_checkpoint_out_dir(tmp_path, shapes_root):
    """AF-3: ``a/exp`` and ``b/exp`` with one ``default_hooks.checkpoint.out_dir`` save
    into ``<out_dir>/exp``; the second run replaced the first's ``iter_1.pth``. Each
    checkpoint's record names its run's work dir: the second run is refused before it
    trains, the first's checkpoint is kept byte for byte, and a rerun of the first in
    its own work dir still replaces its own checkpoint."""
    out_dir = tmp_path / 'ckpts'
    shared = ['default_hooks.checkpoint.out_dir=' + str(out_dir)]
    first = run_tool('tools/train.py', CONFIG, '--work-dir', str(tmp_path / 'a' / 'exp'),
                     *_options(shapes_root, 1, None, *shared))
    assert first.returncode == 0, first.stderr[-2000:]
    saved = out_dir / 'exp' / 'iter_1.pth'
    before = saved.read_bytes()
    second = run_tool('tools/train.py', CONFIG, '--work-dir', str(tmp_path / 'b' / 'exp'),
                      *_options(shapes_root, 1, None, *shared))
    assert second.returncode != 0
    errors = [line for line in second.stderr.splitlines() if line.startswith('error:')]
    assert len(errors) == 1 and str(saved) in errors[0], second.stderr[-2000:]
    assert str(tmp_path / 'a' / 'exp') in errors[0]
    assert saved.read_bytes() == before
    assert not (tmp_path / 'b' / 'exp').exists()   # made by the refused run: removed
    again = run_tool('tools/train.py', CONFIG, '--work-dir', str(tmp_path / 'a' / 'exp'),
                     *_options(shapes_root, 1, None, *shared))
    assert again.returncode == 0, again.stderr[-2000:]
    assert saved.read_bytes() != before


def test_the_checkpoint_backend_refuses_another_runs_checkpoint(tmp_path):
    """AF-3, at the backend: a write over a checkpoint whose record names another
    run's work dir is refused and leaves it as it was; one that names this run, or no
    run (a record of an older version), is replaced; the run a record names is read
    back as written."""
    from mmseg_ext.io import checkpoint_backend as cb
    from mmseg_ext.io.owned_file import record_path
    from mmseg_ext.utils.errors import OutputError
    path = str(tmp_path / 'iter_2.pth')
    cb.AtomicLocalBackend(run='/runs/a/exp').put(b'run a', path)
    assert cb.checkpoint_run(path) == '/runs/a/exp'
    with pytest.raises(OutputError, match='training checkpoint of /runs/a/exp'):
        cb.AtomicLocalBackend(run='/runs/b/exp').put(b'run b', path)
    assert open(path, 'rb').read() == b'run a'
    cb.AtomicLocalBackend(run='/runs/a/exp').put(b'run a again', path)
    assert open(path, 'rb').read() == b'run a again'
    legacy = str(tmp_path / 'iter_4.pth')
    cb.AtomicLocalBackend().put(b'an older version', legacy)
    assert cb.checkpoint_run(legacy) == ''
    cb.AtomicLocalBackend(run='/runs/b/exp').put(b'run b', legacy)
    assert open(legacy, 'rb').read() == b'run b'
    (tmp_path / 'user.pth').write_bytes(b'mine')
    assert cb.checkpoint_run(str(tmp_path / 'user.pth')) is None
    assert cb.training_checkpoint_problem(path) == ''
    with open(record_path(path)) as f:
        assert '/runs/a/exp' in f.read()


def test_a_dumped_config_names_the_run_that_uses_it(tmp_path):
    """The dump of a run in ``a`` carries ``backend_args.run=a``; training another work
    dir from that dump must record that work dir, not ``a``."""
    from mmengine.config import Config

    from mmseg_ext.training.runner import write_checkpoints_atomically
    cfg = Config(dict(work_dir=str(tmp_path / 'b'), default_hooks=dict(checkpoint=dict(
        type='CheckpointHook', backend_args=dict(backend='atomic_local',
                                                 run=str(tmp_path / 'a'))))))
    write_checkpoints_atomically(cfg)
    assert cfg.default_hooks.checkpoint.backend_args.run == osp.realpath(tmp_path / 'b')
