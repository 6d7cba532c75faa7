"""Provenance: a resumed run reuses only what proves what it is.

One finished cross-validation run with a test stage (folds "trained" by copying a
checkpoint, see cv_fakes), then, each undone after its cell:

* a fold's ``done.json`` edited to name fold 1's checkpoint, or to claim another
  training list; the checkpoint's bytes changed (same size and time): the same command
  is refused with one line naming the marker, and nothing in the work dir changes;
* a test image replaced in place by another image under the same name: the same
  command predicts it again (its probabilities are those of the new content), as it
  does for a validation image replaced in place.
"""
import hashlib
import json
import os
import os.path as osp
import shutil

import numpy as np
import pytest

from mmseg_ext.io.probs import ProbFolder
from mmseg_ext.utils.errors import DataError

from .cv_fakes import HANDBONE, handbone_world, run_cv
from .test_bad_inputs import snapshot


@pytest.fixture(scope='module')
def finished(tmp_path_factory):
    """Synthetic hand-bone data (4 patients, 64x64; 1 test patient) and a finished
    2-fold run with a submission."""
    root = tmp_path_factory.mktemp('prov')
    w = handbone_world(root)
    work = root / 'w'
    kwargs = dict(test_dir=w['test_dir'])
    run_cv(HANDBONE, work, w['ckpt'], w['options'], **kwargs)
    assert osp.isfile(work / 'submission.csv')
    return dict(data=w['data'], ckpt=w['ckpt'], options=w['options'], work=work,
                kwargs=kwargs)


def again(f, **extra):
    return run_cv(HANDBONE, f['work'], f['ckpt'], f['options'], **f['kwargs'], **extra)


class Edited:
    """Change a file for one cell and put back its bytes and times afterwards."""

    def __init__(self, path):
        self.path = str(path)

    def __enter__(self):
        self.data = open(self.path, 'rb').read()
        self.stat = os.stat(self.path)
        return self

    def __exit__(self, *exc):
        with open(self.path, 'wb') as f:
            f.write(self.data)
        os.utime(self.path, ns=(self.stat.st_atime_ns, self.stat.st_mtime_ns))


def test_done_marker_naming_another_folds_checkpoint_is_refused(finished):
    work = finished['work']
    done = work / 'fold0' / 'done.json'
    with Edited(done):
        record = json.load(open(done))
        record['checkpoint'] = str(work / 'fold1' / 'iter_1.pth')
        done.write_text(json.dumps(record))
        before = snapshot(str(work))
        with pytest.raises(DataError) as err:
            again(finished)
        assert snapshot(str(work)) == before
    assert str(err.value) == (
        f'{done}: names the checkpoint {work}/fold1/iter_1.pth, which is not in '
        f'{work}/fold0 (another stage\'s model); refusing to reuse it')


def test_done_marker_of_another_training_list_is_refused(finished):
    work = finished['work']
    done = work / 'fold1' / 'done.json'
    with Edited(done):
        record = json.load(open(done))
        everything = sorted(open(work / 'splits' / 'val_fold0.txt').read().split()
                            + open(work / 'splits' / 'val_fold1.txt').read().split())
        record['claims']['train_list'] = hashlib.sha256(
            '\n'.join(everything).encode()).hexdigest()[:16]   # "trained on every image"
        done.write_text(json.dumps(record))
        before = snapshot(str(work))
        with pytest.raises(DataError, match=f'^{done}: records train_list=.*, this stage '
                           'needs .* refusing to reuse it$'):
            again(finished)
        assert snapshot(str(work)) == before


def test_checkpoint_whose_bytes_changed_is_refused(finished):
    work = finished['work']
    ckpt = work / 'fold0' / 'iter_1.pth'
    with Edited(ckpt) as edit:
        data = bytearray(edit.data)
        data[-100] ^= 0xFF                                 # same size ...
        ckpt.write_bytes(bytes(data))
        os.utime(ckpt, ns=(edit.stat.st_atime_ns, edit.stat.st_mtime_ns))  # same time
        before = snapshot(str(work))
        with pytest.raises(DataError, match=f'^{work}/fold0/done.json: the checkpoint '
                           f'{ckpt} changed since the stage finished'):
            again(finished)
        assert snapshot(str(work)) == before


def _probs(folder, key):
    probs, _meta = ProbFolder(str(folder)).read(key)
    return np.asarray(probs)


def test_test_image_replaced_in_place_is_predicted_again(finished):
    work, data = finished['work'], finished['data']
    test_dir = f'{data}/test/DCM'
    keys = ProbFolder(str(work / 'test' / 'fold0')).keys()
    assert len(keys) == 2
    a, b = sorted(keys)
    with Edited(f'{test_dir}/{a}.png'):
        shutil.copyfile(f'{test_dir}/{b}.png', f'{test_dir}/{a}.png')  # same name, size
        assert not np.array_equal(_probs(work / 'test' / 'fold0', a),
                                  _probs(work / 'test' / 'fold0', b))
        again(finished)
        for k in (0, 1):
            # the same model on the same pixels: the new probabilities of a are b's
            assert np.array_equal(_probs(work / 'test' / f'fold{k}', a),
                                  _probs(work / 'test' / f'fold{k}', b))


def test_validation_image_replaced_in_place_is_predicted_again(finished):
    work, data = finished['work'], finished['data']
    val = open(work / 'splits' / 'val_fold0.txt').read().split()
    a, b = val[0], val[1]
    img = f'{data}/train/DCM/{a}.png'
    index = work / 'fold0' / 'val_probs' / 'index.json'
    source = json.load(open(index))['source']
    with Edited(img):
        shutil.copyfile(f'{data}/train/DCM/{b}.png', img)
        again(finished)
        assert json.load(open(index))['source']['inputs'] != source['inputs']
        assert np.array_equal(_probs(work / 'fold0' / 'val_probs', a),
                              _probs(work / 'fold0' / 'val_probs', b))
