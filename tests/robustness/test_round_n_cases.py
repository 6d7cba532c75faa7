"""Round N of hostile inputs (issue 28), each case by its class:

* thresholds on probabilities made from a calibrated fold vote (an ensemble of two
  votes, or of a vote and a fold model): the source is searched at any depth;
* a refused run removes only what it wrote: its log folder's own files, the empty
  parent folders it made, and (cv, self-training) the outputs of a work dir it made
  before any stage finished;
* a demo rerun records only its own outputs, and recovers by itself from a rerun that
  was killed outright;
* a copied cv work dir whose fold checkpoint was deleted trains the fold again;
* a dangling symbolic link as an output folder is named as one;
* a signal during interpreter teardown never ends a finished tool silently.
"""
import os
import os.path as osp
import sys

import numpy as np
import pytest

TESTS = osp.dirname(osp.dirname(osp.abspath(__file__)))
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)

from robustness.test_bad_inputs import assert_refused, run_main, snapshot  # noqa: E402
from robustness.test_round_m_cases import CLASSES, _folder, world  # noqa: E402,F401


@pytest.mark.parametrize('partner', ['other vote', 'fold model'])
def test_thresholds_are_refused_on_what_a_calibrated_vote_went_into(world, tmp_path,  # noqa: F811
                                                                    partner):
    """N-4: an ensemble of two fold votes (or of a vote and one of its own fold models)
    holds calibrated probabilities; thresholds on it apply the fold thresholds twice."""
    source = dict(ensemble=[], fold_thresholds=[{c: 0.6 for c in CLASSES}]) \
        if partner == 'other vote' else None
    other = _folder(tmp_path / 'other', 0.7, source=source)
    mixed = str(tmp_path / 'mixed')
    code, lines = run_main('ensemble.py', [world['calibrated'], other, '--out-dir', mixed,
                                           '--no-progress'])
    assert code == 0, lines
    before = snapshot(str(tmp_path))
    for extra in (['--thresholds', world['thr']], ['--threshold', '0.7']):
        code, lines = run_main('make_submission.py', [mixed, '--format', 'handbone',
                                                      '--out', f'{tmp_path}/s.csv',
                                                      '--no-progress', *extra])
        assert_refused(code, lines, 1, mixed, 'holds a calibrated fold vote')
    code, lines = run_main('pseudo_label.py', [mixed, '--out-dir', f'{tmp_path}/pl',
                                               '--thresholds', world['thr'],
                                               '--no-progress'])
    assert_refused(code, lines, 1, mixed, 'holds a calibrated fold vote')
    assert snapshot(str(tmp_path)) == before
    code, lines = run_main('make_submission.py', [mixed, '--format', 'handbone', '--out',
                                                  f'{tmp_path}/s.csv', '--no-progress'])
    assert code == 0, lines                            # decided at 0.5: accepted


def test_a_plain_ensemble_still_takes_thresholds(tmp_path):
    a = _folder(tmp_path / 'a', 0.8, source=dict(note=[{'x': 1}]))
    b = _folder(tmp_path / 'b', 0.6)
    out = str(tmp_path / 'e')
    code, lines = run_main('ensemble.py', [a, b, '--out-dir', out, '--no-progress'])
    assert code == 0, lines
    code, lines = run_main('make_submission.py', [out, '--format', 'handbone', '--out',
                                                  f'{tmp_path}/s.csv', '--threshold',
                                                  '0.7', '--no-progress'])
    assert code == 0, lines


def test_a_dangling_link_as_a_work_dir_is_named_as_one(tmp_path, shapes_root):
    """N-9: it was called "a file, not a folder"."""
    from conftest import CONFIG, data_options, run_tool
    link = tmp_path / 'work'
    os.symlink(tmp_path / 'gone', link)
    proc = run_tool('tools/train.py', CONFIG, '--work-dir', str(link),
                    *data_options(shapes_root, 1))
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 1 and last.startswith(f'error: {link}'), proc.stderr[-1500:]
    assert f'a symbolic link to {tmp_path / "gone"}, which does not exist' in last, last
    assert not (tmp_path / 'gone').exists() and osp.islink(link)


def _handbone(tmp_path, corrupt=True):
    """Tiny synthetic hand bones (64x64); one annotation JSON cut short."""
    from conftest import run_tool
    data = tmp_path / 'data'
    proc = run_tool('tools/make_synthetic_handbone.py', '--out', str(data), '--patients',
                    '4', '--size', '64x64', '--test-patients', '1')
    assert proc.returncode == 0, proc.stderr
    if corrupt:
        first = sorted((data / 'train' / 'outputs_json').rglob('*.json'))[0]
        first.write_text('{"annotations": [\n')
    return data


HANDBONE = ('custom_configs/demo/unet-s5-tiny_multilabel_1xb4-1500i_handbone-synth-'
            '128x128.py')


def _roots(data):
    return [f'{s}_dataloader.dataset.data_root={data}/train'
            for s in ('train', 'val', 'test')]


def test_a_refused_run_leaves_neither_its_work_dir_nor_the_parents_it_made(tmp_path):
    """N-7 and N-8: train.py and cv.py refused on a malformed annotation remove the work
    dir they made (cv: with its splits and cv.json) and the empty folders they made
    above it; a parent that existed stays."""
    from conftest import run_tool
    data = _handbone(tmp_path)
    (tmp_path / 'kept').mkdir()
    options = ['train_cfg.max_iters=2', 'train_cfg.val_interval=2',
               'default_hooks.checkpoint.interval=2', 'train_dataloader.batch_size=2']
    runs = {'train': ('tools/train.py', HANDBONE, '--work-dir',
                      str(tmp_path / 'kept' / 'a' / 'b' / 'w')),
            'cv': ('tools/cv.py', HANDBONE, '-k', '2', '--no-progress', '--work-dir',
                   str(tmp_path / 'kept' / 'c' / 'w'))}
    for name, argv in runs.items():
        proc = run_tool(*argv, '--cfg-options', *_roots(data), *options)
        last = proc.stderr.strip().splitlines()[-1]
        assert proc.returncode == 1 and 'malformed JSON' in last, (name, proc.stderr[-1500:])
    assert os.listdir(tmp_path / 'kept') == []


def test_a_log_folder_holding_a_file_of_someone_else_keeps_the_work_dir(tmp_path):
    """N-2: the refused run's log folder is removed only when it holds nothing but what
    mmengine writes there; a file put there during the run keeps everything."""
    from mmseg_ext.io.work_dir_lock import LOCK
    from mmseg_ext.training.tool_runner import remove_refused_work_dir
    stamp = '20261206_120000'

    def made(extra=None):
        work = tmp_path / f'w{len(os.listdir(tmp_path))}'
        (work / stamp / 'vis_data').mkdir(parents=True)
        for rel in (LOCK, 'cfg.py', f'{stamp}/{stamp}.log', f'{stamp}/vis_data/config.py',
                    f'{stamp}/vis_data/scalars.json', f'{stamp}/vis_data/{stamp}.json'):
            (work / rel).write_text('x')
        if extra:
            (work / extra).write_text('mine')
        return work

    own = {LOCK, 'cfg.py', stamp}
    for extra in (f'{stamp}/mine.txt', f'{stamp}/vis_data/mine2.txt'):
        work = made(extra)
        before = snapshot(str(work))
        assert remove_refused_work_dir(str(work), own, stamp) is False
        assert snapshot(str(work)) == before
    work = made()
    assert remove_refused_work_dir(str(work), own, stamp) is True and not work.exists()


def test_a_file_put_in_a_fold_folder_during_training_stays_the_user_s(tmp_path):
    """N-1's class in cv and self-training: a stage lists only the names a training
    writes in its folder (``training.stages.is_training_output``); a file someone puts
    there while it trains is not listed, so ``--force`` refuses it, named, instead of
    removing it."""
    from mmseg_ext.datasets.synthetic import make_shapes_dataset
    from mmseg_ext.io.ownership import Manifest
    from mmseg_ext.utils.errors import OutputError
    from mmseg_ext.workflows.cross_validation import cross_validate
    from robustness.cv_fakes import FAKE_TRAIN, SHAPES, model_checkpoint, shapes_cfg_options
    data = make_shapes_dataset(str(tmp_path / 'shapes'), num_train=4, num_val=2,
                               size=(32, 40), seed=1)
    ckpt = model_checkpoint(SHAPES, tmp_path / 'shapes.pth')
    user_too = FAKE_TRAIN + ("open(os.path.join(work, 'notes.txt'), 'w').write('mine')\n")

    def command(config, work_dir, ranks, resume):
        return [sys.executable, '-c', user_too, ckpt, work_dir]
    work = tmp_path / 'cv'
    cross_validate(SHAPES, 2, str(work), ranks_per_fold=1, fold_command=command,
                   cfg_options=shapes_cfg_options(data), progress=False,
                   log=lambda message: None)
    listed = Manifest.read(str(work)).entries
    assert 'fold0/iter_1.pth' in listed and 'fold0/20260101_000000/vis_data/scalars.json' in listed
    assert 'fold0/notes.txt' not in listed
    with pytest.raises(OutputError, match='fold0/notes.txt: was not written by this tool'):
        cross_validate(SHAPES, 2, str(work), ranks_per_fold=1, fold_command=command,
                       cfg_options=shapes_cfg_options(data), progress=False, force=True,
                       log=lambda message: None)
    assert (work / 'fold0' / 'notes.txt').read_text() == 'mine'


def test_a_refused_cv_keeps_a_file_of_someone_else_in_a_stage_log_folder(tmp_path):
    """Round O's O-4: cv refused in a work dir it made removes its outputs, but a file
    someone put in a fold's log folder is not among them (only mmengine's files of a
    log folder are listed), so the folder and the work dir stay, the file with them."""
    from mmseg_ext.datasets.synthetic import make_shapes_dataset
    from mmseg_ext.utils.errors import DataError
    from mmseg_ext.workflows.cross_validation import cross_validate
    from robustness.cv_fakes import SHAPES, shapes_cfg_options
    data = make_shapes_dataset(str(tmp_path / 'shapes'), num_train=4, num_val=2,
                               size=(32, 40), seed=1)
    # a "training" that logs, gets a file of the user's in its log folder, and saves
    # no checkpoint: cv refuses the fold
    script = ("import os, sys\nlog = os.path.join(sys.argv[1], '20260101_000000')\n"
              "os.makedirs(os.path.join(log, 'vis_data'))\n"
              "open(os.path.join(log, 'vis_data', 'scalars.json'), 'w').write('{}')\n"
              "open(os.path.join(log, 'mine.txt'), 'w').write('mine')\n")

    def command(config, work_dir, ranks, resume):
        return [sys.executable, '-c', script, work_dir]
    work = tmp_path / 'new' / 'cv'
    with pytest.raises(DataError, match='no last_checkpoint'):
        cross_validate(SHAPES, 2, str(work), ranks_per_fold=1, fold_command=command,
                       cfg_options=shapes_cfg_options(data), progress=False,
                       log=lambda message: None)
    assert (work / 'fold0' / '20260101_000000' / 'mine.txt').read_text() == 'mine'


@pytest.mark.parametrize('tool', ['demo', 'cv'])
def test_a_published_folder_is_never_a_work_dir(tmp_path, shapes_root, tool):
    """Round P's P-4 and P-5: a probability folder a tool published (its manifest
    names that same tool) was taken by that tool for an earlier work dir, and by
    train.py for any work dir; each wrote among its files."""
    from conftest import CONFIG, data_options, run_tool

    from mmseg_ext.io.ownership import Manifest
    from mmseg_ext.io.probs import ProbFolderWriter
    from mmseg_ext.utils.errors import OutputError
    folder = str(tmp_path / 'probs')
    with ProbFolderWriter(folder, CLASSES, 'multi-label', dtype='uint8', tool=tool) as w:
        w.write(np.zeros((2, 8, 8), np.float32), 'ID1/a.png', (8, 8))
        w.commit()
    before = snapshot(folder)
    with pytest.raises(OutputError, match=f'^{folder}: a published output folder of '
                       f'{tool}'):
        Manifest.check_claimable(folder, tool)
    if tool == 'demo':
        code, lines = run_main('demo.py', ['--work-dir', folder, '--max-iters', '1'])
        assert_refused(code, lines, 1, 'a published output folder of demo')
    proc = run_tool('tools/train.py', CONFIG, '--work-dir', folder,
                    *data_options(shapes_root, 1))
    assert proc.returncode == 1 and proc.stderr.strip().splitlines()[-1] == (
        f'error: {folder}: a published output folder of {tool} (a probability folder, '
        'drawings, labels), not a work directory; choose another folder'), proc.stderr
    assert snapshot(folder) == before


def test_training_never_writes_inside_another_tool_s_folder(tmp_path, shapes_root):
    """Round Q's Q-1 and Q-2: train.py into another tool's work dir (the demo's, a cv
    fold inside cv's) overwrote that tool's checkpoint, pointer and records; into a
    new folder inside a published folder it wrote among its files. The work dir and
    every folder above it are checked."""
    from conftest import CONFIG, data_options, run_tool

    from mmseg_ext.io.ownership import Manifest
    from mmseg_ext.io.probs import ProbFolderWriter
    cv = tmp_path / 'cv'
    cv.mkdir()
    Manifest.claim(str(cv), 'cv')
    (cv / 'fold0').mkdir()
    probs = str(tmp_path / 'probs')
    with ProbFolderWriter(probs, CLASSES, 'multi-label', dtype='uint8', tool='demo') as w:
        w.write(np.zeros((2, 8, 8), np.float32), 'ID1/a.png', (8, 8))
        w.commit()
    cases = {str(cv): f'{cv}: the work dir of cv',
             str(cv / 'fold0'): f'{cv / "fold0"}: lies inside {cv}, the work dir of cv',
             f'{probs}/new': f'{probs}/new: lies inside {probs}, a published output '
                             'folder of demo'}
    before = snapshot(str(tmp_path))
    for work, words in cases.items():
        proc = run_tool('tools/train.py', CONFIG, '--work-dir', work,
                        *data_options(shapes_root, 1))
        last = proc.stderr.strip().splitlines()[-1]
        assert proc.returncode == 1 and last.startswith(f'error: {words}'), last
    assert snapshot(str(tmp_path)) == before


def test_notes_of_an_error_and_of_the_errors_it_replaced_are_printed(tmp_path):
    """Round Q's Q-3: what a failed or interrupted rerun could not put back travels as
    a note on the error; the note of an error that another replaced on its way out
    (an interruption a library turned into another error) is printed too."""
    import subprocess
    script = tmp_path / 'notes.py'
    script.write_text(
        'import sys\n'
        f'sys.path.insert(0, {osp.dirname(TESTS)!r})\n'
        'from mmseg_ext.utils.cli import cli_main\n'
        'from mmseg_ext.utils.errors import DataError\n'
        '@cli_main\n'
        'def main():\n'
        '    try:\n'
        '        exc = KeyboardInterrupt()\n'
        '        exc.add_note("W/data/mine.txt is in the way")\n'
        '        raise exc\n'
        '    except KeyboardInterrupt:\n'
        '        if sys.argv[1] == "replaced":\n'
        '            raise DataError("another error")\n'
        '        raise\n'
        'main()\n')
    for mode, code, first in (('plain', 130, 'error: interrupted'),
                              ('replaced', 1, 'error: another error')):
        proc = subprocess.run([sys.executable, str(script), mode], capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode == code, proc.stderr
        assert proc.stderr.strip().splitlines() == [
            first, 'note: W/data/mine.txt is in the way'], proc.stderr


def test_a_link_into_another_tool_s_folder_is_that_folder(tmp_path, shapes_root):
    """Round R's R-1: a work dir given as a symbolic link into cv's fold0 (or into a
    published folder) was judged by the link's own parents, and training replaced cv's
    checkpoint."""
    from conftest import CONFIG, data_options, run_tool

    from mmseg_ext.io.ownership import Manifest
    cv = tmp_path / 'cv'
    cv.mkdir()
    Manifest.claim(str(cv), 'cv')
    (cv / 'fold0').mkdir()
    (cv / 'fold0' / 'iter_2.pth').write_bytes(b'cv model')
    link = tmp_path / 'mine'
    os.symlink(cv / 'fold0', link)
    proc = run_tool('tools/train.py', CONFIG, '--work-dir', str(link),
                    *data_options(shapes_root, 1))
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 1 and last.startswith(
        f'error: {link}: leads into {cv}, the work dir of cv'), last
    assert sorted(os.listdir(cv / 'fold0')) == ['iter_2.pth']


def test_held_work_dirs_reach_a_subprocess_whatever_their_names(tmp_path, monkeypatch):
    """R-2: the held work dirs were joined with ':' and a cv work dir named with ':'
    was cut in two, so its own fold training was refused."""
    from mmseg_ext.io import ownership
    from mmseg_ext.io.work_dir_lock import HELD_WORK_DIRS
    odd = str(tmp_path / 'run:1 two')
    monkeypatch.setattr(ownership, 'HELD_WORK_DIRS', {odd})
    env = ownership.held_work_dirs_env()
    monkeypatch.setenv(ownership.HELD_ENV, env[ownership.HELD_ENV])
    assert ownership.inherited_held_work_dirs() == [odd]
    os.makedirs(odd)
    ownership.Manifest.claim(odd, 'cv')
    monkeypatch.setattr(ownership, 'HELD_WORK_DIRS', set(HELD_WORK_DIRS))
    assert ownership.foreign_place_problem(osp.join(odd, 'fold0')) == ''
    monkeypatch.delenv(ownership.HELD_ENV)
    assert 'the work dir of cv' in ownership.foreign_place_problem(osp.join(odd, 'fold0'))


def test_a_work_dir_tool_never_starts_inside_a_published_folder(tmp_path):
    """R-4: cv (and the demo, self-training: every owned work dir) inside a published
    folder wrote its manifest, splits and configs there before a fold failed."""
    from mmseg_ext.io.ownership import owned_work_dir
    from mmseg_ext.io.probs import ProbFolderWriter
    from mmseg_ext.utils.errors import OutputError
    probs = str(tmp_path / 'probs')
    with ProbFolderWriter(probs, CLASSES, 'multi-label', dtype='uint8', tool='demo') as w:
        w.write(np.zeros((2, 8, 8), np.float32), 'ID1/a.png', (8, 8))
        w.commit()
    before = snapshot(probs)
    with pytest.raises(OutputError, match=f'^{probs}/newcv: lies inside {probs}, a '
                       'published output folder of demo'):
        with owned_work_dir(f'{probs}/newcv', 'cv'):
            pass
    assert snapshot(probs) == before


def test_no_output_goes_inside_a_published_folder(tmp_path):
    """Round R's R-3: inference, ensemble, kfold, export (any output) into a new
    folder inside another tool's published folder wrote among its files; every
    writer creates its parent through one helper, which refuses it."""
    from mmseg_ext.io.atomic import atomic_write_text
    from mmseg_ext.io.probs import ProbFolderWriter
    from mmseg_ext.io.staged_dir import StagedDir
    from mmseg_ext.utils.errors import OutputError
    probs = str(tmp_path / 'probs')
    with ProbFolderWriter(probs, CLASSES, 'multi-label', dtype='uint8', tool='demo') as w:
        w.write(np.zeros((2, 8, 8), np.float32), 'ID1/a.png', (8, 8))
        w.commit()
    link = tmp_path / 'into'
    os.symlink(probs, link)
    before = snapshot(probs)
    for out, folder in ((f'{probs}/new/x.csv', probs), (f'{probs}/x.csv', probs),
                        (f'{link}/y.csv', link)):
        with pytest.raises(OutputError, match=f'^{out}: lies inside {folder}, a published '
                           'output folder of demo'):
            atomic_write_text(out, 'x')
    with pytest.raises(OutputError, match='a published output folder of demo'):
        with StagedDir(f'{probs}/sub') as staged:
            staged.commit()
    assert snapshot(probs) == before


def test_a_damaged_manifest_above_an_output_is_refused_too(tmp_path):
    """Round S's S-2: a published folder whose manifest was cut short was taken for a
    plain folder, and outputs went inside it."""
    from mmseg_ext.io.atomic import atomic_write_text
    from mmseg_ext.utils.errors import OutputError
    folder = tmp_path / 'probs'
    folder.mkdir()
    (folder / '.mmseg_ext_manifest.json').write_text('{"tool": "demo", "entr')
    with pytest.raises(OutputError, match=f'lies inside {folder}, whose '
                       '.mmseg_ext_manifest.json cannot be read'):
        atomic_write_text(str(folder / 'new' / 'x.csv'), 'x')
    assert sorted(os.listdir(folder)) == ['.mmseg_ext_manifest.json']


def test_a_fold_trained_in_another_process_says_why_it_failed(tmp_path):
    """S-3: the fold's own error line is part of cv's error, not only in its log."""
    from mmseg_ext.utils.errors import StageError
    from mmseg_ext.workflows.cross_validation.commands import FoldCommand, run_commands
    log = str(tmp_path / 'train.log')
    argv = [sys.executable, '-c', 'import sys; print("error: x.json: malformed JSON", '
            'file=sys.stderr); sys.exit(1)']
    with pytest.raises(StageError, match=r'^fold 0: training failed \(exit status 1\): '
                       rf'x.json: malformed JSON; its log is {log}$'):
        run_commands([FoldCommand(0, argv, log)], 0, lambda message: None)
