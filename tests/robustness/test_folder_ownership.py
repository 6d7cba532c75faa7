"""``--force`` replaces an output folder only when everything in it is the tool's.

Every tool that publishes a folder through :class:`mmseg_ext.io.staged_dir.StagedDir`
(inference, ensemble, pseudo_label, visualize, coco_to_masks) crossed with folders it
must not replace: a user's folder holding a file named like the tool's marker; an
earlier output with a user's file dropped in; an earlier output with one of its files
edited; an earlier output without a manifest (an older version's); a symbolic link to a
folder. Each asserts exit 1, the one ``error:`` line naming the path, and a file-by-file
snapshot showing nothing changed. A clean earlier output is replaced.
"""
import json
import os
import os.path as osp
import shutil

import pytest

from mmseg_ext.io.manifest_records import MANIFEST, file_identity
from mmseg_ext.io.manifest_records import MANIFEST as WORK_DIR_MANIFEST  # one name for both

from . import test_bad_inputs as harness
from .test_bad_inputs import WRITERS, assert_refused, run_main, snapshot

world = harness.world  # the harness's valid inputs (a module fixture)

#: writer id -> the file that marks its output folder
MARKERS = {'ensemble': 'index.json', 'inference': 'index.json',
           'pseudo_label': 'pseudo_labels.json', 'visualize': 'visualize.txt',
           'coco_to_masks': 'masks.json'}
FOLDER_WRITERS = [w for w in WRITERS if w[3] == 'dir']
IDS = [w[0] for w in FOLDER_WRITERS]
KEEP = ' (move it away, or choose another output folder)'


def test_every_folder_writer_is_crossed():
    assert sorted(IDS) == sorted(MARKERS)


@pytest.fixture(scope='module')
def earlier(world, tmp_path_factory):  # noqa: F811
    """writer id -> a finished output of that writer (made once; copied by the cells
    with their times, so a copy is as much the tool's as the original)."""
    made = {}

    def get(writer):
        name, tool, argv, _ = writer
        if name not in made:
            out = str(tmp_path_factory.mktemp('earlier') / name)
            status, lines = run_main(tool, argv(world, out))
            assert status == 0, lines
            made[name] = out
        return made[name]
    return get


def copy_of(source, out):
    shutil.copytree(source, out, symlinks=True)  # copy2: sizes and mtime_ns kept
    return out


def files(root):
    return sorted(osp.relpath(osp.join(d, f), root) for d, _, fs in os.walk(root)
                  for f in fs)


def run_force(writer, world, out):  # noqa: F811
    _, tool, argv, _ = writer
    return run_main(tool, argv(world, out) + ['--force'])


def assert_refused_unchanged(writer, world, tmp_path, out, line):  # noqa: F811
    before = snapshot(world['root'], str(tmp_path))
    status, lines = run_force(writer, world, out)
    assert_refused(status, lines, 1)
    assert [x for x in lines if x.startswith('error:')] == [line]
    assert '--force' not in line
    assert snapshot(world['root'], str(tmp_path)) == before


@pytest.mark.parametrize('writer', FOLDER_WRITERS, ids=IDS)
def test_user_folder_with_a_marker_is_kept(writer, world, tmp_path, fast_cpu):  # noqa: F811
    """Item 7a/d: a marker of the right name (even a real one) proves nothing."""
    out = str(tmp_path / 'mine')
    os.makedirs(out)
    with open(osp.join(out, MARKERS[writer[0]]), 'w') as f:
        f.write('{"my": "index"}\n')
    with open(osp.join(out, 'thesis.tex'), 'w') as f:
        f.write('\\chapter{mine}\n')
    assert_refused_unchanged(
        writer, world, tmp_path, out,
        f'error: {out}: holds no record of the files this tool wrote (no {MANIFEST}: an '
        f'output of an older version, or not this tool\'s; e.g. {out}/thesis.tex); not '
        'replacing it: remove it or choose another output folder')


@pytest.mark.parametrize('writer', FOLDER_WRITERS, ids=IDS)
def test_earlier_output_without_manifest_is_kept(writer, world, earlier, tmp_path,
                                                 fast_cpu):  # noqa: F811
    """A real earlier output of a version that wrote no manifest: refused (item 7b)."""
    out = copy_of(earlier(writer), str(tmp_path / 'old'))
    os.remove(osp.join(out, MANIFEST))
    first = sorted(n for n in os.listdir(out) if n != MARKERS[writer[0]])[0]
    assert_refused_unchanged(
        writer, world, tmp_path, out,
        f'error: {out}: holds no record of the files this tool wrote (no {MANIFEST}: an '
        f'output of an older version, or not this tool\'s; e.g. {out}/{first}); not '
        'replacing it: remove it or choose another output folder')


@pytest.mark.parametrize('place', ['top', 'nested'])
@pytest.mark.parametrize('writer', FOLDER_WRITERS, ids=IDS)
def test_user_file_dropped_in_is_kept(writer, place, world, earlier, tmp_path,
                                      fast_cpu):  # noqa: F811
    """Item 7c: an earlier output plus the user's notes."""
    out = copy_of(earlier(writer), str(tmp_path / 'out'))
    folders = sorted(d for d in os.listdir(out) if osp.isdir(osp.join(out, d)))
    rel = 'notes.txt' if place == 'top' or not folders else f'{folders[0]}/zz_notes.txt'
    with open(osp.join(out, rel), 'w') as f:
        f.write('my notes\n')
    assert_refused_unchanged(
        writer, world, tmp_path, out,
        f'error: {out}/{rel}: was not written by this tool; not replacing {out}{KEEP}')


@pytest.mark.parametrize('writer', FOLDER_WRITERS, ids=IDS)
def test_edited_output_file_is_kept(writer, world, earlier, tmp_path, fast_cpu):  # noqa: F811
    """A file of the earlier output the user edited since is the user's now."""
    out = copy_of(earlier(writer), str(tmp_path / 'out'))
    marker = MARKERS[writer[0]]
    with open(osp.join(out, marker), 'a') as f:
        f.write('\n')
    assert_refused_unchanged(
        writer, world, tmp_path, out,
        f'error: {out}/{marker}: changed since this tool wrote it; not replacing '
        f'{out}{KEEP}')


@pytest.mark.parametrize('writer', FOLDER_WRITERS, ids=IDS)
def test_symlinked_output_is_refused_as_typed(writer, world, tmp_path, monkeypatch,
                                              fast_cpu):  # noqa: F811
    """Item 16: a link to a folder is never written through; the line names the path as
    typed, without the --force hint."""
    target = tmp_path / 'real'
    target.mkdir()
    (target / 'keep.txt').write_text('mine')
    os.symlink('real', tmp_path / 'pl')
    monkeypatch.chdir(tmp_path)
    assert_refused_unchanged(
        writer, world, tmp_path, 'pl',
        'error: pl: is a symbolic link (to real), not a folder; an output folder is not '
        'written through a link: remove the link or choose another output folder')


@pytest.mark.parametrize('writer', FOLDER_WRITERS, ids=IDS)
def test_clean_earlier_output_is_replaced(writer, world, tmp_path, fast_cpu):  # noqa: F811
    """The tool's own untouched output is replaced by --force, and the new one lists
    every file it holds with its identity."""
    _, tool, argv, _ = writer
    out = str(tmp_path / 'out')
    status, lines = run_main(tool, argv(world, out))
    assert status == 0, lines
    names = files(out)
    old_inodes = {os.lstat(osp.join(out, n)).st_ino for n in names}
    status, lines = run_force(writer, world, out)
    assert status == 0, lines
    assert files(out) == names and MANIFEST in names
    assert not {os.lstat(osp.join(out, n)).st_ino for n in names} & old_inodes
    with open(osp.join(out, MANIFEST)) as f:
        listed = json.load(f)['entries']
    assert {r for r, e in listed.items() if e['type'] == 'file'} == set(names) - {MANIFEST}
    for rel, entry in listed.items():
        if entry['type'] == 'file':
            assert file_identity(osp.join(out, rel)) == entry, rel
    assert [n for n in os.listdir(tmp_path) if n.startswith('.')] == []


def test_manifest_is_the_work_dir_format(tmp_path):
    """One name and one format: a work-directory tool sees a published folder as
    another tool's, not as a folder of unlisted files."""
    from mmseg_ext.io.ownership import Manifest
    from mmseg_ext.io.staged_dir import StagedDir
    assert MANIFEST == WORK_DIR_MANIFEST
    out = str(tmp_path / 'o')
    with StagedDir(out) as staged:
        with open(staged.file('sub/a.txt'), 'w') as f:
            f.write('a')
        staged.commit()
    manifest = Manifest.read(out)
    assert manifest.entries == {'sub': {'type': 'dir'},
                                'sub/a.txt': file_identity(osp.join(out, 'sub/a.txt'))}
    assert manifest.foreign(osp.join(out, 'sub')) is None


def test_a_file_created_while_the_commit_runs_is_never_deleted(tmp_path, monkeypatch):
    """Hostile round B2: a user file created in the output between the ownership check
    and the move aside went with the old folder (exit 0). The old folder is checked again
    once it is aside; then it is put back and the run refused."""
    import mmseg_ext.io.staged_dir as staged_dir
    from mmseg_ext.utils.errors import OutputError
    out = str(tmp_path / 'out')
    for _ in range(2):  # an earlier output, then the run that races the user
        with staged_dir.StagedDir(out, force=True, marker='index.json') as staged:
            with open(staged.file('index.json'), 'w') as f:
                f.write('{}')
            if _ == 1:
                real = staged_dir.StagedDir._move_aside

                def move_aside_after_the_user(self, real=real):
                    with open(osp.join(out, 'my_notes.txt'), 'w') as f:
                        f.write('mine')  # lands after the first check
                    return real(self)

                monkeypatch.setattr(staged_dir.StagedDir, '_move_aside',
                                    move_aside_after_the_user)
                with pytest.raises(OutputError, match='my_notes.txt: was not written by '
                                   'this tool'):
                    staged.commit()
            else:
                staged.commit()
    assert open(osp.join(out, 'my_notes.txt')).read() == 'mine'
    assert sorted(os.listdir(out)) == ['.mmseg_ext_manifest.json', 'index.json',
                                       'my_notes.txt']
    assert [n for n in os.listdir(tmp_path) if n.startswith('.')] == []


def test_an_output_folder_of_a_cv_run_is_replaced_only_by_that_run(tmp_path):
    """Hostile round A2: ``inference --force`` into ``W/oof_probs`` of a cv run replaced
    it (the folder's own manifest names its format, not its owner). A folder that a work
    dir's manifest lists is replaced only by the run that holds that work dir's lock."""
    import mmseg_ext.io.staged_dir as staged_dir
    from mmseg_ext.io.ownership import owned_work_dir
    from mmseg_ext.utils.errors import OutputError
    work = str(tmp_path / 'w')
    probs = osp.join(work, 'oof_probs')

    def publish(text):
        with staged_dir.StagedDir(probs, force=True, marker='index.json') as staged:
            with open(staged.file('index.json'), 'w') as f:
                f.write(text)
            staged.commit()

    with owned_work_dir(work, 'tools/cv.py') as manifest:
        publish('{"run": 1}')
        manifest.record(probs)
        publish('{"run": 2}')  # the run itself may replace it
        manifest.record(probs)
    before = snapshot(str(tmp_path))
    with pytest.raises(OutputError, match='an output of the multi-stage run in'):
        publish('{"other": 1}')  # another tool, not holding the lock
    assert snapshot(str(tmp_path)) == before
    assert open(osp.join(probs, 'index.json')).read() == '{"run": 2}'
    publish_elsewhere = osp.join(work, 'mine')  # a new folder in the work dir is fine
    with staged_dir.StagedDir(publish_elsewhere, marker='index.json') as staged:
        with open(staged.file('index.json'), 'w') as f:
            f.write('{}')
        staged.commit()
