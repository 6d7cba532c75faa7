"""Round T of bad inputs (issue 28): ``tools/test.py``'s drawings and the stop signals.

Each test names the finding of the round it closes (T-1 ... T-6; the report's
reproductions ran the real tools on tiny data).
"""
import os
import os.path as osp

import pytest

from mmseg_ext.utils.errors import InvalidArgumentError, OutputError

from .cv_fakes import HANDBONE, SHAPES, shapes_world
from .test_bad_inputs import assert_refused, run_main
from .test_ownership import cli_options


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    return shapes_world(tmp_path_factory, 'round_t')


def test_show_without_a_display_is_refused_before_the_test(shapes, tmp_path, monkeypatch):
    """T-2: ``--show --wait-time 0`` on a machine without a display waited forever for a
    key press in a window that never opened."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv('DISPLAY', raising=False)
    monkeypatch.delenv('WAYLAND_DISPLAY', raising=False)
    argv = [SHAPES, shapes['ckpt'], '--work-dir', 'wd', *cli_options(shapes['root'])]
    code, lines = run_main('test.py', [*argv, '--show', '--wait-time', '0'])
    assert_refused(code, lines, 2, 'error: --show: no display to show the predictions on '
                   '(neither DISPLAY nor WAYLAND_DISPLAY is set)')
    assert os.listdir(tmp_path) == []  # refused before the work dir was made
    # the same check for a library caller, and a display lets it through
    from mmseg_ext.training.runner import check_display
    with pytest.raises(InvalidArgumentError, match='^show: no display'):
        check_display()
    monkeypatch.setenv('WAYLAND_DISPLAY', 'wayland-0')
    check_display()


def test_show_and_show_dir_together_are_refused(shapes, tmp_path, monkeypatch):
    """T-3: with both, mmseg's hook only shows each picture, and the published folder
    of drawings held none (exit 0)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv('DISPLAY', ':0')
    argv = [SHAPES, shapes['ckpt'], '--work-dir', 'wd', *cli_options(shapes['root'])]
    code, lines = run_main('test.py', [*argv, '--show', '--show-dir', 'drawn'])
    assert_refused(code, lines, 2, 'error: --show: does not go with --show-dir')
    assert os.listdir(tmp_path) == []
    from mmseg_ext.training.runner import test_config
    with pytest.raises(InvalidArgumentError, match='^show_dir: does not go with show'):
        test_config(SHAPES, shapes['ckpt'], show=True, show_dir=str(tmp_path / 'd'))


def test_a_data_root_that_is_not_there_is_no_input(shapes, tmp_path, monkeypatch):
    """T-4: ``test.py --show-dir .`` in an empty folder was refused as "holding" the
    config's default training root, which the test does not read and which did not
    exist there. A root that exists is still an input."""
    from mmseg_ext.utils.path_roles import config_data_inputs
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'here').mkdir()
    options = {'train_dataloader.dataset.data_root': 'not_there',
               'val_dataloader.dataset.data_root': 'here',
               'test_dataloader.dataset.data_root': shapes['root']}
    assert config_data_inputs(SHAPES, options) == ['here', shapes['root']]
    # the report's command: only the test root given, the default training root absent
    empty = tmp_path / 'empty'
    empty.mkdir()
    monkeypatch.chdir(empty)
    code, lines = run_main('test.py', [
        SHAPES, shapes['ckpt'], '--work-dir', str(tmp_path / 'wd'), '--show-dir', '.',
        '--cfg-options', f'test_dataloader.dataset.data_root={shapes["root"]}',
        'model.data_preprocessor.size=(32,40)', 'log_level=WARNING'])
    assert code == 0, lines
    drawn = [p for p in empty.rglob('*.png')]
    assert len(drawn) == len(os.listdir(osp.join(shapes['root'], 'images', 'val')))


def test_the_force_hint_only_from_a_tool_that_has_force(tmp_path):
    """T-5: a folder that appeared at ``--show-dir`` during a test was refused with "use
    --force to replace it", an option test.py does not have."""
    import contextlib
    import io

    from mmseg_ext.utils.cli import ToolParser, cli_main
    from mmseg_ext.utils.errors import OutputExistsError

    def tool_with(*options):
        @cli_main
        def main(argv):
            parser = ToolParser()
            parser.add_argument('--out', role='output')
            for option in options:
                parser.add_argument(option, action='store_true')
            args = parser.parse_args(argv)
            raise OutputExistsError(args.out)
        return main

    for options, expected in (((), f'error: {tmp_path}/x: already exists; not replacing '
                                   'it (remove it, or choose another output)'),
                              (('--force',), f'error: {tmp_path}/x: already exists (use '
                                             '--force to replace it)')):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as stop:
            tool_with(*options)(['--out', str(tmp_path / 'x')])
        assert stop.value.code == 1
        assert err.getvalue().strip() == expected


def test_a_link_at_a_new_folder_output_is_named_as_one(tmp_path):
    """T-6: a ``--show-dir`` (or ``--out``) that is a link, to an empty folder or
    dangling, was refused as "exists and is not a folder"."""
    from mmseg_ext.training.runner import check_new_folder
    (tmp_path / 'empty').mkdir()
    for name, target in (('to_empty', tmp_path / 'empty'), ('dangling', tmp_path / 'gone')):
        os.symlink(target, tmp_path / name)
        with pytest.raises(OutputError, match=f'^{tmp_path / name}: is a symbolic link '
                           rf'\(to {target}\), not a folder'):
            check_new_folder(str(tmp_path / name))
    (tmp_path / 'file').write_text('mine\n')
    with pytest.raises(OutputError, match='exists and is not a folder'):
        check_new_folder(str(tmp_path / 'file'))
    assert (tmp_path / 'file').read_text() == 'mine\n'


# ------------------------------------------------------------------ round U (my part)
def _shapes_classes():
    from mmseg_ext.config.loading import load_config
    from mmseg_ext.config.tta import config_classes
    return config_classes(load_config(SHAPES))


def test_a_metainfo_that_is_not_a_dict_is_one_line(shapes, tmp_path, monkeypatch):
    """U-1: ``--cfg-options test_dataloader.dataset.metainfo=[1,2]`` (or ``=abc``) was a
    traceback from deep in the config checks, in test.py, train.py and inference.py."""
    monkeypatch.chdir(tmp_path)
    argv = [SHAPES, shapes['ckpt'], '--work-dir', 'wd', *cli_options(shapes['root'])]
    for value, shown in (('[1,2]', '[1, 2]'), ('abc', "'abc'")):
        code, lines = run_main('test.py', [*argv, f'test_dataloader.dataset.metainfo={value}'])
        assert_refused(code, lines, 2, f'error: --cfg-options: test_dataloader.dataset.'
                       f'metainfo is {shown}, not a dict')
        code, lines = run_main('train.py', [SHAPES, '--work-dir', 'wd', '--cfg-options',
                                            f'train_dataloader.dataset.metainfo={value}'])
        assert_refused(code, lines, 2, 'error: --cfg-options: train_dataloader.dataset.'
                       f'metainfo is {shown}, not a dict')
    assert os.listdir(tmp_path) == []


def test_a_class_list_in_another_order_than_the_checkpoint_is_refused(shapes, tmp_path,
                                                                      monkeypatch):
    """U-2: test.py scored channel k against another class when the config listed the
    classes in another order than the checkpoint was trained with (exit 0)."""
    import torch
    monkeypatch.chdir(tmp_path)
    classes = list(_shapes_classes())
    ckpt = torch.load(shapes['ckpt'], weights_only=False)
    ckpt['meta'] = {'dataset_meta': {'classes': classes}}
    trained = str(tmp_path / 'trained.pth')
    torch.save(ckpt, trained)
    swapped = [classes[1], classes[0], *classes[2:]]
    argv = [SHAPES, trained, '--work-dir', 'wd', *cli_options(shapes['root'])]
    code, lines = run_main('test.py', [*argv, 'test_dataloader.dataset.metainfo.classes='
                                       + '(' + ','.join(swapped) + ')'])
    assert_refused(code, lines, 1, f'error: {SHAPES}: class 0 of its data set is '
                   f'{swapped[0]!r}, but {trained} was trained with {classes[0]!r} there')
    assert os.listdir(tmp_path) == ['trained.pth']
    code, lines = run_main('test.py', argv)  # the checkpoint's own order
    assert code == 0, lines


def test_a_class_subset_with_the_full_head_is_named_before_the_test(shapes, tmp_path,
                                                                    monkeypatch):
    """U-3: a 2-class data set with a model of more classes ran the whole test, then was
    blamed on "load the annotations after Resize"."""
    monkeypatch.chdir(tmp_path)
    classes = _shapes_classes()
    argv = [SHAPES, shapes['ckpt'], '--work-dir', 'wd', *cli_options(shapes['root'])]
    code, lines = run_main('test.py', [*argv, 'test_dataloader.dataset.metainfo.classes='
                                       f'({classes[0]},{classes[1]})'])
    assert_refused(code, lines, 2, 'error: --cfg-options: test_dataloader.dataset has 2 '
                   f'classes ({classes[0]}, {classes[1]}), but the model predicts '
                   f'{len(classes)} (model.decode_head.num_classes)')
    assert os.listdir(tmp_path) == []


def test_hand_bone_points_and_sizes_are_json_numbers(tmp_path):
    """U-6: text and boolean coordinates, and a size of "64" or 64.5, were read as
    numbers (64.5 cut to 64); COCO and threshold files refuse the same values."""
    import json

    from mmseg_ext.io.hand_bone_json import parse_hand_bone_json
    from mmseg_ext.utils.errors import DataFileError
    square = [[1, 1], [9, 1], [9, 9], [1, 9]]

    def write(name, points=square, meta=(16, 16)):
        path = tmp_path / f'{name}.json'
        path.write_text(json.dumps({'annotations': [
            {'id': 'a1', 'type': 'poly_seg', 'label': 'finger-1', 'points': points}],
            'metadata': {'height': meta[0], 'width': meta[1]}}))
        return str(path)

    cases = {
        'text': (write('text', points=[['1', '1'], *square[1:]]), "points hold the text '1'"),
        'bool': (write('bool', points=[[True, 1], *square[1:]]),
                 'points hold the boolean true'),
        'null': (write('null', points=[[None, 1], *square[1:]]), 'points hold null'),
        'half': (write('half', meta=(16, 16.5)),
                 'metadata height/width are not whole numbers (16, 16.5)'),
        'textsize': (write('textsize', meta=('16', 16)),
                     "metadata height/width are not whole numbers ('16', 16)"),
    }
    for path, message in cases.values():
        with pytest.raises(DataFileError, match=message.replace('(', r'\(').replace(')', r'\)')):
            parse_hand_bone_json(path, ['finger-1'])
    # whole numbers written as floats stay fine, and the polygon is read as given
    polys = parse_hand_bone_json(write('ok', points=[[1.0, 1], *square[1:]], meta=(16.0, 16)),
                                 ['finger-1'])
    assert (polys.height, polys.width) == (16, 16)
    assert polys.points[0].tolist() == [[1, 1], [9, 1], [9, 9], [1, 9]]


def test_a_resize_beyond_the_pixel_cap_names_the_config_value(tmp_path, monkeypatch):
    """U-7: ``scale=(100000,100000)`` allocated 30 GB per image and blamed the image."""
    from mmseg_ext.config.loading import load_config
    monkeypatch.chdir(tmp_path)
    steps = load_config(HANDBONE).test_dataloader.dataset.pipeline
    i = next(k for k, s in enumerate(steps) if 'scale' in s)
    key = f'test_dataloader.dataset.pipeline.{i}.scale'
    code, lines = run_main('train.py', [HANDBONE, '--work-dir', 'wd', '--cfg-options',
                                        f'{key}=(100000,100000)'])
    assert_refused(code, lines, 2, f'error: --cfg-options: {key} is (100000, 100000) '
                   f'({steps[i]["type"]}): 10,000,000,000 pixels, beyond the cap of '
                   '268,435,456 (the environment variable MMSEG_EXT_MAX_PIXELS raises it)')
    assert os.listdir(tmp_path) == []
    load_config(HANDBONE, {key: (16384, 16384)})  # at the cap: allowed


def test_a_dict_on_the_command_line_is_one_line_and_its_keys_work(shapes, tmp_path,
                                                                 monkeypatch):
    """U-9: ``metainfo=dict(...)`` or ``{...}`` gave "maximum recursion depth exceeded",
    and ``metainfo.classes=(...)`` was refused because the config sets no metainfo."""
    monkeypatch.chdir(tmp_path)
    argv = [SHAPES, shapes['ckpt'], '--work-dir', 'wd', *cli_options(shapes['root'])]
    for value in ('dict(classes=("a","b"))', "{'classes': ('a', 'b')}"):
        code, lines = run_main('test.py', [*argv, f'test_dataloader.dataset.metainfo={value}'])
        assert_refused(code, lines, 2, 'test_dataloader.dataset.metainfo=' + value.strip()
                       + ': a dict cannot be given on the command line', 'test_dataloader.'
                       'dataset.metainfo.<name>=...')
    from mmseg_ext.config.loading import load_config
    classes = _shapes_classes()
    cfg = load_config(SHAPES, {'test_dataloader.dataset.metainfo.classes': tuple(classes)})
    assert tuple(cfg.test_dataloader.dataset.metainfo['classes']) == classes
    # a dict that the component does not take is still refused, named
    from mmseg_ext.utils.errors import InvalidArgumentError
    with pytest.raises(InvalidArgumentError, match='has no test_dataloader.dataset.metainfoo'):
        load_config(SHAPES, {'test_dataloader.dataset.metainfoo.classes': ('a',)})


def _prob_folder(root, name, size, source, seed=0):
    import numpy as np

    from mmseg_ext.io.probs import ProbFolderWriter
    rng = np.random.default_rng(seed)
    with ProbFolderWriter(str(root / name), ('a', 'b'), 'multi-label', source=source) as w:
        w.write(rng.random((2, *size)).astype(np.float32), 'x.png', (16, 16))
        w.commit()
    return str(root / name)


def test_one_model_stored_at_two_sizes_is_not_an_ensemble(tmp_path):
    """U-10: the same model's probabilities at ``--out-size native`` and ``original``
    were averaged as two models (the pixel comparison needs one size). V-4 and V-5:
    the rule compares the checkpoint by content and the views by what the predictor
    ran, so a copy of the checkpoint is the same model and another test scale is not."""
    from mmseg_ext.ensembling.ensemble import soft_vote
    old = dict(config='c.py', checkpoint='m.pth', tta=False)  # before the hashes
    native = _prob_folder(tmp_path, 'native', (8, 8), dict(old, out_size='native'))
    original = _prob_folder(tmp_path, 'original', (16, 16), dict(old, out_size='original'),
                            seed=1)
    with pytest.raises(InvalidArgumentError, match=f"^prob_dirs: {native} and {original} "
                       r"were predicted by one model \(m.pth\) with the same views, stored "
                       "as uint8 at 'native' size and uint8 at 'original' size"):
        soft_vote([native, original], str(tmp_path / 'ens'), progress=False)
    assert not (tmp_path / 'ens').exists()
    # by content: a copy of the checkpoint under another path, at two sizes
    same = dict(config='c.py', tta=False, checkpoint_sha256='ab' * 32, views='v1')
    a = _prob_folder(tmp_path, 'a', (8, 8), dict(same, checkpoint='m.pth', out_size='native'))
    b = _prob_folder(tmp_path, 'b', (16, 16), dict(same, checkpoint='copy.pth',
                                                     out_size='original'), seed=2)
    with pytest.raises(InvalidArgumentError, match='predicted by one model'):
        soft_vote([a, b], str(tmp_path / 'ens'), progress=False)
    # the same weights with other views (another test scale), and another model: members
    c = _prob_folder(tmp_path, 'c', (16, 16), dict(same, checkpoint='m.pth', views='v2',
                                                     out_size='original'), seed=3)
    d = _prob_folder(tmp_path, 'd', (16, 16), dict(old, checkpoint='n.pth',
                                                     out_size='original'), seed=4)
    summary = soft_vote([a, c, d, original], str(tmp_path / 'ens'), progress=False)
    assert (summary.images, summary.models) == (1, 4)


def test_inference_records_the_model_by_content_and_its_views(tmp_path):
    """The ``source`` record behind that rule: a copied checkpoint hashes the same, and
    another test scale gives other views."""
    import shutil

    from mmseg_ext.inference.predictor import build_predictor
    from mmseg_ext.inference.source import prediction_source

    from .cv_fakes import model_checkpoint
    ckpt = model_checkpoint(HANDBONE, tmp_path / 'm.pth')
    shutil.copy(ckpt, tmp_path / 'copy.pth')
    plain = build_predictor(HANDBONE, ckpt)
    steps = plain.test_pipeline
    i = next(k for k, step in enumerate(steps) if 'scale' in step)
    other = build_predictor(HANDBONE, str(tmp_path / 'copy.pth'), cfg_options={
        f'test_dataloader.dataset.pipeline.{i}.scale': (96, 96)})
    first = prediction_source(plain, HANDBONE, ckpt, False, 'native')
    second = prediction_source(plain, HANDBONE, str(tmp_path / 'copy.pth'), False, 'original')
    third = prediction_source(other, HANDBONE, str(tmp_path / 'copy.pth'), False, 'native')
    import hashlib
    assert first['checkpoint_sha256'] == hashlib.sha256(open(ckpt, 'rb').read()).hexdigest()
    assert first['checkpoint_sha256'] == second['checkpoint_sha256'] == \
        third['checkpoint_sha256']
    assert first['views'] == second['views'] != third['views']


def test_one_threshold_out_of_range_names_the_option(shapes, tmp_path, monkeypatch):
    """U-14: ``model.test_cfg.threshold=7`` said "threshold of '0' is 7" after the model
    was built (exit 1)."""
    monkeypatch.chdir(tmp_path)
    argv = [SHAPES, shapes['ckpt'], '--work-dir', 'wd', *cli_options(shapes['root'])]
    code, lines = run_main('test.py', [*argv, 'model.test_cfg.threshold=7'])
    assert_refused(code, lines, 2, 'error: --cfg-options: model.test_cfg.threshold: '
                   'threshold is 7, outside [0, 1]')
    code, lines = run_main('test.py', [*argv, 'model.test_cfg.threshold=[0.5,2]'])
    assert_refused(code, lines, 2, "model.test_cfg.threshold: threshold of '1' is 2, "
                   'outside [0, 1]')
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------------ round V (config checks)
def test_settings_dicts_and_new_components_may_be_added_on_the_command_line():
    """V-3: ``optim_wrapper.clip_grad.max_norm``, ``optim_wrapper.paramwise_cfg.*`` and
    a new hook were refused as "has no ..."; V-9: a new head or sampler without its
    ``type`` went through to a KeyError traceback at the build."""
    from mmseg_ext.config.loading import load_config
    cfg = load_config(SHAPES, {'optim_wrapper.clip_grad.max_norm': 1.0,
                               'optim_wrapper.paramwise_cfg.norm_decay_mult': 0.0,
                               'default_hooks.early_stopping.type': 'EarlyStoppingHook',
                               'default_hooks.early_stopping.monitor': 'mIoU'})
    assert cfg.optim_wrapper.clip_grad == dict(max_norm=1.0)
    assert cfg.optim_wrapper.paramwise_cfg == dict(norm_decay_mult=0.0)
    assert cfg.default_hooks.early_stopping == dict(type='EarlyStoppingHook', monitor='mIoU')
    for key in ('model.auxiliary_head.num_classes', 'model.decode_head.sampler.thresh'):
        missing = key.rsplit('.', 1)[0]
        with pytest.raises(InvalidArgumentError, match=rf'^cfg_options: {key}: {SHAPES} has '
                           rf'no {missing} \(to add it, give its type too: '
                           rf'{missing}.type=\.\.\.'):
            load_config(SHAPES, {key: 4})


@pytest.mark.parametrize('step, value, words', [
    ('scale', (float('inf'), 128), 'it must be a positive number or a list of them'),
    ('scale', 20000, '400,000,000 pixels, beyond the cap'),
    ('scale', (20000,), '400,000,000 pixels, beyond the cap'),
    ('scale_factor', 1000.0, 'a resize by more than 64 times each side'),
])
def test_the_pixel_cap_covers_every_form_of_a_size(tmp_path, step, value, words):
    """V-10: ``scale=(inf, 128)`` crashed the cap check; V-11: a single-int scale, a
    huge ``scale_factor``, ``RandomChoiceResize``'s ``scales`` and ``ratio_range``
    passed it."""
    from mmseg_ext.config.loading import load_config
    steps = load_config(HANDBONE).test_dataloader.dataset.pipeline
    i = next(k for k, s in enumerate(steps) if 'scale' in s)
    key = f'test_dataloader.dataset.pipeline.{i}.{step}'
    with pytest.raises(InvalidArgumentError, match=words):
        load_config(HANDBONE, {key: value})


def test_random_resizes_count_their_largest_output(tmp_path):
    from mmengine.config import Config

    from mmseg_ext.config.checks import check_pipeline_sizes
    from mmseg_ext.utils.errors import ConfigError
    for step, pixels in ((dict(type='RandomChoiceResize', scales=[(64, 64), (20000, 20000)]),
                          '400,000,000'),
                         (dict(type='RandomResize', scale=(16384, 16384),
                               ratio_range=(0.5, 2.0)), '1,073,741,824')):
        cfg = Config(dict(train_pipeline=[dict(type='LoadImageFromFile'), step]))
        with pytest.raises(ConfigError, match=f'{pixels} pixels, beyond the cap'):
            check_pipeline_sizes(cfg, 'c.py', {})
    ok = Config(dict(train_pipeline=[dict(type='RandomResize', scale=(2048, 512),
                                          ratio_range=(0.5, 2.0))]))
    check_pipeline_sizes(ok, 'c.py', {})


def test_options_under_a_wrapper_are_named_as_typed():
    """V-12: a bad value under ``model.segmentor`` or ``datasets.1`` was blamed on the
    shipped config file (exit 1) under a key the user did not type."""
    from mmseg_ext.config.loading import load_config
    unimatch = 'custom_configs/jsrt/unimatch_unet-s5-tiny_multilabel_1xb4-1k_jsrt-chest-256x256.py'
    with pytest.raises(InvalidArgumentError, match=r'^cfg_options: model.segmentor.test_cfg.'
                       r'threshold: threshold is 1.5, outside \[0, 1\]'):
        load_config(unimatch, {'model.segmentor.test_cfg.threshold': 1.5})
    with pytest.raises(InvalidArgumentError, match=r'^cfg_options: train_dataloader.dataset.'
                       r'datasets.1 has 2 classes \(a, b\), but the model predicts 5'):
        load_config(unimatch, {'train_dataloader.dataset.datasets.1.metainfo.classes':
                               ('a', 'b')})
    from mmseg_ext.config.checks import check_test_threshold
    from mmseg_ext.utils.errors import ConfigError
    cfg = load_config(unimatch)
    cfg.model.segmentor.test_cfg.threshold = {0: 0.4}  # mmengine cannot merge it from options
    with pytest.raises(ConfigError, match=r'^c.py: model.segmentor.test_cfg.threshold: the '
                       'keys of a threshold dict are class names, got 0'):
        check_test_threshold(cfg, 'c.py', {})


def test_every_head_predicts_the_data_sets_classes():
    """V-15: an auxiliary head, or the first stage of a cascade, with another class
    count trained with exit 0."""
    from mmseg_ext.config.checks import check_class_count
    from mmseg_ext.config.loading import load_config
    from mmseg_ext.utils.errors import ConfigError
    cfg = load_config(SHAPES)
    cfg.model.auxiliary_head = dict(type='FCNHead', num_classes=7)
    with pytest.raises(ConfigError, match=r'has 4 classes \(background, disc, square, '
                       r'triangle\), but the model predicts 7 \(model.auxiliary_head.'
                       r'num_classes\)'):
        check_class_count(cfg, 'c.py', {})
    cfg.model.auxiliary_head = [dict(type='FCNHead', num_classes=4),
                                dict(type='FCNHead', num_classes=9)]
    with pytest.raises(ConfigError, match=r'model.auxiliary_head.1.num_classes'):
        check_class_count(cfg, 'c.py', {})
    cfg.model.auxiliary_head = None
    cfg.model.decode_head = [dict(type='FCNHead', num_classes=6),
                             dict(type='OCRHead', num_classes=4)]
    with pytest.raises(ConfigError, match=r'model.decode_head.0.num_classes'):
        check_class_count(cfg, 'c.py', {})


def test_a_checkpoint_meta_of_another_shape_and_a_renamed_class(tmp_path):
    """V-7: ``meta.dataset_meta`` that is not a dict was a traceback; V-13: a renamed
    class was called "another class order"."""
    from mmseg_ext.config.checks import check_checkpoint_classes
    from mmseg_ext.config.loading import load_config
    from mmseg_ext.utils.errors import ConfigError
    cfg = load_config(SHAPES)
    classes = list(_shapes_classes())
    for meta in ('abc', None, {'dataset_meta': 'abc'}, {'dataset_meta': {'classes': 'x'}}):
        check_checkpoint_classes(cfg, {'meta': meta}, SHAPES, 'm.pth')  # nothing to compare
    renamed = classes[:-1] + ['tri']
    with pytest.raises(ConfigError, match=rf"class {len(classes) - 1} of its data set is "
                       rf"'{classes[-1]}', but m.pth was trained with 'tri' there \(another "
                       r"class name\)"):
        check_checkpoint_classes(cfg, {'meta': {'dataset_meta': {'classes': renamed}}},
                                 SHAPES, 'm.pth')


@pytest.mark.parametrize('options, words', [
    ({'optim_wrapper.clip_grad.max_norm': -1}, 'optim_wrapper.clip_grad.max_norm is -1: it '
     'must be a finite number > 0'),
    ({'optim_wrapper.clip_grad.max_norm': 0}, 'max_norm is 0'),
    ({'optim_wrapper.clip_grad.max_normm': 1}, "optim_wrapper.clip_grad has 'max_normm', "
     'which clipping by norm does not take'),
    ({'optim_wrapper.clip_grad.norm_type': 2}, r'optim_wrapper.clip_grad has no max_norm: clipping by norm needs it'),
    ({'optim_wrapper.clip_grad.max_norm': 1, 'optim_wrapper.clip_grad.norm_type': -2},
     'norm_type is -2'),
])
def test_gradient_clipping_is_checked_when_the_config_is_read(options, words):
    """Round W's W-3 and W-2: ``clip_grad.max_norm=-1`` trained by gradient ascent with
    exit 0, 0 zeroed every gradient, and a misspelt key failed at the first step."""
    from mmseg_ext.config.loading import load_config
    with pytest.raises(InvalidArgumentError, match=words):
        load_config(SHAPES, options)
    cfg = load_config(SHAPES, {'optim_wrapper.clip_grad.max_norm': 1.0,
                               'optim_wrapper.clip_grad.norm_type': 2})
    assert cfg.optim_wrapper.clip_grad == dict(max_norm=1.0, norm_type=2)


def _with_classes(src, path, classes):
    """A copy of checkpoint ``src`` whose meta names ``classes`` (None: no meta)."""
    import torch
    ckpt = torch.load(src, weights_only=False)
    ckpt['meta'] = {} if classes is None else {'dataset_meta': {'classes': classes}}
    torch.save(ckpt, str(path))
    return str(path)


def _no_classes_config(tmp_path):
    """The shapes config with ``metainfo=None``: plain data sets that name no classes."""
    path = tmp_path / 'nometa.py'
    path.write_text(f'_base_ = [{SHAPES!r}]\n' + ''.join(
        f'{s}_dataloader = dict(dataset=dict(metainfo=None))\n'
        for s in ('train', 'val', 'test')))
    return str(path)


def test_inference_refuses_checkpoint_classes_the_config_contradicts(shapes, tmp_path,
                                                                     monkeypatch):
    """W-11: inference.py wrote a checkpoint's classes in another order (or numbers as
    names) into index.json, where test.py refused the same pair; a config that names no
    classes still trusts the checkpoint."""
    from mmseg_ext.inference.predictor import build_predictor
    from mmseg_ext.utils.errors import ConfigError
    monkeypatch.chdir(tmp_path)
    classes = list(_shapes_classes())
    rev = _with_classes(shapes['ckpt'], tmp_path / 'rev.pth', classes[::-1])
    code, lines = run_main('inference.py', [
        SHAPES, rev, '--img-dir', osp.join(shapes['root'], 'images', 'val'), '--out-dir',
        'probs', '--no-progress', '--device', 'cpu', '--cfg-options',
        'model.data_preprocessor.size=(32,40)'])
    assert_refused(code, lines, 1, f'error: {SHAPES}: class 0 of its data set is '
                   f'{classes[0]!r}, but {rev} was trained with {classes[-1]!r} there '
                   '(another class order)')
    assert not (tmp_path / 'probs').exists()
    # the one place every predicting tool builds its model (cv, export, demo, self-training)
    renamed = _with_classes(shapes['ckpt'], tmp_path / 'renamed.pth', classes[:-1] + ['tri'])
    with pytest.raises(ConfigError, match=rf"class {len(classes) - 1} of its data set is "
                       rf"'{classes[-1]}', but {renamed} was trained with 'tri' there "
                       r'\(another class name\)'):
        build_predictor(SHAPES, renamed)
    assert build_predictor(SHAPES, _with_classes(shapes['ckpt'], tmp_path / 'ok.pth',
                                                 classes)).classes == tuple(classes)
    # no classes in the config: the checkpoint's are right, in its order
    assert build_predictor(_no_classes_config(tmp_path), rev).classes == tuple(classes[::-1])


@pytest.mark.parametrize('change, problem', [
    (lambda c: c + ['star'], ' names 5 classes (C0, C1, C2, C3, star), but its weights '
     'predict 4'),
    (lambda c: c[:1] + c[:3], ": class 'C0' appears twice (class names must be distinct)"),
    (lambda c: c[:-1] + [c[-1] + ' '], ": class 3: 'C3 ' starts or ends with white space"),
    (lambda c: list(range(len(c))), ': class 0: 0 is not text'),
])
def test_a_bad_checkpoint_class_list_names_the_checkpoint(shapes, tmp_path, change,
                                                          problem):
    """W-12: 5 names for 4 output channels, duplicates, white space or numbers in a
    checkpoint's class list were blamed on the config, an image or the output folder
    (or only failed at the first image); refused when the checkpoint is read."""
    import torch

    from mmseg_ext.config.checks import check_checkpoint_classes
    from mmseg_ext.config.loading import load_config
    from mmseg_ext.inference.predictor import build_predictor
    from mmseg_ext.utils.errors import CheckpointError
    classes = list(_shapes_classes())
    for i, name in enumerate(classes):
        problem = problem.replace(f'C{i}', name)
    bad = _with_classes(shapes['ckpt'], tmp_path / 'bad.pth', change(classes))
    for config in (SHAPES, _no_classes_config(tmp_path)):  # whether the config names any
        with pytest.raises(CheckpointError) as err:
            build_predictor(config, bad)
        assert str(err.value) == f'{bad}: meta.dataset_meta.classes{problem}'
    # tools/test.py's and self-training's check of the pair name it too
    with pytest.raises(CheckpointError) as err:
        check_checkpoint_classes(load_config(SHAPES), torch.load(bad, weights_only=False),
                                 SHAPES, bad)
    assert str(err.value).startswith(f'{bad}: meta.dataset_meta.classes{problem}')


def test_test_py_takes_the_checkpoints_class_names_when_the_data_set_has_none(
        shapes, tmp_path, monkeypatch):
    """W-13: test.py on a data set with ``metainfo=None`` ended the whole test in
    ``KeyError: 'classes'`` (mmseg's IoUMetric), although the checkpoint names them."""
    from mmseg_ext.training.runner import test_checkpoint, test_config

    from .cv_fakes import shapes_cfg_options
    monkeypatch.chdir(tmp_path)
    named = _with_classes(shapes['ckpt'], tmp_path / 'named.pth', list(_shapes_classes()))
    nometa = _no_classes_config(tmp_path)

    def run(config, work_dir):
        cfg = test_config(config, named, work_dir=work_dir,
                          cfg_options=shapes_cfg_options(shapes['root']))
        return test_checkpoint(cfg, named, config)
    expected = run(SHAPES, 'named')  # the data set names the classes itself
    assert 'mIoU' in expected
    assert run(nometa, 'nometa') == expected
    # neither names them: one line naming the config key, before the first image
    bare = _with_classes(shapes['ckpt'], tmp_path / 'bare.pth', None)
    code, lines = run_main('test.py', [nometa, bare, '--work-dir', 'wd',
                                       *cli_options(shapes['root'])])
    assert_refused(code, lines, 1, f'error: {nometa}: test_dataloader.dataset names no '
                   f'classes, and {bare} does not either (meta.dataset_meta.classes), but '
                   'IoUMetric needs them: set test_dataloader.dataset.metainfo.classes')
    assert not (tmp_path / 'wd').exists()


def test_inference_without_class_names_names_the_config_and_the_checkpoint(
        shapes, tmp_path, monkeypatch):
    """X-11: inference.py on a config whose data sets name no classes and a checkpoint
    without class meta said "cannot tell the class names: neither the checkpoint meta
    (dataset_meta) nor the config's dataset has them", naming neither file and no fix.
    One line as test.py's, from the place every predicting tool builds its model (cv,
    export, demo, self-training, TTA choice); the setting it names is the fix."""
    from mmseg_ext.inference.predictor import build_predictor
    from mmseg_ext.utils.errors import ConfigError
    monkeypatch.chdir(tmp_path)
    nometa = _no_classes_config(tmp_path)
    bare = _with_classes(shapes['ckpt'], tmp_path / 'bare.pth', None)
    expected = (f'{nometa}: test_dataloader.dataset names no classes, and {bare} does not '
                'either (meta.dataset_meta.classes), so the probabilities cannot be named: '
                'set test_dataloader.dataset.metainfo.classes')
    img_dir = osp.join(shapes['root'], 'images', 'val')
    argv = [nometa, bare, '--img-dir', img_dir, '--out-dir', 'probs', '--no-progress',
            '--device', 'cpu']
    code, lines = run_main('inference.py', argv)
    assert_refused(code, lines, 1, f'error: {expected}')
    assert not (tmp_path / 'probs').exists()
    with pytest.raises(ConfigError) as err:
        build_predictor(nometa, bare)
    assert str(err.value) == expected
    code, lines = run_main('export.py', [nometa, bare, '--out', 'm.onnx'])
    assert_refused(code, lines, 1, f'error: {expected}')
    # the fix the message names
    classes = list(_shapes_classes())
    code, _ = run_main('inference.py', argv + [
        '--cfg-options', f'test_dataloader.dataset.metainfo.classes=[{",".join(classes)}]'])
    assert code in (0, None)
    import json
    assert json.load(open(tmp_path / 'probs' / 'index.json'))['classes'] == classes


@pytest.mark.parametrize('student, words', [
    (('a', 'b'), "learns 2, and one list ends first; give both configs the same classes in "
     'the same order (pseudo-labels would mark a missing class absent)'),
    (('a', 'c', 'b'), "learns 3, and class 1 is 'b' against 'c'; give both configs the same "
     'classes in the same order (another class order: pseudo-labels would teach the '
     'student one class as another)'),
    (('a', 'b', 'd'), "learns 3, and class 2 is 'c' against 'd'; give both configs the same "
     'classes in the same order (another class name: pseudo-labels would teach the '
     'student one class as another)'),
])
def test_a_student_of_other_classes_is_told_its_own_reason(student, words):
    """W-15: a student config in another class order was told "(pseudo-labels would mark
    a missing class absent)", which is the reason of another count only."""
    from mmengine.config import Config

    from mmseg_ext.utils.errors import ConfigError
    from mmseg_ext.workflows.self_training import check_same_classes

    def cfg(classes):
        return Config({f'{s}_dataloader': dict(dataset=dict(
            type='BaseSegDataset', metainfo=dict(classes=classes)))
            for s in ('train', 'test')})
    with pytest.raises(ConfigError) as err:
        check_same_classes(cfg(('a', 'b', 'c')), 't.py', cfg(student), 's.py')
    assert str(err.value) == ("t.py: the teacher predicts 3 classes, the student (s.py) "
                              + words)
    check_same_classes(cfg(('a', 'b', 'c')), 't.py', cfg(('a', 'b', 'c')), 's.py')
