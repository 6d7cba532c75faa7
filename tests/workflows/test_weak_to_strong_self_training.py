"""``tools/self_train.py --method unimatch``: the weak-to-strong training made from a
labelled-only config, end to end on tiny data (multi-label and multi-class), its
control, and the refusals made before anything trains."""
import glob
import json
import os.path as osp

import pytest
from conftest import run_tool
from mmengine.config import Config

from mmseg_ext.config.loading import load_config
from mmseg_ext.config.schedule import set_iterations
from mmseg_ext.utils.errors import ConfigError
from mmseg_ext.workflows.weak_strong_data import weak_to_strong_config, weak_view_pipeline

SHAPES = 'custom_configs/demo/fcn_r18-tiny_shapes-64x80.py'
HANDBONE = 'custom_configs/demo/unet-s5-tiny_multilabel_1xb4-1500i_handbone-synth-128x128.py'
JSRT = 'custom_configs/jsrt/unet-s5-tiny_multilabel_1xb4-1k_jsrt-chest-256x256.py'
JSRT_UNIMATCH = 'custom_configs/jsrt/unimatch_unet-s5-tiny_multilabel_1xb4-1k_jsrt-chest-256x256.py'
CAMVID = 'custom_configs/camvid/fcn_r18-tiny_1xb8-2k_camvid-half-1of8-180x240.py'
CAMVID_UNIMATCH = 'custom_configs/camvid/unimatch_fcn_r18-tiny_1xb8-2k_camvid-half-1of8-180x240.py'


# --- the schedule --------------------------------------------------------------------
def _schedule(old, schedulers):
    return Config(dict(
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=old, val_interval=old),
        param_scheduler=schedulers, default_hooks=dict(checkpoint=dict(interval=old))))


def test_a_shorter_schedule_keeps_a_warm_up_of_at_most_a_tenth_and_decays_to_its_end():
    cfg = _schedule(1000, [dict(type='LinearLR', by_epoch=False, begin=0, end=50),
                           dict(type='PolyLR', by_epoch=False, begin=50, end=1000)])
    set_iterations(cfg, 300, 'c.py')
    # worked by hand: warm-up min(50, 300 // 10) = 30, the decay from 30 to 300
    assert [(s.begin, s.end) for s in cfg.param_scheduler] == [(0, 30), (30, 300)]
    assert cfg.train_cfg.max_iters == cfg.train_cfg.val_interval == 300
    assert cfg.default_hooks.checkpoint.interval == 300
    longer = _schedule(1000, [dict(type='LinearLR', by_epoch=False, begin=0, end=50),
                              dict(type='PolyLR', by_epoch=False, begin=50, end=1000)])
    set_iterations(longer, 4000, 'c.py')
    assert [(s.begin, s.end) for s in longer.param_scheduler] == [(0, 50), (50, 4000)]


@pytest.mark.parametrize('iters', [3, 2])
def test_a_schedule_whose_max_iters_was_overridden_alone_is_still_rescaled(iters):
    """max_iters=2 set without the schedulers: they still end at 50 and 1500, also
    when the new length is max_iters itself (round AP)."""
    cfg = _schedule(2, [dict(type='LinearLR', by_epoch=False, begin=0, end=50),
                        dict(type='PolyLR', by_epoch=False, begin=50, end=1500)])
    set_iterations(cfg, iters, 'c.py')
    assert [(s.begin, s.end) for s in cfg.param_scheduler] == [(0, 1), (1, iters)]


def test_an_epoch_schedule_is_refused_by_name():
    cfg = _schedule(100, [dict(type='PolyLR', begin=0, end=100)])  # by_epoch defaults True
    with pytest.raises(ConfigError, match='c.py: param_scheduler .PolyLR. counts epochs'):
        set_iterations(cfg, 50, 'c.py')
    cfg = Config(dict(train_cfg=dict(type='EpochBasedTrainLoop', max_epochs=3)))
    with pytest.raises(ConfigError, match='c.py: setting the number of training iterations'):
        set_iterations(cfg, 50, 'c.py')


# --- the config ------------------------------------------------------------------------
def test_the_weak_view_of_the_jsrt_config_is_the_one_written_by_hand():
    """The shipped unimatch config's unlabelled_pipeline was written by hand from the
    labelled config: the derived weak view must be the same steps."""
    labelled = load_config(JSRT)
    hand = load_config(JSRT_UNIMATCH)
    derived = weak_view_pipeline(labelled.train_dataloader.dataset.pipeline, JSRT)
    assert derived == [dict(s) for s in hand.unlabelled_pipeline]


def test_the_camvid_weak_view_keeps_the_flip_and_drops_the_colour_change():
    labelled = load_config(CAMVID)
    hand = load_config(CAMVID_UNIMATCH)
    derived = weak_view_pipeline(labelled.train_dataloader.dataset.pipeline, CAMVID)
    assert derived == [dict(s) for s in hand.unlabelled_pipeline]
    assert 'PhotoMetricDistortion' in [s['type'] for s in
                                       labelled.train_dataloader.dataset.pipeline]


@pytest.mark.parametrize('config, hand_config', [(JSRT, JSRT_UNIMATCH),
                                                 (CAMVID, CAMVID_UNIMATCH)])
def test_the_made_model_and_batches_are_those_of_the_shipped_unimatch_config(config,
                                                                             hand_config):
    cfg = load_config(config)
    task = 'multi-label' if 'multilabel' in config else 'multi-class'
    weak_to_strong_config(cfg, config, task, '/u', '/u.txt', '.png', 0.95, None)
    hand = load_config(hand_config)
    assert cfg.model.to_dict() == hand.model.to_dict()
    assert cfg.train_dataloader.batch_size == hand.train_dataloader.batch_size
    assert cfg.train_dataloader.batch_sampler == hand.train_dataloader.batch_sampler
    made = cfg.train_dataloader.dataset.datasets[1]
    assert made.type == 'UnlabelledImageDataset' and made.ann_file == '/u.txt'
    assert made.data_prefix == dict(img_path='/u')


def test_the_student_starts_from_the_given_checkpoint():
    cfg = load_config(JSRT)
    weak_to_strong_config(cfg, JSRT, 'multi-label', '/u', '/u.txt', '.png', 0.9, '/t.pth')
    assert cfg.model.segmentor.init_cfg == dict(type='Pretrained', checkpoint='/t.pth')
    assert cfg.model.conf_thresh == 0.9


def test_a_step_of_unknown_kind_is_named():
    pipeline = [dict(type='LoadImageFromFileChecked'), dict(type='MyWarp'),
                dict(type='PackSegInputs')]
    with pytest.raises(ConfigError, match="c.py: cannot tell whether the training step "
                                          "'MyWarp'.*unlabelled_pipeline"):
        weak_view_pipeline(pipeline, 'c.py')


def test_albumentations_that_move_pixels_are_not_taken_for_colour_changes():
    pipeline = [dict(type='LoadImageFromFileChecked'),
                dict(type='Albumentations', transforms=[dict(type='CLAHE'),
                                                        dict(type='ElasticTransform')]),
                dict(type='PackSegInputs')]
    with pytest.raises(ConfigError, match="'Albumentations'"):
        weak_view_pipeline(pipeline, 'c.py')


def test_a_class_balanced_crop_drops_its_label_reading_option():
    pipeline = [dict(type='LoadImageFromFileChecked'), dict(type='LoadAnnotations'),
                dict(type='RandomCrop', crop_size=(8, 8), cat_max_ratio=0.75),
                dict(type='PackSegInputs')]
    assert weak_view_pipeline(pipeline, 'c.py') == [
        dict(type='LoadImageFromFileChecked'), dict(type='RandomCrop', crop_size=(8, 8)),
        dict(type='PackSegInputs')]


# --- end to end ----------------------------------------------------------------------------
def _iters(n):
    return [f'train_cfg.max_iters={n}', f'train_cfg.val_interval={n}',
            f'default_hooks.checkpoint.interval={n}', 'default_hooks.logger.interval=1']


@pytest.fixture
def handbone(tmp_path):
    data = tmp_path / 'data'
    proc = run_tool('tools/make_synthetic_handbone.py', '--out', str(data), '--patients', '4',
                    '--size', '64x64', '--test-patients', '1', '--no-progress')
    assert proc.returncode == 0, proc.stderr
    return data


@pytest.mark.slow
def test_unimatch_multilabel_from_the_teacher_with_its_control(tmp_path, handbone):
    work = tmp_path / 'work'
    roots = [f'{s}_dataloader.dataset.data_root={handbone}/train'
             for s in ('train', 'val', 'test')]
    command = ['tools/self_train.py', HANDBONE, HANDBONE, '--method', 'unimatch',
               '--control', '--student-iters', '3', '--unlabelled', f'{handbone}/test/DCM',
               '--img-suffix', '.png', '--work-dir', str(work), '--no-progress',
               '--cfg-options', *roots, *_iters(2), 'train_dataloader.batch_size=2']
    proc = run_tool(*command, env={'OMP_NUM_THREADS': '1'})
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert lines[-1] == f'final model  : {work}/student/iter_3.pth'
    summary = json.load(open(work / 'summary.json'))
    assert summary['method'] == 'unimatch' and summary['rounds'] == []
    assert summary['student']['iters'] == summary['control']['iters'] == 3
    assert 'mDice' in summary['student']['metrics']
    # the table: teacher, control and student rows with their differences
    head = next(t for t in lines if t.split()[:2] == ['model', 'iters'])
    table = lines[lines.index(head):][:4]
    assert table[0].split() == ['model', 'iters', 'mDice', 'vs', 'teacher', 'vs', 'control']
    control, student = summary['control']['metrics'], summary['student']['metrics']
    assert table[3].split()[-1] == f"{student['mDice'] - control['mDice']:+.4f}"
    # the student: the weak-to-strong wrapper around the config's model, from the
    # teacher's last checkpoint, batches of 2 labelled + 2 unlabelled images
    (dumped,) = glob.glob(f'{work}/student/*.py')
    dumped = Config.fromfile(dumped)
    assert dumped.model.type == 'MultiLabelWeakToStrongSegmentor'
    assert dumped.model.conf_thresh == 0.95  # the method's default --pixel-conf
    assert dumped.model.segmentor.init_cfg == dict(type='Pretrained',
                                                   checkpoint=f'{work}/teacher/iter_2.pth')
    assert dumped.train_dataloader.batch_size == 4
    assert dumped.train_dataloader.batch_sampler.labelled_per_batch == 2
    unlabelled = dumped.train_dataloader.dataset.datasets[1]
    listed = open(unlabelled.ann_file).read().split()
    assert sorted(listed) == sorted(
        osp.relpath(p, f'{handbone}/test/DCM')
        for p in glob.glob(f'{handbone}/test/DCM/*/*.png'))
    # the control: the same config from the teacher, on the labelled images alone
    (dumped,) = glob.glob(f'{work}/control/*.py')
    dumped = Config.fromfile(dumped)
    assert dumped.load_from == f'{work}/teacher/iter_2.pth'
    assert dumped.train_dataloader.dataset.type == 'HandBoneDataset'
    assert dumped.train_cfg.max_iters == 3
    # the same command again keeps every finished stage
    before = {p: osp.getmtime(p) for p in glob.glob(f'{work}/*/iter_*.pth')}
    proc = run_tool(*command, env={'OMP_NUM_THREADS': '1'})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'student: finished earlier' in proc.stdout + proc.stderr
    assert {p: osp.getmtime(p) for p in glob.glob(f'{work}/*/iter_*.pth')} == before


@pytest.mark.slow
def test_unimatch_multiclass_from_scratch(tmp_path, shapes_root):
    work = tmp_path / 'work'
    roots = [f'{s}_dataloader.dataset.data_root={shapes_root}' for s in ('train', 'val', 'test')]
    proc = run_tool('tools/self_train.py', SHAPES, SHAPES, '--method', 'unimatch',
                    '--student-init', 'scratch', '--pixel-conf', '0.5', '--unlabelled',
                    f'{shapes_root}/images/val', '--img-suffix', '.png', '--work-dir',
                    str(work), '--no-progress', '--cfg-options', *roots, *_iters(2),
                    'train_dataloader.batch_size=2', env={'OMP_NUM_THREADS': '1'})
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.load(open(work / 'summary.json'))
    assert summary['control'] is None and 'mIoU' in summary['student']['metrics']
    (dumped,) = glob.glob(f'{work}/student/*.py')
    dumped = Config.fromfile(dumped)
    assert dumped.model.type == 'WeakToStrongSegmentor'
    assert dumped.model.conf_thresh == 0.5
    assert 'init_cfg' not in dumped.model.segmentor or \
        (dumped.model.segmentor.init_cfg or {}).get('type') != 'Pretrained'
    # the weak view of the shapes config: its flip, without the label loader
    assert [s['type'] for s in dumped.train_dataloader.dataset.datasets[1].pipeline] == [
        'LoadImageFromFileChecked', 'RandomFlip', 'PackSegInputs']


@pytest.mark.parametrize('options, message', [
    (['--rounds', '2'], 'rounds'),
    (['--max-uncertain', '0.5'], 'max-uncertain'),
    (['--min-mean-conf', '0.5'], 'min-mean-conf'),
    (['--student-init', 'scratch', '--control'], 'control'),
])
def test_arguments_the_method_cannot_use_are_one_line(tmp_path, options, message):
    work, unlabelled = tmp_path / 'work', tmp_path / 'unlabelled'
    unlabelled.mkdir()
    proc = run_tool('tools/self_train.py', HANDBONE, HANDBONE, '--method', 'unimatch',
                    '--unlabelled', str(unlabelled), '--work-dir', str(work), *options)
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith('error: ') and message in line
    assert not work.exists()


def test_a_config_that_mixes_batches_is_refused_before_the_teacher_trains(tmp_path,
                                                                         shapes_root):
    cutmix = tmp_path / 'cutmix.py'
    cutmix.write_text(f"_base_ = ['{osp.abspath(SHAPES)}']\n"
                      "model = dict(data_preprocessor=dict(\n"
                      "    type='BatchAugmentSegDataPreProcessor',\n"
                      "    batch_augments=[dict(type='SegCutMix', prob=0.5)]))\n")
    line, work = _refused(tmp_path, shapes_root, SHAPES, str(cutmix))
    assert line.startswith(f'error: {cutmix}: its data preprocessor has batch_augments')
    assert not work.exists()


def _refused(tmp_path, shapes_root, teacher, student, unlabelled=None):
    """The one stderr line of a weak-to-strong self_train on shapes that must fail, and
    its work dir."""
    work = tmp_path / 'work'
    roots = [f'{s}_dataloader.dataset.data_root={shapes_root}' for s in ('train', 'val', 'test')]
    proc = run_tool('tools/self_train.py', teacher, student, '--method', 'unimatch',
                    '--unlabelled', unlabelled or f'{shapes_root}/images/val',
                    '--img-suffix', '.png', '--work-dir', str(work), '--cfg-options', *roots)
    assert proc.returncode != 0
    (line,) = proc.stderr.strip().splitlines()  # and no library warning before it
    return line, work


@pytest.mark.slow
def test_unimatch_from_a_given_teacher_on_listed_images_and_force(tmp_path, shapes_root):
    """No teacher trains: the student starts from --teacher-checkpoint and sees only the
    images of --unlabelled-list; --force starts again in the same work dir."""
    import torch

    from mmseg_ext.config.model import build_bare_model
    torch.manual_seed(0)
    teacher = tmp_path / 'teacher.pth'
    torch.save({'state_dict': build_bare_model(load_config(SHAPES)).state_dict()}, teacher)
    listed = tmp_path / 'list.txt'
    listed.write_text('0000\n0002\n')
    work = tmp_path / 'work'
    roots = [f'{s}_dataloader.dataset.data_root={shapes_root}' for s in ('train', 'val', 'test')]
    command = ['tools/self_train.py', SHAPES, SHAPES, '--method', 'unimatch',
               '--teacher-checkpoint', str(teacher), '--unlabelled',
               f'{shapes_root}/images/val', '--unlabelled-list', str(listed),
               '--img-suffix', '.png', '--work-dir', str(work), '--no-progress',
               '--cfg-options', *roots, *_iters(2), 'train_dataloader.batch_size=2']
    proc = run_tool(*command, env={'OMP_NUM_THREADS': '1'})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not (work / 'teacher').exists()
    assert (work / 'unlabelled.txt').read_text().split() == ['0000.png', '0002.png']
    (dumped,) = glob.glob(f'{work}/student/*.py')
    assert Config.fromfile(dumped).model.segmentor.init_cfg.checkpoint == str(teacher)
    first = osp.getmtime(work / 'student' / 'iter_2.pth')
    # the same command keeps the student; with --force it trains again
    proc = run_tool(*command, '--force', env={'OMP_NUM_THREADS': '1'})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'removed' in proc.stdout + proc.stderr
    assert osp.getmtime(work / 'student' / 'iter_2.pth') > first


def test_unlabelled_images_that_the_student_config_trains_on_are_refused(tmp_path,
                                                                        shapes_root):
    """The teacher's training set leaves them out, the student's (another config) holds
    them: refused before anything trains, naming the student's config."""
    student = tmp_path / 'student.py'
    student.write_text(f"_base_ = ['{osp.abspath(SHAPES)}']\n"
                       "train_dataloader = dict(dataset=dict(data_prefix=dict(\n"
                       "    img_path='images/val', seg_map_path='labels/val')))\n")
    line, work = _refused(tmp_path, shapes_root, SHAPES, str(student))
    assert line.startswith(f'error: {shapes_root}/images/val/0000.png: an unlabelled image '
                           f'is a training image of {student}'), line
    assert not osp.exists(work / 'teacher')


# --- round AP: the cases a hostile-user round found -------------------------------------
def test_step_and_cosine_schedules_are_scaled_with_the_span():
    steps = _schedule(120, [dict(type='MultiStepLR', by_epoch=False, begin=0, end=120,
                                 milestones=[60, 90])])
    set_iterations(steps, 1000, 'c.py')
    # worked by hand: 60 and 90 of 120 are 1/2 and 3/4 of the span
    assert steps.param_scheduler[0].milestones == [500, 750]
    cosine = _schedule(120, [dict(type='CosineAnnealingLR', by_epoch=False, begin=0,
                                  end=120, T_max=120)])
    set_iterations(cosine, 30, 'c.py')
    assert (cosine.param_scheduler[0].end, cosine.param_scheduler[0].T_max) == (30, 30)


def test_a_loop_without_a_type_that_mmengine_runs_by_iteration_is_accepted():
    cfg = _schedule(120, [dict(type='PolyLR', by_epoch=False, begin=0, end=120)])
    cfg.train_cfg = dict(by_epoch=False, max_iters=120, val_interval=120)
    set_iterations(cfg, 60, 'c.py')
    assert cfg.train_cfg.max_iters == cfg.param_scheduler[0].end == 60


@pytest.mark.parametrize('pipeline, message', [
    ([], 'must be a non-empty list'),
    (dict(type='PackSegInputs'), 'must be a non-empty list'),
    ([dict(type='LoadImageFromFileChecked')], 'must end with a Pack step'),
    ([dict(type='NoSuchTransform'), dict(type='PackSegInputs')], "cannot build "
                                                                 "'NoSuchTransform'"),
])
def test_a_bad_unlabelled_pipeline_is_named(pipeline, message):
    from mmseg_ext.workflows.weak_strong_data import check_weak_view
    with pytest.raises(ConfigError, match=f'c.py: .*{message}'):
        check_weak_view(pipeline, 'c.py')


def _write(path, text):
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize('extra, message', [
    ("train_cfg = dict(_delete_=True, type='EpochBasedTrainLoop', max_epochs=1)\n",
     'needs an iteration-based training loop'),
    ('unlabelled_pipeline = []\n', 'unlabelled_pipeline must be a non-empty list'),
    ("unlabelled_pipeline = [dict(type='LoadImageFromFileChecked')]\n",
     'must end with a Pack step'),
])
def test_configs_the_method_cannot_train_are_refused_before_the_teacher(tmp_path,
                                                                       shapes_root,
                                                                       extra, message):
    config = _write(tmp_path / 'c.py', f"_base_ = ['{osp.abspath(SHAPES)}']\n{extra}")
    line, work = _refused(tmp_path, shapes_root, config, config)
    assert line.startswith(f'error: {config}: ') and message in line, line
    assert not osp.exists(work / 'teacher')


def test_an_unlabelled_image_larger_than_the_batches_is_refused_before_the_teacher(
        tmp_path, shapes_root):
    import numpy as np
    from PIL import Image
    unlabelled = tmp_path / 'unlabelled'
    unlabelled.mkdir()
    Image.fromarray(np.zeros((40, 32, 3), np.uint8)).save(unlabelled / 'small.png')
    Image.fromarray(np.zeros((200, 300, 3), np.uint8)).save(unlabelled / 'large.png')
    line, work = _refused(tmp_path, shapes_root, SHAPES, SHAPES, str(unlabelled))
    # the shapes config pads its batches to 64x80 (data_preprocessor size) and neither
    # crops nor resizes
    assert line.startswith(f'error: {unlabelled}/large.png: 300x200 pixels, larger than '
                           'the 80x64 batches'), line
    assert not osp.exists(work / 'teacher')


def test_an_interrupted_teachers_checkpoints_are_kept_from_another_command(
        tmp_path, shapes_root, monkeypatch):
    """The teacher saved a checkpoint, then the run stopped: a changed command is
    refused (it would replace them) instead of removing them without --force."""
    import mmseg_ext.workflows.self_training as st
    from mmseg_ext.utils.errors import OutputExistsError
    real = st.train_and_validate

    def stopped_after_saving(cfg):
        real(cfg)
        raise KeyboardInterrupt

    monkeypatch.setattr(st, 'train_and_validate', stopped_after_saving)
    work = str(tmp_path / 'w')
    options = {f'{s}_dataloader.dataset.data_root': shapes_root for s in ('train', 'val')}
    options.update({key: 2 for key in ('train_cfg.max_iters', 'train_cfg.val_interval',
                                       'default_hooks.checkpoint.interval',
                                       'train_dataloader.batch_size')})
    kwargs = dict(unlabelled_dir=f'{shapes_root}/images/val', work_dir=work,
                  img_suffix='.png', cfg_options=options, progress=False,
                  log=lambda m: None, method='unimatch', student_iters=3)
    with pytest.raises(KeyboardInterrupt):
        st.self_train(SHAPES, SHAPES, **kwargs)
    saved = osp.join(work, 'teacher', 'iter_2.pth')
    assert osp.isfile(saved)
    with pytest.raises(OutputExistsError):
        st.self_train(SHAPES, SHAPES, **kwargs, control=True)
    assert osp.isfile(saved)


def test_an_unreadable_unlabelled_image_is_named_before_the_teacher(tmp_path, shapes_root):
    unlabelled = tmp_path / 'unlabelled'
    unlabelled.mkdir()
    (unlabelled / 'broken.png').write_text('not an image')
    line, work = _refused(tmp_path, shapes_root, SHAPES, SHAPES, str(unlabelled))
    assert line.startswith(f'error: {unlabelled}/broken.png: '), line
    assert not osp.exists(work / 'teacher')
