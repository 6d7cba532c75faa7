"""Round AH of bad inputs (issue 28): files a metric or a hook names in the config
(``DumpResults.out_file_path``, ``ProfilerHook.json_trace_path``), a checkpoint name
template leaving its folder, a training that diverges, and overrides of variables that
nothing reads."""
import os.path as osp

import pytest
from conftest import CONFIG, run_tool

from mmseg_ext.utils.errors import ConfigError, InvalidArgumentError, OutputError

from .test_round_ag_cases import _train_cfg, one_error
from .test_round_x_cases import _options


@pytest.mark.parametrize('options', [
    {'val_evaluator': [dict(type='IoUMetric', iou_metrics=['mIoU']),
                       dict(type='DumpResults', out_file_path='{mine}')]},
    {'custom_hooks': [dict(type='ProfilerHook', json_trace_path='{mine}')]},
])
def test_a_file_a_metric_or_hook_names_is_never_written_over(tmp_path, shapes_root,
                                                             options):
    """AH-2, AH-3: a ``DumpResults`` metric wrote its pickle over the user's file named
    by ``out_file_path`` (train, test and every fold of cv), and a ``ProfilerHook``
    its trace over any file (the data's own label JSON). An existing file is refused
    before the run; a new name is taken; cv refuses either before its first fold."""
    mine = tmp_path / 'results.pkl'
    mine.write_bytes(b'mine')
    named = {k: [{a: (str(mine) if b == '{mine}' else b) for a, b in e.items()}
                 for e in v] for k, v in options.items()}
    with pytest.raises(OutputError, match='results.pkl: exists'):
        _train_cfg(shapes_root, tmp_path / 'w', named)
    assert mine.read_bytes() == b'mine'
    fresh = {k: [{a: (str(tmp_path / 'new.pkl') if b == '{mine}' else b)
                  for a, b in e.items()} for e in v] for k, v in options.items()}
    _train_cfg(shapes_root, tmp_path / 'w2', fresh)
    from mmseg_ext.workflows.cross_validation.workflow import load_cv_config
    with pytest.raises(ConfigError, match='fold trainings'):
        load_cv_config(CONFIG, fresh, tta=False)


@pytest.mark.parametrize('template', ['../mine/new_{}.pth', 'iter.pth', 'a_{}_{}.pth',
                                      'sub/iter_{}.pth', '.hidden_{}.pth'])
def test_a_checkpoint_name_template_stays_a_file_name(template):
    """AH-9: ``filename_tmpl='../mine/new_{}.pth'`` published checkpoints and their
    ownership records into a user's folder; a name clashing with a user file was
    refused only at the first save, after the training."""
    from mmseg_ext.config.loading import load_config
    with pytest.raises(ConfigError, match='filename_tmpl'):
        load_config(CONFIG, {'default_hooks.checkpoint.filename_tmpl': template})
    load_config(CONFIG, {'default_hooks.checkpoint.filename_tmpl': 'ckpt_{}.pth'})


@pytest.mark.parametrize('key', ['model.decode_head.loss_decode.loss_weight',
                                 'optim_wrapper.optimizer.lr'])
@pytest.mark.parametrize('value', [float('nan'), float('inf')])
def test_a_setting_that_is_not_a_finite_number_is_refused(key, value):
    """AH-1: ``loss_weight=nan`` (or inf, or a scheduler factor) trained NaN weights and
    exited 0."""
    from mmseg_ext.config.loading import load_config
    with pytest.raises(InvalidArgumentError, match='finite number'):
        load_config(CONFIG, {key: value})


def test_a_diverging_training_stops_before_saving_its_weights(tmp_path, shapes_root):
    """AH-1: ``optimizer.lr=1e30`` (finite) made the loss NaN; the run saved a NaN
    checkpoint and exited 0, and test.py scored it. It stops with one line naming the
    iteration, and no checkpoint of the diverged weights is written."""
    work = tmp_path / 'wd'
    proc = run_tool('tools/train.py', CONFIG, '--work-dir', str(work),
                    *_options(shapes_root, 4, None, 'optim_wrapper.optimizer.lr=1e30'))
    line = one_error(proc)
    assert 'diverged at iteration' in line and 'loss' in line
    assert not list(work.glob('*.pth'))


@pytest.mark.parametrize('config, key, value', [
    (CONFIG, 'data_root', '/nonexistent'), (CONFIG, 'crop_size', (32, 32)),
    ('custom_configs/jsrt/unet-s5-tiny_multilabel_1xb4-1k_jsrt-chest-256x256.py',
     'max_iters', 1)])
def test_an_override_of_a_variable_nothing_reads_is_refused(config, key, value):
    """AH-4: ``--cfg-options data_root=/nonexistent`` (or ``fold``, ``max_iters``,
    ``crop_size``) exited 0 with no effect: the file had copied the variable into other
    settings when it was read, and the dump showed the new value. Refused, naming
    settings that took its value where they can be found."""
    from mmseg_ext.config.loading import load_config
    with pytest.raises(InvalidArgumentError, match=f'nothing reads {key}'):
        load_config(config, {key: value})
    with pytest.raises(InvalidArgumentError, match='not a setting'):
        load_config(CONFIG, {'max_itres': 2})
    assert osp.isfile(CONFIG)


def test_validating_on_training_images_is_said(tmp_path, shapes_root):
    """AH-5: training on fold 1 while validating on fold 0 of the same split files is
    fine; ``subset``/``fold`` settings that make the validation images training images
    passed without a word. One warning names the overlap."""
    proc = run_tool('tools/train.py', CONFIG, '--work-dir', str(tmp_path / 'wd'),
                    *_options(shapes_root, 1, None,
                              'val_dataloader.dataset.data_prefix.img_path=images/train',
                              'val_dataloader.dataset.data_prefix.seg_map_path=labels/train'))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert '6 of the 6 validation images are also training images' in proc.stdout + \
        proc.stderr
    clean = run_tool('tools/train.py', CONFIG, '--work-dir', str(tmp_path / 'wd2'),
                     *_options(shapes_root, 1))
    assert clean.returncode == 0 and 'also training images' not in clean.stdout + clean.stderr
