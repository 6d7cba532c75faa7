"""Ownership: a multi-stage tool deletes or replaces only what it recorded as its own.

Cells: a folder of user files (with ``test/`` and ``submission.csv``, the names cv
writes) under cv's and self_train's ``--force``; a work dir that is, holds or lies in an
input; a finished run under ``--force`` with a user's file dropped in and with one of
its outputs replaced by the user. Each asserts the exit status, the one ``error:``
line and a file-by-file snapshot; the manifest itself is tested in between.
"""
import json
import os
import os.path as osp
import shutil

import pytest

from mmseg_ext.io.manifest_records import MANIFEST
from mmseg_ext.io.ownership import Manifest, owned_work_dir
from mmseg_ext.io.work_dir_lock import LOCK
from mmseg_ext.utils.errors import OutputError

from .cv_fakes import SHAPES, run_cv, shapes_cfg_options, shapes_world
from .test_bad_inputs import assert_refused, run_main, snapshot


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    return shapes_world(tmp_path_factory, 'own')


def cli_options(root):
    return ['--cfg-options', *(f'{s}_dataloader.dataset.data_root={root}'
                               for s in ('train', 'val', 'test')),
            'model.data_preprocessor.size=(32,40)', 'log_level=WARNING']


def user_folder(path):
    """A user's folder holding what cv would call its outputs."""
    os.makedirs(osp.join(path, 'test'))
    os.makedirs(osp.join(path, 'fold0', 'val_probs'))
    for rel, text in (('test/0001.png', 'image'), ('submission.csv', 'a,b\n'),
                      ('fold0/last_checkpoint', 'mine'), ('fold0/val_probs/x', 'x'),
                      ('summary.json', '{}')):
        with open(osp.join(path, rel), 'w') as f:
            f.write(text)
    return str(path)


# ------------------------------------------------------------------ the manifest
def test_force_removes_only_listed_unchanged_files(tmp_path):
    work = str(tmp_path / 'w')
    manifest = Manifest.claim(work, 'tools/x.py')
    with manifest.recording(osp.join(work, 'out')):
        os.makedirs(osp.join(work, 'out', 'sub'))
        for rel in ('out/a.txt', 'out/sub/b.txt'):
            with open(osp.join(work, rel), 'w') as f:
                f.write(rel)
    with manifest.recording(osp.join(work, 'r.json')):
        with open(osp.join(work, 'r.json'), 'w') as f:
            f.write('{}')
    for rel in ('notes.txt', 'out/mine.txt'):            # the user's, dropped in later
        with open(osp.join(work, rel), 'w') as f:
            f.write('keep')
    listed = json.load(open(osp.join(work, MANIFEST)))
    assert listed['tool'] == 'tools/x.py'
    assert sorted(listed['entries']) == ['out', 'out/a.txt', 'out/sub', 'out/sub/b.txt',
                                         'r.json']
    # a user's file inside a listed folder: refused, nothing removed (the run would
    # otherwise stop later, after the earlier outputs were gone)
    before = snapshot(str(tmp_path))
    with pytest.raises(OutputError, match='out/mine.txt: was not written by this tool'):
        Manifest.read(work).remove_all()
    assert snapshot(str(tmp_path)) == before
    os.rename(osp.join(work, 'out', 'mine.txt'), osp.join(work, 'mine.txt'))
    # a new manifest instance reads what was written (the record survives the process)
    removed = Manifest.read(work).remove_all()
    assert sorted(osp.relpath(p, work) for p in removed) == [
        'out', 'out/a.txt', 'out/sub', 'out/sub/b.txt', 'r.json']
    left = sorted(osp.relpath(osp.join(d, f), work) for d, _, fs in os.walk(work)
                  for f in fs)
    assert left == [MANIFEST, 'mine.txt', 'notes.txt']  # the user's files, outside
    assert json.load(open(osp.join(work, MANIFEST)))['entries'] == {}


def test_a_listed_file_the_user_replaced_is_not_removed(tmp_path):
    work = str(tmp_path / 'w')
    manifest = Manifest.claim(work, 'tools/x.py')
    for name in ('a.txt', 'b.txt'):
        with manifest.recording(osp.join(work, name)):
            with open(osp.join(work, name), 'w') as f:
                f.write('tool')
    os.replace(osp.join(work, 'b.txt'), osp.join(work, 'old'))
    with open(osp.join(work, 'b.txt'), 'w') as f:         # same name, the user's now
        f.write('user')
    before = snapshot(work)
    with pytest.raises(OutputError, match=f'^{work}/b.txt: changed since this tool wrote '
                       'it, so it is not the tool\'s to remove'):
        Manifest.read(work).remove_all()
    assert snapshot(work) == before                       # nothing removed, not even a.txt
    with pytest.raises(OutputError, match=f'^{work}/b.txt: changed since this tool wrote'):
        manifest.check_replaceable(osp.join(work, 'b.txt'))
    with pytest.raises(OutputError, match=f'^{work}/old: was not written by this tool'):
        manifest.check_replaceable(osp.join(work, 'old'))


def test_claiming_refuses_folders_the_tool_did_not_make(tmp_path):
    assert Manifest.check_claimable(str(tmp_path / 'new'), 'tools/x.py') is None
    (tmp_path / 'empty').mkdir()
    assert Manifest.check_claimable(str(tmp_path / 'empty'), 'tools/x.py') is None
    user = user_folder(tmp_path / 'user')
    before = snapshot(user)
    with pytest.raises(OutputError, match=f'^{user}: holds files this tool did not write'):
        with owned_work_dir(user, 'tools/x.py'):
            pass
    assert snapshot(user) == before and not osp.exists(osp.join(user, LOCK))
    other = str(tmp_path / 'other')
    Manifest.claim(other, 'tools/self_train.py')
    with pytest.raises(OutputError, match=f'^{other}: holds the outputs of '
                       'tools/self_train.py, not of tools/cv.py'):
        Manifest.check_claimable(other, 'tools/cv.py')
    with open(osp.join(other, MANIFEST), 'w') as f:
        f.write('[1, 2]')
    with pytest.raises(OutputError, match='not a manifest of mmseg_ext'):
        Manifest.check_claimable(other, 'tools/self_train.py')


# ------------------------------------------------------------------ the tools
@pytest.mark.parametrize('tool', ['cv.py', 'self_train.py'])
@pytest.mark.parametrize('force', [True, False], ids=['force', 'plain'])
def test_a_folder_of_user_files_is_refused_and_left_as_it_was(tool, force, shapes, tmp_path):
    user = user_folder(tmp_path / 'user')
    before = snapshot(user, shapes['root'])
    if tool == 'cv.py':
        argv = [SHAPES, '-k', '2', '--work-dir', user, *cli_options(shapes['root'])]
    else:
        argv = [SHAPES, SHAPES, '--unlabelled', f'{shapes["root"]}/images/val',
                '--img-suffix', '.png', '--work-dir', user, *cli_options(shapes['root'])]
    code, lines = run_main(tool, argv + (['--force'] if force else []))
    assert_refused(code, lines, 1, f'error: {user}: holds files this tool did not write '
                   f'(no {MANIFEST}, e.g. fold0); refusing to write into it')
    assert snapshot(user, shapes['root']) == before


def data_copy(shapes, tmp_path):
    return shutil.copytree(shapes['root'], str(tmp_path / 'data'))


@pytest.mark.parametrize('where', ['data_root', 'image_folder', 'config_folder'])
@pytest.mark.parametrize('force', [True, False], ids=['force', 'plain'])
def test_cv_work_dir_that_is_holds_or_lies_in_an_input_is_refused(where, force, shapes,
                                                                  tmp_path):
    data = data_copy(shapes, tmp_path)
    config = SHAPES
    work = {'data_root': data, 'image_folder': f'{data}/images/train/cv'}.get(where)
    # the data root is the work dir itself (and holds the images)
    expected = {'data_root': f'--work-dir: {data} ',
                'image_folder': f'--work-dir: {work} is inside the input folder '}.get(where)
    if where == 'config_folder':
        folder = tmp_path / 'mine'
        folder.mkdir()
        config = shutil.copy(SHAPES, folder / 'shapes.py')
        work = str(folder)
        expected = f'--work-dir: {work} holds the input {config}'
    before = snapshot(str(tmp_path))
    code, lines = run_main('cv.py', [config, '-k', '2', '--work-dir', work,
                                     *cli_options(data)] + (['--force'] if force else []))
    assert_refused(code, lines, 2, 'error: ' + expected, 'input')
    assert snapshot(str(tmp_path)) == before


def test_self_train_work_dir_holding_its_unlabelled_images_is_refused(shapes, tmp_path):
    unlabelled = shutil.copytree(f'{shapes["root"]}/images/val', str(tmp_path / 'u' / 'val'))
    before = snapshot(str(tmp_path), shapes['root'])
    code, lines = run_main('self_train.py', [
        SHAPES, SHAPES, '--unlabelled', unlabelled, '--img-suffix', '.png',
        '--work-dir', str(tmp_path / 'u'), '--force', *cli_options(shapes['root'])])
    assert_refused(code, lines, 2, f'error: --work-dir: {tmp_path}/u holds the input '
                   f'{unlabelled}')
    assert snapshot(str(tmp_path), shapes['root']) == before


def test_force_after_a_run_removes_only_its_own_outputs(shapes, tmp_path):
    """A finished run, a user's files dropped into its work dir, then --force on a
    partial run (fold 0 only): every output of the first run is gone (fold 1, the OOF
    folder), the user's files stay; an output the user replaced stops the next --force
    before anything is removed."""
    work = tmp_path / 'w'
    options = shapes_cfg_options(shapes['root'])
    run_cv(SHAPES, work, shapes['ckpt'], options)
    assert osp.isdir(work / 'fold1' / 'val_probs') and osp.isdir(work / 'oof_probs')
    (work / 'notes.txt').write_text('mine')
    (work / 'fold0' / 'mine.txt').write_text('mine too')
    # a fold folder to train again holds a user's file: refused before anything is
    # removed (training writes in place there; hostile round A, case 3)
    before = snapshot(str(work))
    with pytest.raises(OutputError, match=f'^{work}/fold0/mine.txt: was not written by '
                       'this tool; not writing over it'):
        run_cv(SHAPES, work, shapes['ckpt'], options, folds=[0], force=True)
    assert snapshot(str(work)) == before
    os.replace(work / 'fold0' / 'mine.txt', work / 'mine.txt')
    run_cv(SHAPES, work, shapes['ckpt'], options, folds=[0], force=True)
    assert not osp.exists(work / 'fold1') and not osp.exists(work / 'oof_probs')
    assert (work / 'notes.txt').read_text() == 'mine'
    assert (work / 'mine.txt').read_text() == 'mine too'
    assert osp.isfile(work / 'fold0' / 'val_probs' / 'index.json')
    # the user edits a split file the tool wrote: it is theirs now
    split = work / 'splits' / 'val_fold0.txt'
    split.write_text(split.read_text() + '# checked by hand\n')
    before = snapshot(str(work))
    with pytest.raises(OutputError, match=f'^{split}: changed since this tool wrote it'):
        run_cv(SHAPES, work, shapes['ckpt'], options, force=True)
    assert snapshot(str(work)) == before


# ------------------------------------------------------------------ hostile round A
def _finished_work_dir(root):
    """A work dir whose manifest lists ``fold0/`` and ``fold0/model.pth``."""
    work = str(root / 'w')
    with owned_work_dir(work, 'tools/cv.py') as manifest:
        os.makedirs(osp.join(work, 'fold0'))
        with open(osp.join(work, 'fold0', 'model.pth'), 'w') as f:
            f.write('weights')
        manifest.record(osp.join(work, 'fold0'))
    return work


@pytest.mark.parametrize('entry', ['../victim.txt', '/tmp/victim.txt', '', 'a/../../v'])
def test_a_manifest_entry_outside_the_work_dir_is_refused(tmp_path, entry):
    """An edited manifest must not make --force delete a file outside the work dir."""
    work = _finished_work_dir(tmp_path)
    victim = tmp_path / 'victim.txt'
    victim.write_text('precious')
    path = osp.join(work, MANIFEST)
    data = json.load(open(path))
    st = os.lstat(victim)
    data['entries'][entry] = {'type': 'file', 'size': st.st_size, 'mtime_ns': st.st_mtime_ns}
    with open(path, 'w') as f:
        json.dump(data, f)
    before = snapshot(tmp_path)
    with pytest.raises(OutputError, match='not a manifest of mmseg_ext'):
        Manifest.read(work).remove_all()
    assert snapshot(tmp_path) == before and victim.read_text() == 'precious'


def test_a_listed_folder_replaced_by_a_link_is_not_followed(tmp_path):
    """The user moved fold0 away (times kept, as ``cp -a`` does) and linked it back:
    --force must not empty the user's copy through the link."""
    work = _finished_work_dir(tmp_path)
    backup = tmp_path / 'backup_fold0'
    shutil.copytree(osp.join(work, 'fold0'), backup)  # copy2: sizes and times kept
    shutil.rmtree(osp.join(work, 'fold0'))
    os.symlink(backup, osp.join(work, 'fold0'))
    before = snapshot(tmp_path)
    manifest = Manifest.read(work)
    assert not manifest.owns(osp.join(work, 'fold0', 'model.pth'))
    with pytest.raises(OutputError, match='a symbolic link where this tool wrote a folder'):
        manifest.remove_all()
    assert snapshot(tmp_path) == before and (backup / 'model.pth').read_text() == 'weights'


@pytest.mark.parametrize('kind', ['symlink', 'hardlink'])
def test_a_lock_file_that_is_a_link_is_never_written(tmp_path, kind):
    work = _finished_work_dir(tmp_path)
    user = tmp_path / 'userfile.txt'
    user.write_text('my notes')
    lock = osp.join(work, LOCK)
    os.remove(lock)
    (os.symlink if kind == 'symlink' else os.link)(user, lock)
    with pytest.raises(OutputError, match='not the lock file this tool makes|a symbolic '
                       'link, not the lock file'):
        with owned_work_dir(work, 'tools/cv.py'):
            pass
    assert user.read_text() == 'my notes'


def test_a_huge_fold_count_is_one_line_before_anything_is_allocated(shapes, tmp_path):
    """Hostile round A, case 12: ``-k 10**20`` listed every fold number before the pool
    could refuse it (the machine ran out of memory)."""
    work = tmp_path / 'w'
    code, lines = run_main('cv.py', [SHAPES, '-k', str(10 ** 15), '--work-dir', str(work),
                                     '--no-progress', *cli_options(shapes['root'])])
    assert code == 1 and len(lines) == 1, lines
    assert f'{10 ** 15} folds need at least {10 ** 15} images' in lines[0], lines
    assert not work.exists()
    # past int64 the option itself is refused (every whole-number option)
    code, lines = run_main('cv.py', [SHAPES, '-k', str(10 ** 20), '--work-dir', str(work),
                                     '--no-progress', *cli_options(shapes['root'])])
    assert code == 2 and len(lines) == 1 and 'beyond int64' in lines[0], lines
    assert not work.exists()


def test_force_after_a_real_run_is_not_refused_for_its_own_logs(shapes, tmp_path):
    """mmengine's text log of a stage keeps receiving the run's later log lines after the
    stage was listed; a later --force must not take that for a user's edit. A new
    interpreter each run, as a user runs it (in-process, earlier tests' loggers would
    take the lines)."""
    from conftest import run_tool
    work = str(tmp_path / 'w')
    options = [o for o in cli_options(shapes['root']) if not o.startswith('log_level')]
    argv = [SHAPES, '-k', '2', '--work-dir', work, '--no-progress',
            *options, 'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
            'default_hooks.checkpoint.interval=2', 'train_dataloader.batch_size=2']
    for extra in ([], ['--force']):
        proc = run_tool('tools/cv.py', *argv[:5], *extra, *argv[5:], subprocess_run=True,
                        env={'OMP_NUM_THREADS': '1'})
        assert proc.returncode == 0, proc.stderr[-2000:]
    logs = [rel for rel in Manifest.read(work).entries if rel.endswith('.log')]
    assert logs  # the stages' logs are listed, with their final identities


# ------------------------------------------------------------------ hostile round A2/B2
def test_force_with_a_user_file_inside_a_listed_folder_removes_nothing(tmp_path):
    """A file of the user's inside a folder of the earlier run would stop the new run
    later, after the earlier outputs were gone: --force refuses before removing."""
    work = _finished_work_dir(tmp_path)
    (tmp_path / 'w' / 'fold0' / 'notes.txt').write_text('mine')
    before = snapshot(tmp_path)
    with pytest.raises(OutputError, match='fold0/notes.txt: was not written by this tool, '
                       'inside a folder this tool wrote; nothing was removed'):
        Manifest.read(work).remove_all()
    assert snapshot(tmp_path) == before


def test_force_skips_a_listed_file_deleted_since(tmp_path):
    work = _finished_work_dir(tmp_path)
    os.remove(osp.join(work, 'fold0', 'model.pth'))
    removed = Manifest.read(work).remove_all()
    assert removed == [osp.join(work, 'fold0')] and not osp.exists(osp.join(work, 'fold0'))


def test_a_manifest_that_is_a_link_is_refused(tmp_path):
    work = _finished_work_dir(tmp_path)
    other = tmp_path / 'other'
    other.mkdir()
    os.symlink(osp.join(work, MANIFEST), other / MANIFEST)
    with pytest.raises(OutputError, match='a symbolic link, not a manifest this tool wrote'):
        Manifest.read(str(other))
