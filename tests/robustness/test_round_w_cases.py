"""Round W of bad inputs (issue 28): components made on the command line, settings dicts
and chained resizes. Each test names the finding it closes (the report ran the real
tools on tiny data; these check the same refusals where they are made, when the
config is read)."""
import pytest

from mmseg_ext.utils.errors import ConfigError, InvalidArgumentError

from .cv_fakes import SHAPES

ES = 'default_hooks.early_stopping'


def load(options):
    from mmseg_ext.config.loading import load_config
    return load_config(SHAPES, options)


@pytest.mark.parametrize('options, words', [
    # W-1: a type no registry of that place has, or one of another kind
    ({f'{ES}.type': 'EarlyStopHook', f'{ES}.monitor': 'mIoU'},
     f"{ES}.type: 'EarlyStopHook' is not a hook mmseg knows$"),
    ({f'{ES}.type': 'AdamW', f'{ES}.monitor': 'mIoU'},
     r"'AdamW' is not a hook mmseg knows \(it is an optimizer\)"),
    ({'model.decode_head.sampler.type': 'OHEMSampler',
      'model.decode_head.sampler.thresh': 0.7},
     r"model.decode_head.sampler.type: 'OHEMSampler' is not a task utility"),
    # W-1: an argument the class does not take, or a required one left out
    ({f'{ES}.type': 'EarlyStoppingHook', f'{ES}.monitr': 'mIoU'},
     f"{ES}: EarlyStoppingHook has no argument 'monitr'"),
    ({f'{ES}.type': 'EarlyStoppingHook'},
     rf"{ES}: EarlyStoppingHook needs 'monitor' \(set {ES}.monitor=\.\.\.\)"),
    ({'model.auxiliary_head.type': 'FCNHead', 'model.auxiliary_head.num_classes': 4},
     "FCNHead needs 'in_channels', 'channels'"),  # required by its base class
    ({'model.backbone.init_cfg.type': 'Pretrained'}, "Pretrained needs 'checkpoint'"),
    # W-4: text where the argument is a number (it failed at the second validation)
    ({f'{ES}.type': 'EarlyStoppingHook', f'{ES}.monitor': 'mIoU', f'{ES}.patience': 'abc'},
     rf"{ES}.patience is a number \(default 5\), got the text 'abc'"),
    ({f'{ES}.type': 'EarlyStoppingHook', f'{ES}.monitor': 'mIoU', f'{ES}.strict': 'yes'},
     r'strict is a flag \(True or False\)'),
    # ... and as a new argument of a component the config already has
    ({'default_hooks.checkpoint.max_keep_ckpts': 'two'},
     r"default_hooks.checkpoint.max_keep_ckpts is a number \(default -1\)"),
])
def test_a_component_made_on_the_command_line_is_checked_like_a_configured_one(
        options, words):
    """W-1, W-4: a component created with ``<key>.type=...`` was not checked at all;
    each case was a traceback when the runner built it."""
    with pytest.raises(InvalidArgumentError, match=words):
        load(options)


def test_well_formed_new_components_are_built_as_given():
    cfg = load({f'{ES}.type': 'EarlyStoppingHook', f'{ES}.monitor': 'mIoU',
                f'{ES}.patience': 3, f'{ES}.min_delta': 0.01,
                'model.decode_head.sampler.type': 'OHEMPixelSampler',
                'model.decode_head.sampler.thresh': 0.7})
    assert cfg.default_hooks.early_stopping == dict(
        type='EarlyStoppingHook', monitor='mIoU', patience=3, min_delta=0.01)
    assert cfg.model.decode_head.sampler == dict(type='OHEMPixelSampler', thresh=0.7)
    # the registries build them (the sampler's builder gives its `context` itself)
    from mmengine.hooks import EarlyStoppingHook
    from mmengine.registry import DefaultScope
    from mmseg.registry import HOOKS
    with DefaultScope.overwrite_default_scope('mmseg'):
        hook = HOOKS.build(dict(cfg.default_hooks.early_stopping))
    assert isinstance(hook, EarlyStoppingHook) and hook.patience == 3


def test_a_per_module_learning_rate_can_be_set_key_by_key():
    """W-5: ``paramwise_cfg.custom_keys.<module>.lr_mult`` was refused on a config
    without ``paramwise_cfg`` (naming the wrong level), and a misspelt entry key was
    ignored by mmengine."""
    key = 'optim_wrapper.paramwise_cfg.custom_keys.backbone'
    cfg = load({f'{key}.lr_mult': 0.1, f'{key}.decay_mult': 0.0})
    assert cfg.optim_wrapper.paramwise_cfg == dict(
        custom_keys=dict(backbone=dict(lr_mult=0.1, decay_mult=0.0)))
    with pytest.raises(InvalidArgumentError, match=rf"{key} has 'lr_mullt'; an entry of "
                       r"custom_keys sets \['decay_mult', 'lr_mult'\]"):
        load({f'{key}.lr_mullt': 0.1})
    with pytest.raises(InvalidArgumentError, match=rf'{key}.lr_mult is -1: a multiplier '
                       'must be a finite number >= 0'):
        load({f'{key}.lr_mult': -1})
    with pytest.raises(InvalidArgumentError, match="paramwise_cfg has 'norm_decay_mul', "
                       "which mmengine's optimizer-wrapper constructor does not read"):
        load({'optim_wrapper.paramwise_cfg.norm_decay_mul': 0})
    # an entry given as text (the command line has no dicts) says how to set it
    with pytest.raises(InvalidArgumentError, match=rf'{key} is .*set its keys one by one'):
        load({'optim_wrapper.paramwise_cfg.custom_keys.backbone': 'dict(lr_mult=0.1)',
              'optim_wrapper.paramwise_cfg.norm_decay_mult': 0.0})
    # another constructor reads keys of its own: not judged by the default's list
    cfg = load({'optim_wrapper.constructor': 'LearningRateDecayOptimizerConstructor',
                'optim_wrapper.paramwise_cfg.decay_rate': 0.9,
                'optim_wrapper.paramwise_cfg.num_layers': 6})
    assert cfg.optim_wrapper.paramwise_cfg.decay_rate == 0.9


def test_the_pixel_cap_follows_the_pipeline_from_step_to_step(monkeypatch):
    """W-14: a resize to 16384 a side and then by ``scale_factor`` 64 each passed the cap
    by itself; together they ask for about 10**12 pixels."""
    from mmengine.config import Config

    from mmseg_ext.config.checks import check_pipeline_sizes
    from mmseg_ext.utils.readers import MAX_PIXELS_ENV

    def check(*steps, cap=2 ** 28):
        monkeypatch.setenv(MAX_PIXELS_ENV, str(cap))
        check_pipeline_sizes(Config(dict(test_pipeline=[dict(type='LoadImageFromFile'),
                                                        *steps])), 'c.py', {})

    with pytest.raises(ConfigError, match=r'^c.py: test_pipeline: steps 0-2 '
                       r'\(LoadImageFromFile, then Resize, then Resize\) can make images of '
                       f'{16384 * 64 * 16384 * 64:,} pixels together, beyond the cap'):
        check(dict(type='Resize', scale=(16384, 16384), keep_ratio=True),
              dict(type='Resize', scale_factor=64.0))
    # a pad grows what is smaller: 512 px padded to 1024, then 4 times each side
    with pytest.raises(ConfigError, match=f'{1024 * 4 * 1024 * 4:,} pixels together'):
        check(dict(type='Resize', scale=(512, 512)), dict(type='Pad', size=(1024, 1024)),
              dict(type='Resize', scale_factor=4.0), cap=1024 * 1024 * 8)
    # a crop shrinks: 8192 px cropped to 512, then 4 times, is within the cap
    check(dict(type='Resize', scale=(8192, 8192)),
          dict(type='RandomCrop', crop_size=(512, 512)),
          dict(type='Resize', scale_factor=4.0), cap=8192 * 8192)
    with pytest.raises(ConfigError, match=f'{8192 * 4 * 8192 * 4:,} pixels together'):
        check(dict(type='Resize', scale=(8192, 8192)), dict(type='Resize', scale_factor=4.0),
              cap=8192 * 8192)
    # a factor on an image of a size the config does not tell is judged by itself
    check(dict(type='Resize', scale_factor=4.0), cap=2048 * 2048)
    # the alternatives of a test-time augmentation: the largest of each stage counts
    tta = dict(type='TestTimeAug', transforms=[
        [dict(type='Resize', scale=(1024, 1024)), dict(type='Resize', scale=(4096, 4096))],
        [dict(type='Resize', scale_factor=8.0)]])
    with pytest.raises(ConfigError, match=f'{4096 * 8 * 4096 * 8:,} pixels'):
        check(tta)
    check(tta, cap=4096 * 8 * 4096 * 8)
