"""Options are checked before the runner is built: --cfg-options syntax, kinds and
parents, iteration counts and batch sizes, --device, a load_from of another model; and a
signal caught by a library's bare ``except`` still ends the tool as interrupted."""
import contextlib
import io
import os
import os.path as osp
import signal
import time

import pytest
import torch
from conftest import REPO, logged_messages

from mmseg_ext.config.loading import load_config
from mmseg_ext.utils.errors import ConfigError, InvalidArgumentError

pytestmark = pytest.mark.stacks
SHAPES = osp.join(REPO, 'custom_configs', 'demo', 'fcn_r18-tiny_shapes-64x80.py')


def run_tool_main(tool, argv):
    """Run ``tools/<tool>``'s main in this process: (exit code, stderr lines)."""
    from conftest import load_tool
    module = load_tool(osp.join(REPO, 'tools', tool))
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()), \
            pytest.raises(SystemExit) as stop:
        module.main(argv)
    return stop.value.code, err.getvalue().strip().splitlines()


@pytest.mark.parametrize('option,message', [
    ('num_classes', "argument --cfg-options: 'num_classes' is not key=value"),
    ('=3', "argument --cfg-options: '=3' is not key=value"),
])
def test_cfg_options_syntax_is_a_usage_error(option, message):
    code, lines = run_tool_main('train.py', [SHAPES, '--cfg-options', option])
    assert code == 2 and len(lines) == 1 and message in lines[0], lines


@pytest.mark.parametrize('options,message', [
    ({'model.decode_head.num_classes': 'abc'},
     "model.decode_head.num_classes='abc': .* has 4 there \\(int\\), got a str"),
    ({'model.backbonee.depth': 18}, 'model.backbonee.depth: .* has no model.backbonee'),
    ({'model.decode_head.num_clases': 5},
     "model.decode_head.num_clases: FCNHead has no argument 'num_clases'"),
    ({'train_cfg.max_iters': -5},
     'train_cfg.max_iters is -5; it must be an integer from 1 to 2147483647'),
    # round AK (AK-10): mmengine's ETA overflowed after the first iteration, a traceback
    ({'train_cfg.max_iters': 2 ** 63 - 1}, 'train_cfg.max_iters is 9223372036854775807'),
    ({'train_cfg.max_iters': 2 ** 31}, 'train_cfg.max_iters is 2147483648; it must be'),
    ({'train_dataloader.batch_size': 0}, 'train_dataloader.batch_size is 0'),
    ({'model.decode_head.align_corners': 'ture'}, 'has False there \\(bool\\), got a str'),
    # loops and optimizers are components too (these ended in a TypeError traceback)
    ({'train_cfg.max_iter': 3}, "train_cfg.max_iter: IterBasedTrainLoop has no argument "
     "'max_iter'"),
    ({'optim_wrapper.optimizer.lrr': 5}, "optim_wrapper.optimizer.lrr: AdamW has no argument "
     "'lrr'"),
])
def test_cfg_options_that_cannot_mean_what_they_say(options, message):
    with pytest.raises(InvalidArgumentError, match=message):
        load_config(SHAPES, options)


def test_a_new_leaf_is_allowed_with_a_warning():
    with logged_messages() as records:
        cfg = load_config(SHAPES, {'train_dataloader.dataset.metainfo.note': 'x'})
    assert cfg.train_dataloader.dataset.metainfo.note == 'x'
    assert any('train_dataloader.dataset.metainfo.note adds a key' in m for m in records)
    # the runner's settings dicts hold only the keys mmengine reads: refused, not warned
    with pytest.raises(InvalidArgumentError, match="env_cfg has 'cudnn_benchmarkk'"):
        load_config(SHAPES, {'env_cfg.cudnn_benchmarkk': True})
    # a wrapper's builder takes keys of its own: not refused
    cfg = load_config(SHAPES, {'optim_wrapper.paramwise_cfg': {'norm_decay_mult': 0.0}})
    assert cfg.optim_wrapper.paramwise_cfg == {'norm_decay_mult': 0.0}


def test_a_bad_value_in_the_config_file_is_a_config_error(tmp_path):
    bad = tmp_path / 'bad.py'
    bad.write_text(f"_base_ = ['{SHAPES}']\ntrain_cfg = dict(max_iters=0)\n")
    with pytest.raises(ConfigError, match='train_cfg.max_iters is 0'):
        load_config(str(bad))


@pytest.mark.parametrize('device,message', [
    ('banana', "'banana' is not a torch device"),
    ('cuda:0', "'cuda:0': torch sees no CUDA GPU"),
    ('meta', "only cpu and cuda devices"),
])
def test_device_is_checked(device, message):
    from mmseg_ext.inference.predictor import resolve_device
    if device.startswith('cuda') and torch.cuda.is_available():
        pytest.skip('this machine has a GPU')
    with pytest.raises(InvalidArgumentError, match=message):
        resolve_device(device)
    assert resolve_device('cpu') == 'cpu'
    code, lines = run_tool_main('inference.py', [SHAPES, 'none.pth', '--img-dir', 'no_such_dir',
                                                 '--out-dir', 'o', '--device', device])
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith('error: --device: ') and message in lines[0], lines


@pytest.mark.slow
def test_load_from_of_another_model_is_refused(tmp_path, shapes_root, fast_cpu):
    """A checkpoint whose head has another class count: refused before training with
    the keys that differ; load_from_strict=False takes what fits."""
    from mmseg_ext.config.model import build_bare_model
    # a model of 7 classes (its data sets name the 7 too, as a real config would)
    cfg = load_config(SHAPES, {'model.decode_head.num_classes': 7, **{
        f'{s}_dataloader.dataset.metainfo.classes': tuple('abcdefg')
        for s in ('train', 'val', 'test')}})
    foreign = str(tmp_path / 'other.pth')
    torch.save({'state_dict': build_bare_model(cfg).state_dict()}, foreign)
    opts = [f'train_dataloader.dataset.data_root={shapes_root}',
            f'val_dataloader.dataset.data_root={shapes_root}',
            'train_cfg.max_iters=1', 'train_cfg.val_interval=1',
            'model.data_preprocessor.size=(32,40)',
            'default_hooks.checkpoint.interval=1', 'log_level=WARNING',
            f'load_from={foreign}']
    work = str(tmp_path / 'w')
    code, lines = run_tool_main('train.py', [SHAPES, '--work-dir', work, '--cfg-options',
                                             *opts, f'visualizer.name=v1_{tmp_path.name}'])
    assert code == 1, lines
    assert lines[-1].startswith(f'error: {foreign}: does not fit the model of {SHAPES} '
                                '(2 size mismatches (decode_head.conv_seg.weight')
    assert lines[-1].endswith('set load_from_strict=False to load what fits')
    assert not osp.exists(osp.join(work, 'iter_1.pth'))
    code, lines = run_tool_main('train.py', [SHAPES, '--work-dir', work, '--cfg-options',
                                             *opts, 'load_from_strict=False',
                                             f'visualizer.name=v2_{tmp_path.name}'])
    assert code == 0, lines
    assert osp.isfile(osp.join(work, 'iter_1.pth'))


@pytest.mark.parametrize('sig, code', [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_turned_into_another_error_by_a_bare_except(sig, code):
    """mmengine's Config.pretty_text catches everything (a bare ``except:``) and raises
    ``SyntaxError('Failed to format the config file')``: a SIGTERM during a checkpoint
    save became that error. The signal decides the exit all the same."""
    from mmseg_ext.utils.cli import cli_main

    @cli_main
    def tool():
        try:
            os.kill(os.getpid(), sig)
            time.sleep(5)
        except:  # noqa: E722  (what mmengine does)
            raise SyntaxError('Failed to format the config file') from None
        return 0

    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as stop:
        tool()
    assert stop.value.code == code
    assert err.getvalue().strip() == 'error: interrupted'
    # and the next tool run in this process is not taken for interrupted
    ok = cli_main(lambda: 0)
    with pytest.raises(SystemExit) as stop:
        ok()
    assert stop.value.code == 0


@pytest.mark.slow
def test_resume_of_another_model_is_refused(tmp_path, shapes_root, fast_cpu):
    opts = [f'train_dataloader.dataset.data_root={shapes_root}',
            f'val_dataloader.dataset.data_root={shapes_root}',
            'train_cfg.max_iters=1', 'train_cfg.val_interval=1',
            'model.data_preprocessor.size=(32,40)',
            'default_hooks.checkpoint.interval=1', 'log_level=WARNING']
    work = str(tmp_path / 'w')
    code, lines = run_tool_main('train.py', [SHAPES, '--work-dir', work, '--cfg-options',
                                             *opts, f'visualizer.name=r1_{tmp_path.name}'])
    assert code == 0, lines
    code, lines = run_tool_main('train.py', [
        SHAPES, '--work-dir', work, '--resume', '--cfg-options', *opts,
        'model.decode_head.num_classes=5', 'train_cfg.max_iters=2',
        *(f'{s}_dataloader.dataset.metainfo.classes=(a,b,c,d,e)'
          for s in ('train', 'val', 'test')),
        f'visualizer.name=r2_{tmp_path.name}'])
    assert code == 1, lines
    assert lines[-1].startswith(f'error: {work}/iter_1.pth: does not fit the model of ')
    assert lines[-1].endswith('resume it with the config that wrote it, or train in '
                              'another work directory')
    assert not osp.exists(osp.join(work, 'iter_2.pth'))


def test_a_bad_component_value_in_the_config_is_not_called_a_flag(tmp_path, shapes_root):
    """A value a registered component refuses is a config error naming the component,
    never a command-line flag the tool does not have."""
    from conftest import run_tool
    proc = run_tool('tools/train.py', 'custom_configs/demo/fcn_r18-tiny_shapes-64x80.py',
                    '--work-dir', str(tmp_path / 'w'), '--cfg-options',
                    f'train_dataloader.dataset.data_root={shapes_root}',
                    f'val_dataloader.dataset.data_root={shapes_root}',
                    "train_dataloader.dataset.pipeline.0.bit_depth=20")
    lines = [line for line in proc.stderr.splitlines() if line.startswith('error:')]
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert lines == ['error: LoadImageFromFileChecked: bit_depth must be in 8..16, got 20']


def test_one_seed_trains_the_same_weights_twice(tmp_path, shapes_root, fast_cpu):
    """``randomness.seed`` decides a run: two trainings with one seed end with the same
    weights, through every random source of the pipeline (mmcv's flip, albumentations'
    own generator, a data-loader worker); another seed ends elsewhere. Before the
    albumentations bridge followed the seeded generator, the same seed trained apart."""
    config = tmp_path / 'seeded.py'
    config.write_text(
        f"_base_ = [{SHAPES!r}]\n"
        "train_pipeline = _base_.train_pipeline\n"
        "train_pipeline.insert(2, dict(type='Albumentations', transforms=[\n"
        "    dict(type='RandomBrightnessContrast', p=1.0),\n"
        "    dict(type='RandomCrop', height=24, width=30, p=1.0)]))\n"
        "train_dataloader = dict(num_workers=1, dataset=dict(pipeline=train_pipeline))\n")

    def train(name, seed):
        work = str(tmp_path / name)
        opts = [f'train_dataloader.dataset.data_root={shapes_root}',
                f'val_dataloader.dataset.data_root={shapes_root}',
                'train_cfg.max_iters=3', 'train_cfg.val_interval=3',
                'model.data_preprocessor.size=(24,30)',
                'default_hooks.checkpoint.interval=3', 'log_level=WARNING',
                f'randomness.seed={seed}', f'visualizer.name={name}_{tmp_path.name}']
        code, lines = run_tool_main('train.py', [str(config), '--work-dir', work,
                                                 '--cfg-options', *opts])
        assert code == 0, lines
        state = torch.load(osp.join(work, 'iter_3.pth'), map_location='cpu',
                           weights_only=False)['state_dict']
        return {k: v.clone() for k, v in state.items()}

    first, again, other = train('a', 5), train('b', 5), train('c', 6)
    assert first.keys() == again.keys() == other.keys()
    for key in first:
        assert torch.equal(first[key], again[key]), key
    assert any(not torch.equal(first[k], other[k]) for k in first
               if first[k].is_floating_point())
