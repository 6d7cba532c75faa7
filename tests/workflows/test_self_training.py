"""Self-training end to end on tiny data (one round, a few iterations), and CutMix."""
import glob
import json
import os
import os.path as osp

import numpy as np
import pytest
import torch
from conftest import REPO, run_tool
from mmengine.config import Config
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmseg_ext.models.data_preprocessors import BatchAugmentSegDataPreProcessor, SegCutMix

SHAPES = 'custom_configs/demo/fcn_r18-tiny_shapes-64x80.py'
HANDBONE = 'custom_configs/demo/unet-s5-tiny_multilabel_1xb4-1500i_handbone-synth-128x128.py'


def _batch(n, c_label, h=20, w=24):
    """Image i is the constant i + 1 everywhere; its label is the constant 10 * (i + 1)."""
    inputs = torch.stack([torch.full((3, h, w), float(i + 1)) for i in range(n)])
    samples = []
    for i in range(n):
        s = SegDataSample()
        s.gt_sem_seg = PixelData(data=torch.full((c_label, h, w), 10 * (i + 1),
                                                 dtype=torch.uint8))
        samples.append(s)
    return inputs, samples


@pytest.mark.parametrize('c_label', [1, 4], ids=['multi-class', 'multi-label'])
def test_cutmix_pastes_one_box_of_the_next_image_with_its_label(c_label):
    torch.manual_seed(0)
    mix = SegCutMix(prob=1.0, area_range=(0.1, 0.3))
    inputs, samples = mix(*_batch(3, c_label))
    for i in range(3):
        j = (i + 1) % 3
        changed = (inputs[i, 0] != i + 1).numpy()
        assert set(np.unique(inputs[i, 0].numpy())) <= {i + 1, j + 1}
        rows, cols = np.flatnonzero(changed.any(1)), np.flatnonzero(changed.any(0))
        assert changed.sum() == len(rows) * len(cols) > 0          # one rectangle
        assert 0.1 * 480 - 24 <= changed.sum() <= 0.3 * 480 + 24   # its area, rounded
        label = samples[i].gt_sem_seg.data.numpy()
        # every label channel moved exactly where the image did, to image j's label
        assert np.array_equal(label != 10 * (i + 1), np.broadcast_to(changed, label.shape))
        assert np.all(label[:, changed] == 10 * (j + 1))


def test_cutmix_prob_zero_and_single_image_change_nothing():
    inputs, samples = _batch(3, 1)
    out, _ = SegCutMix(prob=0.0)(inputs.clone(), samples)
    assert torch.equal(out, _batch(3, 1)[0])
    one, _ = SegCutMix(prob=1.0)(*_batch(1, 1))
    assert torch.equal(one, _batch(1, 1)[0])


def test_preprocessor_mixes_only_while_training():
    pre = BatchAugmentSegDataPreProcessor(mean=[0, 0, 0], std=[1, 1, 1], size=(20, 24),
                                          batch_augments=[dict(type='SegCutMix', prob=1.0)])
    inputs, samples = _batch(2, 1)
    data = dict(inputs=[x for x in inputs], data_samples=samples)
    torch.manual_seed(1)
    trained = pre(dict(inputs=[x.clone() for x in inputs], data_samples=samples), True)
    assert (trained['inputs'][0] == 2).any()
    tested = pre(data, False)
    assert torch.equal(tested['inputs'], inputs)


def _iters(n):
    return [f'train_cfg.max_iters={n}', f'train_cfg.val_interval={n}',
            f'default_hooks.checkpoint.interval={n}', 'default_hooks.logger.interval=1']


@pytest.mark.slow
def test_self_training_multiclass_one_round(tmp_path, shapes_root):
    work = tmp_path / 'work'
    roots = [f'{s}_dataloader.dataset.data_root={shapes_root}' for s in ('train', 'val', 'test')]
    proc = run_tool('tools/self_train.py', SHAPES, SHAPES, '--unlabelled',
                    f'{shapes_root}/images/val', '--img-suffix', '.png', '--work-dir',
                    str(work), '--pixel-conf', '0.0', '--no-progress',
                    '--cfg-options', *roots, *_iters(2), 'train_dataloader.batch_size=2',
                    env={'OMP_NUM_THREADS': '1'})
    assert proc.returncode == 0, proc.stderr[-3000:]
    final = proc.stdout.strip().splitlines()[-1]
    assert final == f'final model  : {work}/round1/student/iter_2.pth'
    # pixel_conf 0: every pixel keeps the teacher's argmax, so every image is accepted
    pngs = sorted(osp.basename(p) for p in glob.glob(f'{work}/round1/pseudo/*.png'))
    assert pngs == ['0000.png', '0001.png', '0002.png']
    summary = json.load(open(work / 'summary.json'))
    assert summary['rounds'][0]['accepted'] == 3
    assert 'mIoU' in summary['teacher_metrics'] and 'mIoU' in summary['rounds'][0][
        'student_metrics']
    # the student trained on the 6 labelled images repeated (ceil(3 / 6) = 1: once) and
    # the 3 pseudo-labelled ones, whose labels are the pseudo PNGs
    (dumped,) = glob.glob(f'{work}/round1/student/*.py')   # the runner's copy of the config
    dumped = Config.fromfile(dumped)
    datasets = dumped.train_dataloader.dataset.datasets
    assert dumped.train_dataloader.dataset.type == 'ConcatDataset'
    assert datasets[1].data_prefix.seg_map_path == str(work / 'round1' / 'pseudo')
    assert open(datasets[1].ann_file).read().split() == ['0000', '0001', '0002']


@pytest.mark.slow
def test_self_training_multilabel_one_round(tmp_path):
    data = tmp_path / 'data'
    proc = run_tool('tools/make_synthetic_handbone.py', '--out', str(data), '--patients', '4',
                    '--size', '64x64', '--test-patients', '1')
    assert proc.returncode == 0, proc.stderr
    work = tmp_path / 'work'
    roots = [f'{s}_dataloader.dataset.data_root={data}/train' for s in ('train', 'val', 'test')]
    proc = run_tool('tools/self_train.py', HANDBONE, HANDBONE, '--unlabelled',
                    f'{data}/test/DCM', '--img-suffix', '.png', '--work-dir', str(work),
                    '--pixel-conf', '0.6', '--no-progress', '--student-init', 'teacher',
                    '--cfg-options', *roots, *_iters(2), 'train_dataloader.batch_size=2',
                    env={'OMP_NUM_THREADS': '1'})
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.load(open(work / 'summary.json'))
    r = summary['rounds'][0]
    assert r['unlabelled_images'] == 2
    jsons = glob.glob(f'{work}/round1/pseudo/outputs_json/*/*.json')
    assert len(jsons) == r['accepted']
    assert 'mDice' in r['student_metrics']
    assert osp.isfile(f'{work}/round1/student/iter_2.pth')
    # --student-init teacher: the student starts from the teacher's last checkpoint
    (dumped,) = glob.glob(f'{work}/round1/student/*.py')
    assert Config.fromfile(dumped).load_from == f'{work}/teacher/iter_2.pth'
    assert 'Load checkpoint from' in open(glob.glob(
        f'{work}/round1/student/*/*.log')[0]).read()


@pytest.mark.slow
def test_student_init_teacher_refuses_a_student_of_another_architecture(tmp_path, shapes_root):
    student = tmp_path / 'wider_head.py'
    student.write_text(f"_base_ = ['{REPO}/{SHAPES}']\n"
                       "model = dict(decode_head=dict(channels=48))\n")
    work = tmp_path / 'work'
    roots = [f'{s}_dataloader.dataset.data_root={shapes_root}' for s in ('train', 'val', 'test')]
    proc = run_tool('tools/self_train.py', SHAPES, str(student), '--unlabelled',
                    f'{shapes_root}/images/val', '--img-suffix', '.png', '--work-dir',
                    str(work), '--pixel-conf', '0.0', '--no-progress', '--student-init',
                    'teacher', '--cfg-options', *roots, *_iters(2),
                    'train_dataloader.batch_size=2', env={'OMP_NUM_THREADS': '1'})
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f'error: {student}: starting the student from the teacher needs '
                           f'the model of {SHAPES} ('), last
    assert 'decode_head' in last                     # names what differs
    assert not (work / 'teacher').exists()           # refused before the teacher trains


@pytest.mark.parametrize('classes,problem,why', [
    ("('background', 'disc', 'square')", 'the student (STUDENT) learns 3, and one list '
     'ends first', 'pseudo-labels would mark a missing class absent'),
    # round W-15: no class is missing here, so the reason is not the count's
    ("('background', 'square', 'disc', 'triangle')", "the student (STUDENT) learns 4, and "
     "class 1 is 'disc' against 'square'", 'another class order: pseudo-labels would '
     'teach the student one class as another'),
])
def test_a_teacher_of_other_classes_is_refused_before_training(tmp_path, shapes_root,
                                                               classes, problem, why):
    """Pseudo-labels of a teacher with fewer classes (or another order) taught the
    student that its other classes were absent, with exit 0 (round H)."""
    student = tmp_path / 'student.py'
    # a consistent student: every data set and the head have its classes
    student.write_text(f"_base_ = ['{REPO}/{SHAPES}']\n"
                       + ''.join(f"{s}_dataloader = dict(dataset=dict(metainfo=dict("
                                 f"classes={classes})))\n" for s in ('train', 'val', 'test'))
                       + f"model = dict(decode_head=dict(num_classes={len(eval(classes))}))\n")
    work = tmp_path / 'work'
    roots = [f'{s}_dataloader.dataset.data_root={shapes_root}' for s in ('train', 'val', 'test')]
    proc = run_tool('tools/self_train.py', SHAPES, str(student), '--unlabelled',
                    f'{shapes_root}/images/val', '--img-suffix', '.png', '--work-dir',
                    str(work), '--no-progress', '--cfg-options', *roots)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        f'error: {SHAPES}: the teacher predicts 4 classes, '
        + problem.replace('STUDENT', str(student)) + '; give both configs the same classes '
        f'in the same order ({why})')
    assert not work.exists()                          # refused before anything is written


def _shapes_checkpoint(path, classes):
    """A checkpoint of the shapes model that says it was trained on ``classes`` (as
    mmengine records ``meta.dataset_meta``)."""
    import mmseg_ext  # noqa: F401
    from mmseg_ext.config.model import build_bare_model
    torch.manual_seed(0)
    model = build_bare_model(Config.fromfile(osp.join(REPO, SHAPES)))
    torch.save({'state_dict': model.state_dict(),
                'meta': {'dataset_meta': {'classes': tuple(classes)}}}, str(path))
    return str(path)


def test_a_teacher_checkpoint_of_another_class_order_is_refused(tmp_path, shapes_root):
    """Round V-1: a teacher checkpoint trained with square and disc swapped gave
    pseudo-labels of its channel order, learnt by the student as the config's classes
    (exit 0). Refused as tools/test.py refuses the pair, before anything is written."""
    ckpt = _shapes_checkpoint(tmp_path / 'reord.pth',
                              ('background', 'square', 'disc', 'triangle'))
    work = tmp_path / 'work'
    roots = [f'{s}_dataloader.dataset.data_root={shapes_root}' for s in ('train', 'val', 'test')]
    proc = run_tool('tools/self_train.py', SHAPES, SHAPES, '--unlabelled',
                    f'{shapes_root}/images/val', '--img-suffix', '.png', '--work-dir',
                    str(work), '--no-progress', '--teacher-checkpoint', ckpt,
                    '--cfg-options', *roots)
    assert proc.returncode == 1, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {SHAPES}: class 1 of its data set is 'disc', but {ckpt} "
                           "was trained with 'square' there"), last
    assert not work.exists()                          # refused before anything is written


def test_a_round_model_that_names_its_classes_otherwise_is_refused():
    """Round V-1, every round: the model making the pseudo-labels (its checkpoint's
    class names) must name its channels as the student's classes, in order."""
    from mmseg_ext.utils.errors import ConfigError
    from mmseg_ext.workflows.self_training import check_predicts_student_classes
    ours = ('background', 'disc', 'square', 'triangle')
    check_predicts_student_classes(ours, ours, 'c.pth', 's.py')
    check_predicts_student_classes(ours, (), 'c.pth', 's.py')   # the student names none
    with pytest.raises(ConfigError) as info:
        check_predicts_student_classes(('background', 'square', 'disc', 'triangle'), ours,
                                       'c.pth', 's.py')
    assert str(info.value) == ("c.pth: the pseudo-labels of this checkpoint would teach the "
                               "student (s.py) one class as another: its class 1 is "
                               "'square', the student's is 'disc'")
    with pytest.raises(ConfigError, match=r'it predicts 3 classes, the student learns 4$'):
        check_predicts_student_classes(ours[:3], ours, 'c.pth', 's.py')


def test_bad_student_config_fails_before_the_teacher_trains(tmp_path, shapes_root):
    proc = run_tool('tools/self_train.py', SHAPES, str(tmp_path / 'missing.py'),
                    '--unlabelled', f'{shapes_root}/images/val', '--img-suffix', '.png',
                    '--work-dir', str(tmp_path / 'w'))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == \
        f'error: {tmp_path}/missing.py: config file not found'
    assert not (tmp_path / 'w' / 'teacher').exists()


@pytest.mark.parametrize('force', [[], ['--force']], ids=['plain', 'force'])
def test_a_work_dir_this_tool_did_not_make_is_refused_before_training(tmp_path, shapes_root,
                                                                      force):
    """Results without the tool's manifest (an older run, or a user's folder) are not
    the tool's: refused with and without --force, and left as they were."""
    work = tmp_path / 'w'
    (work / 'round1' / 'pseudo').mkdir(parents=True)
    (work / 'round1' / 'pseudo' / 'keep.png').write_bytes(b'earlier result')
    proc = run_tool('tools/self_train.py', SHAPES, SHAPES, '--unlabelled',
                    f'{shapes_root}/images/val', '--img-suffix', '.png', '--work-dir',
                    str(work), *force)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        f'error: {work}: holds files this tool did not write (no .mmseg_ext_manifest.json, '
        'e.g. round1); refusing to write into it: choose a new or empty '
        'folder')
    assert sorted(os.listdir(work)) == ['round1']          # no lock file, no manifest
    assert (work / 'round1' / 'pseudo' / 'keep.png').read_bytes() == b'earlier result'


def test_out_of_range_option_is_one_line(tmp_path):
    proc = run_tool('tools/self_train.py', SHAPES, SHAPES, '--unlabelled', str(tmp_path),
                    '--work-dir', str(tmp_path / 'w'), '--rounds', '0')
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        'error: self_train.py: argument --rounds: 0 is outside [1, inf] (see --help)']


def test_configs_of_the_camvid_recipe_resolve():
    import mmseg_ext  # noqa: F401
    student = Config.fromfile(osp.join(
        REPO, 'custom_configs/camvid/fcn_r18-tiny_cutmix_1xb8-4k_camvid-half-1of8-180x240.py'))
    assert student.model.data_preprocessor.type == 'BatchAugmentSegDataPreProcessor'
    assert student.train_cfg.max_iters == 4000 and student.param_scheduler[1].end == 4000


def test_missing_teacher_checkpoint_is_one_line_before_anything_runs(tmp_path, shapes_root):
    missing = tmp_path / 'nope.pth'
    proc = run_tool('tools/self_train.py', SHAPES, SHAPES, '--unlabelled',
                    f'{shapes_root}/images/val', '--img-suffix', '.png', '--work-dir',
                    str(tmp_path / 'w'), '--student-init', 'teacher',
                    '--teacher-checkpoint', str(missing))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == \
        f'error: {missing}: checkpoint file not found'
    assert not (tmp_path / 'w').exists()


@pytest.mark.slow
def test_the_same_command_resumes_a_run_that_stopped(tmp_path, shapes_root, monkeypatch,
                                                     fast_cpu):
    """The student stage fails; the same command again keeps the teacher, the
    probabilities and the pseudo-labels and trains only the student. Another command in
    that work dir is refused, naming what differs."""
    import mmseg_ext.workflows.self_training as st
    from mmseg_ext.utils.errors import OutputExistsError
    real = st.train_and_validate
    calls = []

    def flaky(cfg):
        calls.append(cfg.work_dir)
        if cfg.work_dir.endswith('student') and calls.count(cfg.work_dir) == 1:
            raise RuntimeError('the machine went away')
        return real(cfg)

    monkeypatch.setattr(st, 'train_and_validate', flaky)
    work = str(tmp_path / 'w')
    config = tmp_path / 'shapes.py'  # a copy the user edits at the end
    config.write_text(open(SHAPES).read().replace(
        "'../_base_/", f"'{osp.join(REPO, 'custom_configs', '_base_')}/"))
    config = str(config)
    options = {f'{s}_dataloader.dataset.data_root': shapes_root
               for s in ('train', 'val', 'test')}
    options.update({'train_cfg.max_iters': 2, 'train_cfg.val_interval': 2,
                    'default_hooks.checkpoint.interval': 2,
                    'train_dataloader.batch_size': 2, 'log_level': 'WARNING'})
    kwargs = dict(unlabelled_dir=f'{shapes_root}/images/val', work_dir=work,
                  img_suffix='.png', pixel_conf=0.0, cfg_options=options, progress=False,
                  log=lambda m: None)
    with pytest.raises(RuntimeError, match='went away'):
        st.self_train(config, config, **kwargs)
    index = osp.join(work, 'round1', 'probs', 'index.json')
    stamp = os.stat(index).st_mtime_ns
    assert [osp.basename(c) for c in calls] == ['teacher', 'student']

    summary = st.self_train(config, config, **kwargs)
    assert [osp.basename(c) for c in calls] == ['teacher', 'student', 'student']
    assert os.stat(index).st_mtime_ns == stamp          # not predicted again
    assert summary.rounds[0].accepted == 3
    assert summary.rounds[0].student_checkpoint == osp.join(work, 'round1', 'student',
                                                            'iter_2.pth')
    with pytest.raises(OutputExistsError, match='it differs in pixel_conf'):
        st.self_train(config, config, **{**kwargs, 'pixel_conf': 0.5})
    # the same file, edited: another run, not "finished earlier"
    with open(config, 'a') as f:
        f.write("\noptim_wrapper = dict(optimizer=dict(lr=0.3))\n")
    with pytest.raises(OutputExistsError, match='it differs in config_hashes'):
        st.self_train(config, config, **kwargs)
