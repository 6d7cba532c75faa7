"""Stage folders: a training stage writes in place (mmengine's ``last_checkpoint``,
config dump, logs), so it starts or resumes only in a folder that holds nothing but
the tool's own unchanged, unshared files (hostile round A, cases 3, 4, 5, 8, 13, 14,
15, 17).

Each cell runs ``tools/cv.py``'s (``self_train.py``'s, ``train.py``'s, ``test.py``'s)
``main`` in-process; cv's folds "train" by copying a checkpoint (``cv_fakes``). It
asserts the exit status, the one ``error:`` line naming the file, and a file-by-file
snapshot showing the work dir (and any hard-linked copy) unchanged.
"""
import json
import os
import os.path as osp
import shutil
import signal

import cv2
import pytest

from mmseg_ext.io.ownership import Manifest, owned_work_dir
from mmseg_ext.training.stages import resumable
from mmseg_ext.utils.errors import DataError
from mmseg_ext.workflows import cross_validation

from .cv_fakes import SHAPES, fake_fold_command, shapes_world
from .test_bad_inputs import assert_refused, run_main, snapshot
from .test_ownership import cli_options

UNDECODABLE = os.fsdecode(b'w\xe9')  # a name that is not UTF-8


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    return shapes_world(tmp_path_factory, 'stage')


@pytest.fixture
def fake_folds(shapes, monkeypatch):
    """cv.py's folds train by copying the shapes checkpoint (``--ranks-per-fold 1``)."""
    real = cross_validation.cross_validate

    def cross_validate(*args, **kwargs):
        kwargs['fold_command'] = fake_fold_command(shapes['ckpt'])
        return real(*args, **kwargs)
    monkeypatch.setattr(cross_validation, 'cross_validate', cross_validate)


@pytest.fixture
def no_hang():
    """Fail instead of hanging when a FIFO is opened."""
    def stop(*_):
        raise AssertionError('the tool blocked on a special file')
    old = signal.signal(signal.SIGALRM, stop)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def special_safe_snapshot(root):
    """:func:`snapshot`, with special files recorded by kind, never opened."""
    import hashlib
    import stat
    seen = {}
    for dirpath, _dirs, files in os.walk(root):
        seen[dirpath] = None
        for name in files:
            path = osp.join(dirpath, name)
            if stat.S_ISREG(os.lstat(path).st_mode):
                with open(path, 'rb') as f:
                    seen[path] = hashlib.sha1(f.read()).hexdigest()
            else:
                seen[path] = 'special'
    return seen


def cv(shapes, work, *extra):
    return run_main('cv.py', [SHAPES, '-k', '2', '--work-dir', str(work), '--no-progress',
                              '--ranks-per-fold', '1', *extra,
                              *cli_options(shapes['root'])])


def fold0_unfinished(shapes, work):
    """A cv run whose fold 0 trained but was stopped before its ``done.json``."""
    code, lines = cv(shapes, work, '--folds', '0')
    assert code == 0, lines
    os.remove(work / 'fold0' / 'done.json')
    return work / 'fold0'


# ------------------------------------------------------------------ 3: unlisted files
@pytest.mark.parametrize('force', [False, True], ids=['plain', 'force'])
@pytest.mark.parametrize('name', ['iter_2.pth', 'last_checkpoint'])
def test_a_user_file_in_a_fold_folder_is_refused(shapes, fake_folds, tmp_path, force,
                                                 name):
    work = tmp_path / 'w'
    code, lines = cv(shapes, work, '--folds', '0')
    assert code == 0, lines
    (work / 'fold1').mkdir()
    (work / 'fold1' / name).write_text('mine')
    before = snapshot(str(work))
    code, lines = cv(shapes, work, *(['--force'] if force else []))
    path = work / 'fold1' / name
    assert_refused(code, lines, 1, f'error: {path}: was not written by this tool; not '
                   'writing over it (move it away, or use another folder)')
    assert snapshot(str(work)) == before and path.read_text() == 'mine'


# ------------------------------------------------------------------ 4: replaced files
@pytest.mark.parametrize('name', ['20260101_000000/vis_data/scalars.json', 'last_checkpoint'])
def test_a_listed_file_the_user_replaced_is_refused_on_resume(shapes, fake_folds,
                                                              tmp_path, name):
    fold = fold0_unfinished(shapes, tmp_path / 'w')
    (fold / name).write_text('MINE')
    before = snapshot(str(tmp_path))
    code, lines = cv(shapes, tmp_path / 'w', '--folds', '0')
    assert_refused(code, lines, 1, f'error: {fold / name}: changed since this tool wrote '
                   'it; not writing over it')
    assert snapshot(str(tmp_path)) == before


# ------------------------------------------------------------------ 5: hard links
def test_a_hard_linked_snapshot_is_not_written_through(shapes, fake_folds, tmp_path):
    fold = fold0_unfinished(shapes, tmp_path / 'w')
    copy = tmp_path / 'snap'
    copy.mkdir()
    os.link(fold / 'iter_1.pth', copy / 'iter_1.pth')   # what `cp -al` makes
    before = snapshot(str(tmp_path))
    code, lines = cv(shapes, tmp_path / 'w', '--folds', '0')
    assert_refused(code, lines, 1, f'error: {fold}/iter_1.pth: hard-linked elsewhere '
                   '(2 names:')
    assert snapshot(str(tmp_path)) == before


# ------------------------------------------------------------------ 8: resume proofs
def test_a_fold_never_resumes_from_a_checkpoint_copied_in(shapes, fake_folds, tmp_path):
    work = tmp_path / 'w'
    code, lines = cv(shapes, work, '--folds', '0')
    assert code == 0, lines
    (work / 'fold1').mkdir()
    shutil.copy2(work / 'fold0' / 'iter_1.pth', work / 'fold1' / 'iter_1.pth')
    (work / 'fold1' / 'last_checkpoint').write_text(str(work / 'fold1' / 'iter_1.pth'))
    before = snapshot(str(work))
    code, lines = cv(shapes, work)
    assert_refused(code, lines, 1, f'error: {work}/fold1/iter_1.pth: was not written by '
                   'this tool')
    assert snapshot(str(work)) == before


def test_resumable_needs_a_checkpoint_the_manifest_lists(tmp_path):
    work = str(tmp_path / 'w')
    stage = osp.join(work, 'fold1')
    with owned_work_dir(work, 'tools/cv.py') as manifest:
        with manifest.recording(stage, replace=False):
            os.makedirs(stage)
            with open(osp.join(stage, 'iter_1.pth'), 'w') as f:
                f.write('weights')
            with open(osp.join(stage, 'last_checkpoint'), 'w') as f:
                f.write(osp.join(stage, 'iter_1.pth'))
    assert resumable(stage, Manifest.read(work))
    with open(osp.join(stage, 'other.pth'), 'w') as f:   # not the tool's
        f.write('weights')
    with open(osp.join(stage, 'last_checkpoint'), 'w') as f:
        f.write(osp.join(stage, 'other.pth'))
    manifest = Manifest.read(work)
    manifest.record(osp.join(stage, 'last_checkpoint'))
    with pytest.raises(DataError) as err:
        resumable(stage, manifest)
    assert str(err.value) == (
        f'{stage}/last_checkpoint: names {stage}/other.pth, which this run did not write '
        f'for this stage ({stage}/other.pth is not listed as the tool\'s, or changed '
        'since); refusing to resume from it')


# ------------------------------------------------------------------ 13: rank counts
def test_more_ranks_per_fold_than_the_machine_has_is_a_range_error(shapes, tmp_path):
    import torch
    work = tmp_path / 'w'
    most = (max(min(0, torch.cuda.device_count()), 1) if torch.cuda.is_available()
            else os.cpu_count())
    code, lines = run_main('cv.py', [SHAPES, '-k', '2', '--work-dir', str(work),
                                     '--ranks-per-fold', str(10 ** 15), '--no-progress',
                                     *cli_options(shapes['root'])])
    assert_refused(code, lines, 2, f'error: --ranks-per-fold: {10 ** 15} is outside '
                   f'[0, {most}]')
    assert not work.exists()


# ------------------------------------------------------------------ 14: names
@pytest.mark.parametrize('tool', ['cv.py', 'self_train.py', 'train.py', 'test.py',
                                  'test.py --out'])
def test_a_work_dir_name_that_is_not_utf8_is_refused(shapes, tmp_path, tool, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = shapes['root']
    opts = cli_options(root)
    flag = '--out' if tool.endswith('--out') else '--work-dir'
    argv = {
        'cv.py': [SHAPES, '-k', '2', '--work-dir', UNDECODABLE, '--no-progress', *opts],
        'self_train.py': [SHAPES, SHAPES, '--unlabelled', f'{root}/images/val',
                          '--img-suffix', '.png', '--work-dir', UNDECODABLE, *opts],
        'train.py': [SHAPES, '--work-dir', UNDECODABLE, *opts],
        'test.py': [SHAPES, shapes['ckpt'], '--work-dir', UNDECODABLE, *opts],
        'test.py --out': [SHAPES, shapes['ckpt'], '--work-dir', 'wd', '--out',
                          UNDECODABLE, *opts],
    }[tool]
    before = snapshot(str(tmp_path), root)
    code, lines = run_main(tool.split()[0], argv)
    assert_refused(code, lines, 2, f"error: {flag}: b'w\\xe9' is not valid UTF-8")
    assert snapshot(str(tmp_path), root) == before


# ------------------------------------------------------------------ 15, 17: special files
@pytest.mark.parametrize('where', ['fold0/last_checkpoint', 'fold0/done.json', 'cv.json'])
def test_a_fifo_where_a_stage_keeps_its_bookkeeping_is_refused(shapes, fake_folds, tmp_path,
                                                                no_hang, where):
    work = tmp_path / 'w'
    fold0_unfinished(shapes, work)
    os.remove(work / where) if osp.lexists(work / where) else None
    os.mkfifo(work / where)
    before = special_safe_snapshot(str(work))
    code, lines = cv(shapes, work, '--folds', '0')
    assert_refused(code, lines, 1, f'error: {work / where}: not a regular file (a FIFO')
    assert special_safe_snapshot(str(work)) == before


def test_a_run_record_that_is_a_folder_is_named(shapes, fake_folds, tmp_path):
    work = tmp_path / 'w'
    code, lines = cv(shapes, work, '--folds', '0')
    assert code == 0, lines
    os.remove(work / 'cv.json')
    (work / 'cv.json').mkdir()
    before = snapshot(str(work))
    code, lines = cv(shapes, work, '--folds', '0')
    assert_refused(code, lines, 1, f'error: {work}/cv.json: not a regular file (a folder), '
                   'where this tool keeps its run record; remove it and run again')
    assert snapshot(str(work)) == before


# ------------------------------------------------------------------ self_train --force
def test_self_train_force_refuses_a_user_file_in_a_training_folder(shapes, tmp_path):
    """Checked before --force removes anything: the teacher would train over it."""
    work = str(tmp_path / 'w')
    with owned_work_dir(work, 'tools/self_train.py') as manifest:
        with manifest.recording(osp.join(work, 'teacher'), replace=False):
            os.makedirs(osp.join(work, 'teacher'))
            with open(osp.join(work, 'teacher', 'iter_1.pth'), 'w') as f:
                f.write('tool')
    with open(osp.join(work, 'teacher', 'iter_2.pth'), 'w') as f:
        f.write('mine')
    before = snapshot(work, shapes['root'])
    code, lines = run_main('self_train.py', [
        SHAPES, SHAPES, '--unlabelled', f'{shapes["root"]}/images/val', '--img-suffix',
        '.png', '--work-dir', work, '--force', *cli_options(shapes['root'])])
    assert_refused(code, lines, 1, f'error: {work}/teacher/iter_2.pth: was not written by '
                   'this tool; not writing over it')
    assert snapshot(work, shapes['root']) == before
    assert json.load(open(osp.join(work, '.mmseg_ext_manifest.json')))['entries']


# ------------------------------------------------------------------ test.py --out
def test_test_out_writes_a_new_folder_whole_and_never_into_the_users(shapes, tmp_path,
                                                                    monkeypatch):
    """Before, ``test.py --out DIR`` wrote each prediction PNG into DIR directly,
    replacing a file of the user's with the same name (exit 0)."""
    monkeypatch.chdir(tmp_path)
    argv = [SHAPES, shapes['ckpt'], '--work-dir', 'wd', *cli_options(shapes['root'])]
    mine = tmp_path / 'mine'
    mine.mkdir()
    val_images = sorted(os.listdir(osp.join(shapes['root'], 'images', 'val')))
    (mine / val_images[0]).write_text('my file\n')
    code, lines = run_main('test.py', [*argv, '--out', str(mine)])
    assert_refused(code, lines, 1, f'error: {mine}: exists and is not empty')
    assert os.listdir(mine) == [val_images[0]]
    assert (mine / val_images[0]).read_text() == 'my file\n'

    code, lines = run_main('test.py', [*argv, '--out', 'preds'])
    assert code == 0, lines
    published = sorted(os.listdir(tmp_path / 'preds'))
    assert published == sorted(['.mmseg_ext_manifest.json', 'test_predictions.txt',
                                *val_images])
    assert not [n for n in os.listdir(tmp_path) if n.startswith('.preds')]  # no staging
    for name in val_images:  # label maps of the image's size
        label = cv2.imread(str(tmp_path / 'preds' / name), cv2.IMREAD_UNCHANGED)
        image = cv2.imread(osp.join(shapes['root'], 'images', 'val', name))
        assert label.shape == image.shape[:2]


# ------------------------------------------------------------------ the runner's config dump
def test_the_config_dump_keeps_a_users_file_of_that_name(shapes, tmp_path, monkeypatch):
    """mmengine dumps the config as ``<work_dir>/<config name>``; before, that replaced
    the config itself when it lived in the work dir, or the user's edited copy."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'wd').mkdir()
    config = tmp_path / 'wd' / 'fcn.py'
    text = f"_base_ = ['{SHAPES}']\n# my notes\n"
    config.write_text(text)
    for tool, argv in (('test.py', [config, shapes['ckpt'], '--work-dir', 'wd']),
                       ('train.py', [config, '--work-dir', 'wd'])):
        code, lines = run_main(tool, [*argv, *cli_options(shapes['root']),
                                      'train_cfg.max_iters=1'])
        assert code == 0, lines
        assert config.read_text() == text  # the input config, untouched
    # each run's own log folder (named by the second it started: two runs within one
    # second share it, and the later dump replaces the earlier one, its own)
    dumps = sorted((tmp_path / 'wd').glob('*/fcn.py'))
    assert 1 <= len(dumps) <= 2 and all('max_iters=1' in d.read_text() for d in dumps)


def test_a_test_run_dumps_its_config_into_its_own_log_folder(shapes, tmp_path, monkeypatch):
    """A test run never writes ``<work_dir>/<config name>`` (round AD: in a training's
    work dir it replaced the dump that describes the checkpoints); each run's config
    goes into its own log folder, and a file of that name stays as it is."""
    monkeypatch.chdir(tmp_path)
    argv = [SHAPES, shapes['ckpt'], '--work-dir', 'wd', *cli_options(shapes['root'])]
    name = osp.basename(SHAPES)
    dump = tmp_path / 'wd' / name
    code, lines = run_main('test.py', argv)
    assert code == 0, lines
    assert not dump.exists()
    code, lines = run_main('test.py', [*argv, 'default_hooks.logger.interval=7'])
    assert code == 0, lines
    dumps = sorted((tmp_path / 'wd').glob(f'*/{name}'))
    assert len(dumps) == 2 and 'interval=7' in dumps[1].read_text() \
        and 'interval=7' not in dumps[0].read_text()
    dump.write_text('# mine\n')
    code, lines = run_main('test.py', argv)
    assert code == 0, lines
    assert dump.read_text() == '# mine\n'


def test_test_show_dir_is_a_new_or_empty_folder(shapes, tmp_path, monkeypatch):
    """mmengine writes fixed names there (``vis_data/config.py``, the drawings)."""
    monkeypatch.chdir(tmp_path)
    argv = [SHAPES, shapes['ckpt'], '--work-dir', 'wd', *cli_options(shapes['root'])]
    (tmp_path / 'sd' / 'vis_data').mkdir(parents=True)
    (tmp_path / 'sd' / 'vis_data' / 'config.py').write_text('mine\n')
    code, lines = run_main('test.py', [*argv, '--show-dir', str(tmp_path / 'sd')])
    assert_refused(code, lines, 1, f'error: {tmp_path / "sd"}: exists and is not empty')
    assert (tmp_path / 'sd' / 'vis_data' / 'config.py').read_text() == 'mine\n'
    # in this process, after other runs: each test draws into its own folder (mmengine
    # keeps one visualizer per name and process)
    code, lines = run_main('test.py', [*argv, '--show-dir', str(tmp_path / 'new')])
    assert code == 0, lines
    drawn = list((tmp_path / 'new').rglob('*.png'))
    assert len(drawn) == len(os.listdir(osp.join(shapes['root'], 'images', 'val')))


def test_test_show_dir_is_published_whole_and_never_inside_a_published_folder(
        shapes, tmp_path, monkeypatch):
    """Round S's S-1: ``--show-dir`` was handed to mmengine's visualizer as it was, so
    it could be a new folder inside a published output folder (its files mixed with
    that tool's), and an interrupted test left a half-drawn folder. It is now staged
    and published whole, like ``--out``."""
    from mmseg_ext.io.folder_manifest import write_folder_manifest
    from mmseg_ext.training import runner as runner_module
    monkeypatch.chdir(tmp_path)
    argv = [SHAPES, shapes['ckpt'], '--work-dir', 'wd', *cli_options(shapes['root'])]
    published = tmp_path / 'probs'
    published.mkdir()
    (published / 'a.txt').write_text('theirs\n')
    write_folder_manifest(str(published), 'tools/inference.py')
    before = snapshot(str(published))
    code, lines = run_main('test.py', [*argv, '--show-dir', str(published / 'vis')])
    assert_refused(code, lines, 1, f'error: {published / "vis"}: lies inside {published}, '
                   'a published output folder of tools/inference.py')
    assert snapshot(str(published)) == before

    def interrupted(cfg, checkpoint, config=None):  # stops after drawing one picture
        os.makedirs(osp.join(cfg.visualizer['save_dir'], 'vis_image'))
        open(osp.join(cfg.visualizer['save_dir'], 'vis_image', 'x.png'), 'w').close()
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(runner_module, '_run_test', interrupted)
        code, lines = run_main('test.py', [*argv, '--show-dir', 'drawn'])
    assert code == 130, lines
    assert not [n for n in os.listdir(tmp_path) if 'drawn' in n]  # nothing half-drawn
    code, lines = run_main('test.py', [*argv, '--show-dir', 'drawn'])
    assert code == 0, lines
    assert (tmp_path / 'drawn' / 'test_drawings.txt').read_text() == (
        f'config: {SHAPES}\ncheckpoint: {shapes["ckpt"]}\n')
    assert osp.isfile(tmp_path / 'drawn' / '.mmseg_ext_manifest.json')
    drawn = list((tmp_path / 'drawn').rglob('*.png'))
    assert len(drawn) == len(os.listdir(osp.join(shapes['root'], 'images', 'val')))


# ------------------------------------------------------------------ train.py checkpoints
def _train(shapes, work, *extra):
    return run_main('train.py', [SHAPES, '--work-dir', str(work), *cli_options(shapes['root']),
                                 'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
                                 'default_hooks.checkpoint.interval=2', *extra])


def test_train_writes_over_its_own_checkpoints_but_never_a_users(shapes, tmp_path):
    """Before, ``iter_2.pth`` and ``last_checkpoint`` of the user's in the work dir were
    replaced (exit 0), and a ``last_checkpoint`` link was written through."""
    work = tmp_path / 'w'
    code, lines = _train(shapes, work)
    assert code == 0, lines
    code, lines = _train(shapes, work)  # a rerun replaces the run's own files
    assert code == 0, lines

    mine = tmp_path / 'mine'
    mine.mkdir()
    (mine / 'iter_2.pth').write_bytes(b'my checkpoint')
    code, lines = _train(shapes, mine)  # refused when the checkpoint is saved
    assert_refused(code, lines, 1, f'error: {mine}/iter_2.pth: was not written by this tool')
    assert (mine / 'iter_2.pth').read_bytes() == b'my checkpoint'

    (mine / 'last_checkpoint').write_text('my notes')
    code, lines = _train(shapes, mine)  # refused before training
    assert_refused(code, lines, 1, f'error: {mine}/last_checkpoint: not a pointer a '
                   'training run wrote')
    assert (mine / 'last_checkpoint').read_text() == 'my notes'

    linked = tmp_path / 'linked'
    linked.mkdir()
    (tmp_path / 'outside.txt').write_text('precious')
    os.symlink(tmp_path / 'outside.txt', linked / 'last_checkpoint')
    code, lines = _train(shapes, linked)
    assert_refused(code, lines, 1, f'error: {linked}/last_checkpoint: a symbolic link')
    assert (tmp_path / 'outside.txt').read_text() == 'precious'


def test_a_second_training_in_a_busy_work_dir_is_refused(shapes, tmp_path):
    """Before, two ``train.py`` runs in one work dir both ran, interleaving their
    checkpoints and ``last_checkpoint`` (both exit 0)."""
    import subprocess
    import sys
    work = tmp_path / 'w'
    work.mkdir()
    holder = subprocess.Popen(  # another run: holds the work dir's lock
        [sys.executable, '-c',
         'import fcntl, os, sys, time\n'
         f'fd = os.open({str(work / ".mmseg_ext.lock")!r}, os.O_RDWR | os.O_CREAT)\n'
         'fcntl.flock(fd, fcntl.LOCK_EX)\nos.write(fd, str(os.getpid()).encode())\n'
         'print("held", flush=True)\ntime.sleep(120)\n'],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'held'
        code, lines = _train(shapes, work)
        assert_refused(code, lines, 1, f'error: {work}: in use by another run '
                       f'(pid {holder.pid})')
        assert sorted(os.listdir(work)) == ['.mmseg_ext.lock']  # nothing written
    finally:
        holder.kill()
        holder.wait()
    code, lines = _train(shapes, work)  # the lock ends with its process
    assert code == 0, lines
    assert (work / 'iter_2.pth').is_file()


def test_resume_from_a_bare_checkpoint_is_named(shapes, tmp_path):
    """Before: ``--resume`` with ``last_checkpoint`` naming a bare ``state_dict`` (no
    ``meta``) ended in a ``KeyError`` traceback."""
    import torch
    work = tmp_path / 'w'
    work.mkdir()
    bare = tmp_path / 'bare.pth'
    torch.save({'state_dict': torch.load(shapes['ckpt'], weights_only=False)['state_dict']},
               bare)
    (work / 'last_checkpoint').write_text(str(bare))
    code, lines = _train(shapes, work, '--resume')
    assert_refused(code, lines, 1, f"error: {bare}: not a checkpoint a training run saved "
                   "(no 'meta')")
