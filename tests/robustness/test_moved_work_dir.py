"""A work dir copied (``cp -a``) or moved resumes from its own files (issue 28).

Stage records name their checkpoint by its name inside the stage folder, and
mmengine's absolute ``last_checkpoint`` pointer is pointed at the copy when the file of
that name there is one the run wrote (listed in the manifest, unchanged). Before, the
copy's records named the original folder's checkpoints and the copy was refused as
"another stage's model", or, with the original gone, trained every fold again.
"""
import json
import os
import os.path as osp
import shutil
import sys

import pytest

from mmseg_ext.io.ownership import Manifest
from mmseg_ext.training.stages import STAGE_DONE, resumable, stage_result
from mmseg_ext.utils.errors import DataError

from .cv_fakes import SHAPES, model_checkpoint, run_cv, shapes_cfg_options

#: a fold command that fails: a stage that trains again ends the run with an error
NO_TRAINING = [sys.executable, '-c', 'raise SystemExit(3)']


@pytest.fixture(scope='module')
def finished(tmp_path_factory):
    """A finished 2-fold run in ``A`` (folds "train" by copying a checkpoint)."""
    from mmseg_ext.datasets.synthetic import make_shapes_dataset
    root = tmp_path_factory.mktemp('moved')
    data = make_shapes_dataset(str(root / 'shapes'), num_train=4, num_val=2,
                               size=(32, 40), seed=1)
    ckpt = model_checkpoint(SHAPES, root / 'shapes.pth')
    options = shapes_cfg_options(data)
    summary = run_cv(SHAPES, root / 'A', ckpt, options)
    return dict(root=root, ckpt=ckpt, options=options, summary=summary)


def copy_of(finished, tmp_path, keep_original=True):
    """``cp -a A B`` (times kept); the original removed when ``keep_original`` is
    False (a move)."""
    original = finished['root'] / 'A'
    copy = tmp_path / 'B'
    shutil.copytree(original, copy, symlinks=True)
    if not keep_original:
        moved_away = tmp_path / 'A-gone'
        shutil.move(str(original), moved_away)
        finished['restore'] = (moved_away, original)
    return copy


@pytest.fixture
def restore(finished):
    yield
    if 'restore' in finished:
        src, dst = finished.pop('restore')
        shutil.move(str(src), dst)


def no_training(*_args):
    return NO_TRAINING


@pytest.mark.parametrize('keep_original', [True, False], ids=['copied', 'moved'])
def test_a_copied_finished_run_reuses_every_fold(finished, tmp_path, restore,
                                                  keep_original):
    copy = copy_of(finished, tmp_path, keep_original)
    # no fold trains again: a fold command that fails would end the run
    from mmseg_ext.workflows.cross_validation import cross_validate
    again = cross_validate(SHAPES, 2, str(copy), ranks_per_fold=1, fold_command=no_training,
                           cfg_options=finished['options'], progress=False,
                           log=lambda message: None)
    assert again.oof_before == pytest.approx(finished['summary'].oof_before)
    for k in (0, 1):
        checkpoint, _ = stage_result(str(copy / f'fold{k}'))
        assert osp.dirname(checkpoint) == str(copy / f'fold{k}')


def test_a_stage_record_names_its_checkpoint_inside_the_stage(finished):
    with open(finished['root'] / 'A' / 'fold0' / STAGE_DONE) as f:
        assert json.load(f)['checkpoint'] == 'iter_1.pth'


def test_an_unfinished_fold_of_a_copy_resumes_from_the_copy(finished, tmp_path):
    copy = copy_of(finished, tmp_path)
    os.remove(copy / 'fold0' / STAGE_DONE)  # fold 0 was still training
    pointer = copy / 'fold0' / 'last_checkpoint'
    assert pointer.read_text() == str(finished['root'] / 'A' / 'fold0' / 'iter_1.pth')
    assert resumable(str(copy / 'fold0'), Manifest.read(str(copy)))
    assert pointer.read_text() == str(copy / 'fold0' / 'iter_1.pth')
    # and the pointer written again is the tool's own file: a second look agrees
    assert resumable(str(copy / 'fold0'), Manifest.read(str(copy)))


@pytest.mark.parametrize('named', ['outside', 'other fold'])
def test_a_pointer_to_a_file_the_stage_does_not_own_is_refused(finished, tmp_path, named):
    """A pointer naming a file outside the stage that is not this stage's own file
    copied: a file elsewhere, or another fold's checkpoint (same file name, another
    stage folder)."""
    copy = copy_of(finished, tmp_path)
    pointer = copy / 'fold0' / 'last_checkpoint'
    if named == 'outside':
        target = tmp_path / 'iter_9.pth'
        shutil.copyfile(finished['ckpt'], target)
    else:
        target = copy / 'fold1' / 'iter_1.pth'
    pointer.write_text(str(target))
    manifest = Manifest.read(str(copy))
    manifest.record(str(pointer))  # even a pointer the run recorded
    with pytest.raises(DataError, match='not in .*another stage'):
        resumable(str(copy / 'fold0'), manifest)
    assert pointer.read_text() == str(target)


def test_a_legacy_absolute_record_is_read_by_content(finished, tmp_path):
    """A record that names the original's file absolutely (written before names were
    relative) proves the copy's file of that name by its fingerprint; a file changed
    since is refused."""
    copy = copy_of(finished, tmp_path)
    record = copy / 'fold1' / STAGE_DONE
    done = json.loads(record.read_text())
    done['checkpoint'] = str(finished['root'] / 'A' / 'fold1' / 'iter_1.pth')
    record.write_text(json.dumps(done))
    checkpoint, _ = stage_result(str(copy / 'fold1'))
    assert checkpoint == str(copy / 'fold1' / 'iter_1.pth')
    with open(copy / 'fold1' / 'iter_1.pth', 'ab') as f:
        f.write(b'changed')
    with pytest.raises(DataError, match='another stage'):
        stage_result(str(copy / 'fold1'))


def test_a_relative_record_that_leaves_the_stage_is_refused(finished, tmp_path):
    copy = copy_of(finished, tmp_path)
    record = copy / 'fold0' / STAGE_DONE
    done = json.loads(record.read_text())
    done['checkpoint'] = osp.join('..', 'fold1', 'iter_1.pth')
    record.write_text(json.dumps(done))
    with pytest.raises(DataError, match='not in'):
        stage_result(str(copy / 'fold0'))


def test_a_stage_folder_replaced_by_a_link_is_named_as_the_link(finished, tmp_path):
    """``cp -a A B; rm -r B/fold0; ln -s A/fold0 B/fold0``: refused, naming the link
    (before, the error blamed ``B/fold0/val_probs`` as "changed")."""
    copy = copy_of(finished, tmp_path)
    shutil.rmtree(copy / 'fold0')
    os.symlink(finished['root'] / 'A' / 'fold0', copy / 'fold0')
    before = sorted(os.listdir(finished['root'] / 'A' / 'fold0'))
    from mmseg_ext.utils.errors import OutputError
    from mmseg_ext.workflows.cross_validation import cross_validate
    with pytest.raises(OutputError) as caught:
        cross_validate(SHAPES, 2, str(copy), ranks_per_fold=1, fold_command=no_training,
                       cfg_options=finished['options'], progress=False,
                       log=lambda message: None)
    assert str(caught.value).startswith(f'{copy / "fold0"}: a symbolic link where this '
                                        'tool wrote a folder'), caught.value
    assert sorted(os.listdir(finished['root'] / 'A' / 'fold0')) == before


def test_a_copy_whose_fold_checkpoint_was_deleted_trains_the_fold_again(finished,
                                                                        tmp_path):
    """Round N's N-6: in a copy, the fold's own pointer names the original folder's
    checkpoint (still there); with the copy's checkpoint deleted, the pointer is stale
    for this stage and goes (the fold trains again), as in the moved case."""
    copy = copy_of(finished, tmp_path)
    os.remove(copy / 'fold0' / STAGE_DONE)
    os.remove(copy / 'fold0' / 'iter_1.pth')
    pointer = copy / 'fold0' / 'last_checkpoint'
    assert osp.isfile(pointer.read_text())              # the original's checkpoint
    manifest = Manifest.read(str(copy))
    assert resumable(str(copy / 'fold0'), manifest) is False
    assert not pointer.exists()
    assert osp.isfile(finished['root'] / 'A' / 'fold0' / 'iter_1.pth')  # not touched
