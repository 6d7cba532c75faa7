"""Round AI of bad inputs (issue 28): pseudo-labels read by a config's own data set
paired with other images, and a stop signal while a lock is being taken or dropped."""
import os
import os.path as osp
import signal

import pytest

from mmseg_ext.utils.errors import DataError

from .test_round_ag_cases import _probs, _split


def _pseudo_dataset(pseudo_dir, img_dir):
    """The pseudo-labelled member of the demo's pseudo-label config, built."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS
    init_default_scope('mmseg')
    return DATASETS.build(dict(
        type='HandBoneDataset', data_root=pseudo_dir, ann_file='accepted.txt',
        data_prefix=dict(img_path=img_dir, seg_map_path='outputs_json'),
        metainfo=dict(classes=('Ulna', 'Radius')), pipeline=[]))


def test_a_config_reading_pseudo_labels_trains_only_on_their_images(tmp_path):
    """AI-1: round AH's check covered ``cv.py --pseudo-labels`` only; a config whose
    training set reads the pseudo-label folder itself (the demo's ``ConcatDataset``),
    through ``train.py`` or ``cv.py``, trained on other images of the same names with
    the polygons of the pseudo-labelled ones, exit 0. Every training checks the data
    sets it reads before the first iteration (``PseudoLabelImageHook``, registered by
    the tools' runner): other images are refused naming one, the right ones pass, and
    so do images replaced after an older report that recorded no digest."""
    from mmengine.dataset import ConcatDataset, RepeatDataset

    from mmseg_ext.training.pseudo_label_images import check_dataset_pseudo_images
    from mmseg_ext.workflows.pseudo_label import pseudo_label_folder
    test, other = _split(tmp_path / 'test', 10), _split(tmp_path / 'other', 200)
    pl = str(tmp_path / 'pl')
    pseudo_label_folder(_probs(tmp_path / 'p', test), pl, pixel_conf=0.51, progress=False)
    right, wrong = _pseudo_dataset(pl, test), _pseudo_dataset(pl, other)
    check_dataset_pseudo_images(right)
    for dataset in (wrong, ConcatDataset([right, wrong]),
                    RepeatDataset(wrong, times=2)):
        with pytest.raises(DataError, match='other/a.png: not the image the '
                                            'pseudo-label .*pl/outputs_json/a.json was '
                                            'made from'):
            check_dataset_pseudo_images(dataset)
    old = str(tmp_path / 'pl_old')
    pseudo_label_folder(_probs(tmp_path / 'p_old', test, with_sha=False), old,
                        pixel_conf=0.51, progress=False)
    check_dataset_pseudo_images(_pseudo_dataset(old, other))
    # the tools' runners register the hook (tests/training/test_tool_runner_hooks.py)


def _interrupt_once(monkeypatch):
    """``os.ftruncate`` (called while a lock is taken, after its ``flock``) sends this
    process a SIGINT, once."""
    real = os.ftruncate

    def interrupting(fd, length):
        monkeypatch.setattr(os, 'ftruncate', real)
        signal.raise_signal(signal.SIGINT)
        return real(fd, length)
    monkeypatch.setattr(os, 'ftruncate', interrupting)


def test_a_signal_while_an_output_lock_is_taken_leaves_no_lock_behind(tmp_path,
                                                                      monkeypatch):
    """AI-2: a SIGINT at the end of a demo rerun, between the ``flock`` of an output's
    lock and its entry in the process's table, left the lock held by a descriptor no one
    knew; the clean-up the signal started then refused itself as "another run is writing
    this output now", and the work dir stayed blocked. The signal now arrives once the
    lock is taken and known, and the lock is dropped on the way out."""
    from mmseg_ext.io.output_lock import _HELD, output_lock
    out = str(tmp_path / 'out')
    _interrupt_once(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        with output_lock(out):
            pass
    assert not _HELD
    with output_lock(out):  # free: no descriptor of this process holds it
        pass


def test_a_signal_while_a_work_dir_lock_is_taken_leaves_no_lock_behind(tmp_path,
                                                                       monkeypatch):
    """AI-2's shape in the work dir's lock: the same signal left the work dir "in use
    by another run" for the rest of the process."""
    from mmseg_ext.io.work_dir_lock import HELD_WORK_DIRS, WorkDirLock
    work = str(tmp_path / 'w')
    _interrupt_once(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        with WorkDirLock(work):
            pass
    assert osp.abspath(work) not in HELD_WORK_DIRS
    with WorkDirLock(work):
        pass
