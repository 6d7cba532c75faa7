"""tools/cv.py: folds -> out-of-fold probabilities -> tuning -> fold ensemble -> CSV."""
import glob
import json
import os
import os.path as osp
import sys

import cv2
import numpy as np
import pytest
from conftest import CONFIG, REPO, run_tool

HANDBONE = 'custom_configs/demo/unet-s5-tiny_multilabel_1xb4-1500i_handbone-synth-128x128.py'


def _options(root, iters=2, loaders=('train', 'val', 'test'), log_level='WARNING'):
    roots = [f'{s}_dataloader.dataset.data_root={root}' for s in loaders]
    return ['--cfg-options', *roots, f'train_cfg.max_iters={iters}',
            f'train_cfg.val_interval={iters}', f'default_hooks.checkpoint.interval={iters}',
            'train_dataloader.batch_size=2', f'log_level={log_level}']


@pytest.fixture(scope='module')
def handbone(tmp_path_factory):
    """Synthetic hand-bone data: 6 patients (12 images, 64x64) + 1 test patient."""
    data = tmp_path_factory.mktemp('cv') / 'data'
    proc = run_tool('tools/make_synthetic_handbone.py', '--out', str(data), '--patients',
                    '6', '--size', '64x64', '--test-patients', '1')
    assert proc.returncode == 0, proc.stderr
    return data


@pytest.fixture(scope='module')
def cv_run(handbone, tmp_path_factory):
    """One complete 3-fold run with a test folder (2 iterations per fold)."""
    work = tmp_path_factory.mktemp('cvwork') / 'w'
    proc = run_tool('tools/cv.py', HANDBONE, '-k', '3', '--work-dir', str(work),
                    '--test-dir', f'{handbone}/test/DCM', '--tta', '--no-progress',
                    *_options(f'{handbone}/train'), env={'OMP_NUM_THREADS': '1'})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return work, proc


def _images(root):
    """Image keys under DCM, listed here with glob (not with the code under test)."""
    return sorted(osp.relpath(p, f'{root}/DCM')[:-len('.png')]
                  for p in glob.glob(f'{root}/DCM/*/*.png'))


def _keys(prob_dir):
    return sorted(e['key'] for e in json.load(open(f'{prob_dir}/index.json'))['images'])


@pytest.mark.slow
def test_oof_folder_covers_every_training_image_once(cv_run, handbone):
    work, _ = cv_run
    everything = _images(f'{handbone}/train')
    assert len(everything) == 12
    assert _keys(work / 'oof_probs') == everything
    per_fold = [_keys(work / f'fold{k}' / 'val_probs') for k in range(3)]
    assert sorted(sum(per_fold, [])) == everything          # disjoint and complete
    for k, keys in enumerate(per_fold):
        # the fold's validation images are its split file; no patient on both sides
        listed = open(work / 'splits' / f'val_fold{k}.txt').read().split()
        assert sorted(listed) == keys
        train = open(work / 'splits' / f'train_fold{k}.txt').read().split()
        assert {t.split('/')[0] for t in train}.isdisjoint({v.split('/')[0] for v in keys})
        # ... and its model is the fold's own checkpoint
        source = json.load(open(work / f'fold{k}' / 'val_probs' / 'index.json'))['source']
        assert source['checkpoint'] == str(work / f'fold{k}' / 'iter_2.pth')
        assert source['tta'] is True                  # --tta reached the predictions
    test_source = json.load(open(work / 'test' / 'fold0' / 'index.json'))['source']
    assert test_source['tta'] is True


@pytest.mark.slow
def test_scores_agree_with_the_submission_writer_and_scorer(cv_run, handbone):
    """The OOF Dice before and after tuning, recomputed through another path: CSVs that
    tools/make_submission.py writes (the OOF folder at 0.5; each fold's validation
    probabilities with that fold's own thresholds and the tuned clean-up, joined) and
    scored against the polygons by the competition rule."""
    from mmseg_ext.submission.scoring import score_handbone_csv
    work, _ = cv_run
    summary = json.load(open(work / 'summary.json'))
    fold_thresholds = json.load(open(work / 'tuned' / 'fold_thresholds.json'))
    assert fold_thresholds.pop('__kind__') == 'fold_thresholds'   # each file names its kind
    for name in ('thresholds', 'min_area', 'keep_largest'):
        assert json.load(open(work / 'tuned' / f'{name}.json'))['__kind__'] == name
    assert fold_thresholds == {f'fold{k}': t for k, t in enumerate(summary['fold_thresholds'])}
    train = f'{handbone}/train'
    clean_up = ['--min-area', f'{work}/tuned/min_area.json', '--keep-largest',
                f'{work}/tuned/keep_largest.json']

    def write(probs, out, *flags):  # a fold's CSV covers its images only: no --img-dir
        proc = run_tool('tools/make_submission.py', str(probs), '--format', 'handbone',
                        '--out', str(out), '--no-progress', *flags)
        assert proc.returncode == 0, proc.stderr
        return open(out).read().splitlines()

    plain = work.parent / 'plain.csv'
    write(work / 'oof_probs', plain)
    rows = []
    for k in range(3):
        thr = work.parent / f'thr{k}.json'
        thr.write_text(json.dumps(fold_thresholds[f'fold{k}']))
        lines = write(work / f'fold{k}' / 'val_probs', work.parent / f'fold{k}.csv',
                      '--thresholds', str(thr), *clean_up)
        rows += lines[1:] if rows else lines
    tuned = work.parent / 'tuned.csv'
    tuned.write_text('\n'.join(rows) + '\n')
    for csv, expected in ((plain, summary['oof_before']), (tuned, summary['oof_after'])):
        score = score_handbone_csv(str(csv), train, f'{train}/DCM', progress=False)
        assert score.images == 12
        for cls, value in expected.items():
            assert score.per_class[cls] == pytest.approx(value, abs=1e-9), (csv, cls)
    # tuning on the OOF images cannot lower their score (0.5 and no clean-up are
    # among the settings tried)
    for cls in summary['oof_before']:
        assert summary['oof_after'][cls] >= summary['oof_before'][cls] - 1e-12


@pytest.mark.slow
def test_submission_of_the_fold_ensemble_is_checked_and_complete(cv_run, handbone):
    work, proc = cv_run
    csv_path = work / 'submission.csv'
    rows = open(csv_path).read().splitlines()
    tests = sorted(osp.basename(p) for p in glob.glob(f'{handbone}/test/DCM/*/*.png'))
    assert rows[0] == 'image_name,class,rle'
    assert sorted({r.split(',')[0] for r in rows[1:]}) == tests
    assert len(rows) == 1 + 29 * len(tests)
    check = run_tool('tools/make_submission.py', '--check', str(csv_path), '--format',
                     'handbone', '--img-dir', f'{handbone}/test/DCM')
    assert check.returncode == 0, check.stdout + check.stderr
    # the ensemble averages the three fold models' test probabilities
    index = json.load(open(work / 'test' / 'ensemble' / 'index.json'))
    members = [m['probs'] for m in index['source']['ensemble']]
    assert members == [str(work / 'test' / f'fold{k}') for k in range(3)]
    summary = json.load(open(work / 'summary.json'))
    assert summary['files']['submission'] == str(csv_path)
    assert len(summary['folds']) == 3
    # the printed table names the per-fold scores, the mean and the outputs
    out = proc.stdout
    assert '=== cross-validation finished ===' in out
    assert any(line.split() == ['submission', str(csv_path)] for line in out.splitlines())
    assert out.count('\nmean ') == 1


@pytest.mark.slow
def test_a_killed_run_resumes_without_retraining_finished_folds(handbone, tmp_path,
                                                                monkeypatch, fast_cpu):
    import mmseg_ext.training.stages as stages
    from mmseg_ext.utils.errors import OutputExistsError
    from mmseg_ext.workflows.cross_validation import cross_validate
    real = stages.train_only
    trained = []

    def dies_in_fold_1(cfg):
        trained.append(osp.basename(cfg.work_dir))
        if trained == ['fold0', 'fold1']:
            raise KeyboardInterrupt  # the user pressed Ctrl-C during fold 1
        return real(cfg)

    monkeypatch.setattr(stages, 'train_only', dies_in_fold_1)
    options = {f'{s}_dataloader.dataset.data_root': f'{handbone}/train'
               for s in ('train', 'val', 'test')}
    options.update({'train_cfg.max_iters': 2, 'train_cfg.val_interval': 2,
                    'default_hooks.checkpoint.interval': 2,
                    'train_dataloader.batch_size': 2, 'log_level': 'WARNING'})
    work = str(tmp_path / 'w')
    kwargs = dict(cfg_options=options, progress=False, log=lambda m: None)
    with pytest.raises(KeyboardInterrupt):
        cross_validate(HANDBONE, 3, work, **kwargs)
    stamp = os.stat(f'{work}/fold0/iter_2.pth').st_mtime_ns
    summary = cross_validate(HANDBONE, 3, work, **kwargs)
    assert trained == ['fold0', 'fold1', 'fold1', 'fold2']   # fold 0 not trained again
    assert os.stat(f'{work}/fold0/iter_2.pth').st_mtime_ns == stamp
    assert _keys(f'{work}/oof_probs') == _images(f'{handbone}/train')
    assert [f.fold for f in summary.folds] == [0, 1, 2]
    # each fold's runner logged into its own folder (mmengine's visualizer and logger
    # are named singletons; a reused one wrote every fold into fold 0's vis_data)
    for k in range(3):
        (scalars,) = glob.glob(f'{work}/fold{k}/*/vis_data/scalars.json')
        rows = [json.loads(line) for line in open(scalars)]
        assert sum('mDice' in r for r in rows) == 1, (k, rows)
    # another K in that work dir is refused before anything trains ...
    with pytest.raises(OutputExistsError, match='differs in num_folds'):
        cross_validate(HANDBONE, 4, work, **kwargs)
    assert trained == ['fold0', 'fold1', 'fold1', 'fold2']
    # ... and --folds runs some folds only, then stops before the OOF stages
    part = cross_validate(HANDBONE, 3, str(tmp_path / 'part'), folds=[1], **kwargs)
    assert [f.fold for f in part.folds] == [1] and not part.oof_probs
    assert not osp.exists(tmp_path / 'part' / 'fold0')


@pytest.mark.slow
def test_multiclass_folder_data_set_is_scored_by_iou(shapes_root, tmp_path):
    """Image/label folders: stratified folds, OOF IoU per class from one confusion matrix
    (recomputed here from the stored probabilities and the label PNGs)."""
    from mmseg_ext.io.probs import ProbFolder
    work = tmp_path / 'w'
    opts = [f'{s}_dataloader.dataset.data_root={shapes_root}' for s in ('train', 'val', 'test')]
    proc = run_tool('tools/cv.py', CONFIG, '-k', '2', '--work-dir', str(work),
                    '--no-progress', '--cfg-options', *opts, 'train_cfg.max_iters=2',
                    'train_cfg.val_interval=2', 'default_hooks.checkpoint.interval=2',
                    'train_dataloader.batch_size=2',
                    'model.data_preprocessor.size=(32,40)', 'log_level=WARNING',
                    env={'OMP_NUM_THREADS': '1'})
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.load(open(work / 'summary.json'))
    assert summary['metric'] == 'IoU' and not summary['thresholds']
    names = sorted(osp.basename(p)[:-4] for p in glob.glob(f'{shapes_root}/images/train/*.png'))
    assert _keys(work / 'oof_probs') == names
    folder = ProbFolder(str(work / 'oof_probs'))
    classes = folder.classes
    confusion = np.zeros((len(classes), len(classes)), np.int64)
    for key in folder.keys():
        stored, meta = folder.read(key)               # (C, h, w) uint8 levels
        h, w = meta.ori_shape
        up = np.stack([cv2.resize(ch, (w, h), interpolation=cv2.INTER_LINEAR)
                       for ch in stored])
        pred = up.argmax(0)
        gt = cv2.imread(f'{shapes_root}/labels/train/{key}.png', cv2.IMREAD_UNCHANGED)
        np.add.at(confusion, (gt.ravel(), pred.ravel()), 1)
    inter = np.diag(confusion)
    union = confusion.sum(0) + confusion.sum(1) - inter
    for c, name in enumerate(classes):
        if union[c]:
            assert summary['oof_before'][name] == pytest.approx(inter[c] / union[c])


def _write(path, text):
    path.write_text(text)
    return str(path)


@pytest.mark.slow
@pytest.mark.parametrize('case', ['k_above_groups', 'no_val_split', 'empty_test_dir',
                                  'fold_out_of_range', 'k_one', 'format_of_other_task',
                                  'empty_val_split', 'train_split_not_the_rest',
                                  'patient_split'])
def test_bad_input_is_one_error_line_and_nothing_trains(case, handbone, tmp_path):
    work = tmp_path / 'w'
    config, k, extra, loaders = HANDBONE, '3', [], ('train', 'val', 'test')
    if case == 'k_above_groups':
        k = '7'                                   # 6 patients
        expect = f'error: {HANDBONE}: 7 folds need at least 7 groups; the pool has 6 (patients)'
    elif case == 'no_val_split':
        config = _write(tmp_path / 'noval.py', f"_base_ = ['{REPO}/{HANDBONE}']\n"
                        'val_dataloader = None\nval_cfg = None\nval_evaluator = None\n'
                        'test_dataloader = None\n')
        loaders = ('train',)
        expect = f'error: {config}: no val split'
    elif case == 'empty_test_dir':
        (tmp_path / 'empty').mkdir()
        extra = ['--test-dir', str(tmp_path / 'empty')]
        expect = f'error: {tmp_path / "empty"}: no images'
    elif case == 'fold_out_of_range':
        extra = ['--folds', '0,3']
        expect = 'error: --folds: 3 is not a fold of 0..2'
    elif case == 'format_of_other_task':
        extra = ['--test-dir', f'{handbone}/test/DCM', '--format', 'port', '--sample',
                 _write(tmp_path / 'sample.csv', 'file_name,class,prediction\n')]
        expect = ('error: --format: the port format needs multi-class probabilities; '
                  f'{HANDBONE} predicts multi-label ones')
    elif case in ('empty_val_split', 'train_split_not_the_rest', 'patient_split'):
        splits = tmp_path / 'splits'
        splits.mkdir()
        names = _images(f'{handbone}/train')
        parts = [names[:4], names[4:8], names[8:]]
        if case == 'empty_val_split':
            parts = [names[:6], [], names[6:]]
        if case == 'patient_split':  # AH-7: the second patient's two images apart
            assert names[2].split('/')[0] == names[3].split('/')[0]
            parts = [names[:3], names[3:8], names[8:]]
        for j, part in enumerate(parts):
            _write(splits / f'val_fold{j}.txt', ''.join(n + '\n' for n in part))
        if case == 'train_split_not_the_rest':
            _write(splits / 'train_fold0.txt', ''.join(n + '\n' for n in names[4:-1]))
        extra = ['--splits', str(splits)]
        expect = {'empty_val_split': f'error: {splits}/val_fold1.txt: no images',
                  'patient_split': f"error: {splits}: patient '{names[3].split('/')[0]}' "
                                   f'is split between folds: {names[2]} is in val_fold0, '
                                   f'{names[3]} in val_fold1'}.get(
            case, f'error: {splits}/train_fold0.txt: {names[-1]} is missing')
    else:
        k = '1'
        expect = 'error: cv.py: argument -k/--num-folds: 1 is outside'
    proc = run_tool('tools/cv.py', config, '-k', k, '--work-dir', str(work), '--no-progress',
                    *extra, *_options(f'{handbone}/train', loaders=loaders))
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.startswith('error:')]
    assert len(lines) == 1 and lines[0].startswith(expect), proc.stderr[-2000:]
    assert not glob.glob(f'{work}/fold*'), 'nothing may train'


def test_run_commands_runs_folds_in_slots_and_names_a_failed_fold(tmp_path):
    """The multi-GPU path: at most N commands at once, each with its own device list,
    and a failed fold is one error naming its log."""
    from mmseg_ext.utils.errors import StageError
    from mmseg_ext.workflows.cross_validation import FoldCommand, run_commands
    script = ('import os, sys, time; open(sys.argv[1], "w").write('
              'os.environ.get("CUDA_VISIBLE_DEVICES", "-") + " " + os.environ["PORT"]); '
              'time.sleep(0.3); sys.exit(int(sys.argv[2]))')
    cmds = [FoldCommand(k, [sys.executable, '-c', script, str(tmp_path / f'{k}.out'), '0'],
                        str(tmp_path / f'{k}.log')) for k in range(3)]
    run_commands(cmds, gpus=2, log=lambda m: None)
    seen = [open(tmp_path / f'{k}.out').read().split() for k in range(3)]
    assert {s[0] for s in seen[:2]} == {'0', '1'}       # two at once, one GPU each
    assert all(s[1] == str(29500 + int(s[0])) for s in seen)
    # the launch scripts a fold command starts run this interpreter, not python from
    # PATH (an environment that is not activated), whatever PYTHON the caller had
    script_env = ('import os, sys; open(sys.argv[1], "w").write(os.environ["PYTHON"])')
    os.environ['PYTHON'] = '/usr/bin/not-this-python'
    try:
        run_commands([FoldCommand(0, [sys.executable, '-c', script_env,
                                      str(tmp_path / 'py.out')], str(tmp_path / 'py.log'))],
                     gpus=0, log=lambda m: None)
    finally:
        del os.environ['PYTHON']
    assert open(tmp_path / 'py.out').read() == sys.executable
    bad = [FoldCommand(0, [sys.executable, '-c', script, str(tmp_path / 'x'), '3'],
                       str(tmp_path / 'x.log'))]
    with pytest.raises(StageError, match=r'fold 0: training failed \(exit status 3\); its '
                       f'log is {tmp_path}/x.log'):
        run_commands(bad, gpus=0, log=lambda m: None)


@pytest.mark.slow
def test_ranks_per_fold_trains_a_fold_through_dist_train_on_cpu_ranks(handbone, tmp_path):
    """--ranks-per-fold: the fold's config is written out and trained by
    tools/dist_train.sh (2 CPU ranks here); the fold is then predicted as any other."""
    work = tmp_path / 'w'
    proc = run_tool('tools/cv.py', HANDBONE, '-k', '2', '--folds', '0', '--ranks-per-fold',
                    '2', '--work-dir', str(work), '--no-progress',
                    *_options(f'{handbone}/train', log_level='INFO'),
                    env={'OMP_NUM_THREADS': '1', 'PYTHON': sys.executable})
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = open(work / 'fold0' / 'train.log').read()
    assert 'Distributed training: True' in log and 'GPU number: 2' in log, log[-3000:]
    assert "type='CPUDistributedDataParallel'" in log     # 2 CPU ranks through gloo
    assert osp.isfile(work / 'fold0' / 'iter_2.pth')
    from mmengine.config import Config
    fold_cfg = Config.fromfile(str(work / 'configs' / 'fold0.py'))
    assert fold_cfg.train_dataloader.dataset.ann_file == str(work / 'splits' /
                                                             'train_fold0.txt')
    assert fold_cfg.val_dataloader.dataset.ann_file == str(work / 'splits' / 'val_fold0.txt')
    assert _keys(work / 'fold0' / 'val_probs') == sorted(
        open(work / 'splits' / 'val_fold0.txt').read().split())
    assert 'folds 0 of 2 done' in proc.stdout + proc.stderr


@pytest.mark.slow
def test_the_submission_of_another_test_set_is_not_overwritten(cv_run, handbone):
    """The same command with another --test-dir on a finished work dir: refused before
    anything runs; the submission stays."""
    work, _ = cv_run
    before = open(work / 'submission.csv').read()
    proc = run_tool('tools/cv.py', HANDBONE, '-k', '3', '--work-dir', str(work),
                    '--test-dir', f'{handbone}/train/DCM', '--no-progress',
                    *_options(f'{handbone}/train'))
    errors = [line for line in proc.stderr.splitlines() if line.startswith('error:')]
    assert proc.returncode == 1 and errors == [
        f'error: {work}/test/settings.json: records another test-stage run in this work '
        'directory (it differs in images, test_dir) (use --force to replace it)']
    assert open(work / 'submission.csv').read() == before


@pytest.mark.slow
def test_force_starts_again_without_reusing_the_earlier_folds(handbone, tmp_path,
                                                               monkeypatch, fast_cpu):
    """--force with another seed: every fold and every prediction is made again (the
    earlier validation probabilities covered other images); after a forced partial run,
    the folds it did not train are not taken from the older run."""
    import mmseg_ext.training.stages as stages
    from mmseg_ext.workflows.cross_validation import cross_validate
    real = stages.train_only
    trained = []
    monkeypatch.setattr(stages, 'train_only',
                        lambda cfg: trained.append(osp.basename(cfg.work_dir)) or real(cfg))
    options = {f'{s}_dataloader.dataset.data_root': f'{handbone}/train'
               for s in ('train', 'val', 'test')}
    options.update({'train_cfg.max_iters': 1, 'train_cfg.val_interval': 1,
                    'default_hooks.checkpoint.interval': 1,
                    'train_dataloader.batch_size': 2, 'log_level': 'WARNING'})
    work = str(tmp_path / 'w')
    kwargs = dict(cfg_options=options, progress=False, log=lambda m: None)
    cross_validate(HANDBONE, 2, work, seed=1, **kwargs)
    cross_validate(HANDBONE, 2, work, seed=2, force=True, folds=[0], **kwargs)
    cross_validate(HANDBONE, 2, work, seed=2, **kwargs)
    assert trained == ['fold0', 'fold1', 'fold0', 'fold1']
    for k in range(2):
        listed = sorted(open(f'{work}/splits/val_fold{k}.txt').read().split())
        assert _keys(f'{work}/fold{k}/val_probs') == listed


def test_pseudo_labelling_the_test_set_composes_with_cv(cv_run, handbone, tmp_path):
    """docs/cross_validation.md "Pseudo-labelling the test set": the teacher run's test
    ensemble -> tools/pseudo_label.py -> tools/cv.py --pseudo-labels: a finished student
    run whose folds trained on the pseudo-labelled test images and whose OOF covers the
    same labelled images as the teacher's."""
    work, _ = cv_run
    pl = tmp_path / 'pl_test'
    proc = run_tool('tools/pseudo_label.py', str(work / 'test' / 'ensemble'), '--out-dir',
                    str(pl), '--pixel-conf', '0.9', '--max-uncertain', '1.0',
                    '--no-progress')
    assert proc.returncode == 0, proc.stderr
    accepted = (pl / 'accepted.txt').read_text().split()
    assert len(accepted) == len(glob.glob(f'{handbone}/test/DCM/*/*.png'))
    student = tmp_path / 'student'
    proc = run_tool('tools/cv.py', HANDBONE, '-k', '3', '--work-dir', str(student),
                    '--test-dir', f'{handbone}/test/DCM', '--pseudo-labels', str(pl),
                    '--no-progress', *_options(f'{handbone}/train'),
                    env={'OMP_NUM_THREADS': '1'})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _keys(student / 'oof_probs') == _keys(work / 'oof_probs') == _images(
        f'{handbone}/train')
    for k in range(3):  # the config mmengine dumped for the fold's training
        dumped, = glob.glob(str(student / f'fold{k}' / '*.py'))
        text = open(dumped).read()
        assert 'ConcatDataset' in text and str(pl) in text and 'accepted.txt' in text
    assert json.load(open(student / 'cv.json'))['extra_train']
    assert (student / 'submission.csv').is_file()


@pytest.mark.parametrize('wrapper', ['ConcatDataset', 'RepeatDataset'])
def test_a_wrapped_validation_set_is_named_not_called_missing(wrapper):
    """Round V-14: val_dataloader, val_evaluator and val_cfg are there, but the val set
    is a ConcatDataset/RepeatDataset: said so, not "no val split"."""
    from mmengine.config import Config

    from mmseg_ext.utils.errors import ConfigError
    from mmseg_ext.workflows.cross_validation.pool import check_val_split
    plain = dict(type='BaseSegDataset', pipeline=[dict(type='PackSegInputs')])
    wrapped = (dict(type='ConcatDataset', datasets=[plain, plain]) if wrapper == 'ConcatDataset'
               else dict(type='RepeatDataset', times=2, dataset=plain))
    cfg = Config(dict(val_dataloader=dict(dataset=wrapped), val_evaluator=dict(type='IoUMetric'),
                      val_cfg=dict(type='ValLoop')))
    with pytest.raises(ConfigError) as info:
        check_val_split(cfg, 'c.py')
    assert str(info.value) == (f'c.py: val_dataloader.dataset is a {wrapper}; a wrapped '
                               'validation set is not supported: cross-validation validates '
                               'each fold with the pipeline of one plain data set')
    check_val_split(Config(dict(val_dataloader=dict(dataset=plain),
                                val_evaluator=dict(type='IoUMetric'),
                                val_cfg=dict(type='ValLoop'))), 'c.py')  # plain: accepted
