"""Probability files and folders: round trip, quantisation error, atomic, no overwrite."""
import json
import os
import shutil

import numpy as np
import pytest

from mmseg_ext.io.atomic import atomic_open
from mmseg_ext.io.prob_file import dequantize, read_probs, write_probs
from mmseg_ext.io.prob_meta import ProbFileError, ProbMeta
from mmseg_ext.io.probs import ProbFolder, ProbFolderWriter
from mmseg_ext.utils.errors import MmsegExtError

CLASSES = ('a', 'b', 'c')


def meta(img_path='sub/x.png', task='multi-label'):
    return ProbMeta(img_path=img_path, ori_shape=(40, 30), classes=CLASSES, task=task)


@pytest.mark.parametrize('dtype,bound', [('uint8', 0.5 / 255), ('float16', 2.0 ** -12)])
def test_round_trip_and_quantisation_error(tmp_path, dtype, bound):
    rng = np.random.default_rng(0)
    probs = rng.random((3, 20, 15)).astype(np.float32)
    probs[:, 0, 0] = [0.0, 1.0, 0.5]
    path = str(tmp_path / 'x.npz')
    write_probs(path, probs, meta(), dtype=dtype)
    stored, m = read_probs(path)
    assert stored.dtype == np.dtype(dtype) and stored.shape == (3, 20, 15)
    assert m.img_path == 'sub/x.png' and m.ori_shape == (40, 30)
    assert m.classes == CLASSES and m.task == 'multi-label' and m.key == 'sub/x'
    err = np.abs(dequantize(stored) - probs).max()
    assert err <= bound + 1e-7
    if dtype == 'uint8':  # q = round(255 p), read back as q / 255
        assert stored[:, 0, 0].tolist() == [0, 255, 128]
    # the file is a plain npz that numpy opens without pickle
    with np.load(path, allow_pickle=False) as npz:
        assert json.loads(str(npz['meta']))['format'] == 'mmseg_ext.probs'
    assert [f for f in os.listdir(tmp_path) if 'tmp' in f] == []


def test_bad_files_name_the_file(tmp_path):
    bad = tmp_path / 'bad.npz'
    bad.write_bytes(b'not a zip')
    with pytest.raises(ProbFileError, match=f'{bad}: not a readable probability file'):
        read_probs(str(bad))
    other = tmp_path / 'other.npz'
    np.savez(other, probs=np.zeros((3, 2, 2), np.uint8), meta=np.array('{"format": "x"}'))
    with pytest.raises(ProbFileError, match=f'{other}: not a probability file'):
        read_probs(str(other))
    with pytest.raises(ProbFileError, match='not found'):
        ProbFolder(str(tmp_path / 'nope'))


def test_dense_data_array_is_named_as_such(tmp_path):
    """A ``data`` array stored dense (C, h, w) instead of the flat vector is said to be
    that, not a shape that "does not match" a class count it does match (round U, U-8);
    a shape that is no [C, h, w] and a class-count mismatch keep their own words."""
    path = str(tmp_path / 'x.npz')
    write_probs(path, np.full((3, 4, 5), 0.5, np.float32), meta())
    with np.load(path, allow_pickle=False) as npz:
        info = json.loads(str(npz['meta']))
    assert info['shape'] == [3, 4, 5]

    def resave(name, data, **changes):
        out = str(tmp_path / name)
        np.savez(out, data=data, meta=np.array(json.dumps({**info, **changes})))
        return out

    dense = resave('dense.npz', np.full((3, 4, 5), 128, np.uint8))
    with pytest.raises(ProbFileError) as exc:
        read_probs(dense)
    assert str(exc.value) == (f'{dense}: data is a 3-D array [3, 4, 5]; the format stores '
                              'the crops as one flat vector')
    flat = np.full(60, 128, np.uint8)
    two = resave('two.npz', flat, shape=[3, 20])
    with pytest.raises(ProbFileError) as exc:
        read_probs(two)
    assert str(exc.value) == f'{two}: shape [3, 20] is not three whole numbers [C, h, w]'
    four = resave('four.npz', flat, shape=[4, 4, 5])
    with pytest.raises(ProbFileError) as exc:
        read_probs(four)
    assert str(exc.value) == f'{four}: shape [4, 4, 5] does not match its 3 classes'


def write_folder(root, keys, force=False, task='multi-label', fail_after=None):
    with ProbFolderWriter(str(root), CLASSES, task, force=force) as w:
        for i, k in enumerate(keys):
            if fail_after is not None and i == fail_after:
                raise RuntimeError('boom')
            w.write(np.full((3, 4, 5), i / 10, np.float32), k, (8, 10))
        w.commit()


def test_folder_round_trip_and_index(tmp_path):
    root = tmp_path / 'probs'
    write_folder(root, ['ID1/b.png', 'ID1/a.png', 'ID2/c.jpg'])
    folder = ProbFolder(str(root))
    assert folder.keys() == ['ID1/a', 'ID1/b', 'ID2/c']
    assert folder.classes == CLASSES and folder.task == 'multi-label'
    probs, m = folder.read('ID2/c')
    assert m.img_path == 'ID2/c.jpg' and probs.shape == (3, 4, 5)
    assert np.allclose(dequantize(probs), 0.2, atol=1 / 510)
    assert folder.info('ID1/a') == ('ID1/a.png', (8, 10))
    # without the index the folder is scanned
    os.remove(root / 'index.json')
    assert ProbFolder(str(root)).keys() == ['ID1/a', 'ID1/b', 'ID2/c']


def test_folder_appears_whole_or_not_at_all(tmp_path):
    root = tmp_path / 'probs'
    with pytest.raises(RuntimeError):
        write_folder(root, ['a.png', 'b.png'], fail_after=1)
    assert not root.exists()
    assert os.listdir(tmp_path) == []


def test_no_overwrite_without_force(tmp_path):
    root = tmp_path / 'probs'
    write_folder(root, ['a.png'])
    with pytest.raises(MmsegExtError, match='probs: already exists$'):
        write_folder(root, ['b.png'])
    write_folder(root, ['b.png'], force=True)
    assert ProbFolder(str(root)).keys() == ['b']
    foreign = tmp_path / 'mine'
    foreign.mkdir()
    (foreign / 'notes.txt').write_text('keep me')
    with pytest.raises(MmsegExtError, match='did not write'):
        write_folder(foreign, ['a.png'], force=True)
    assert (foreign / 'notes.txt').read_text() == 'keep me'


def test_same_output_name_is_an_error(tmp_path):
    with pytest.raises(MmsegExtError, match='same output name'):
        write_folder(tmp_path / 'p', ['x.png', 'x.jpg'])


def test_file_checked_against_folder(tmp_path):
    root = tmp_path / 'probs'
    write_folder(root, ['a.png', 'b.png'])
    # a member replaced behind the folder's back (the writers refuse to write inside a
    # published folder, so it is written elsewhere and copied in)
    write_probs(str(tmp_path / 'b.npz'), np.full((3, 4, 5), 1 / 3),
                meta('b.png', task='multi-class'))
    shutil.copyfile(tmp_path / 'b.npz', root / 'b.npz')
    with pytest.raises(ProbFileError, match="b.npz: multi-class probabilities, but the folder's index holds multi-label"):
        ProbFolder(str(root)).read('b')


def test_atomic_open(tmp_path):
    out = tmp_path / 'x.csv'
    with atomic_open(str(out)) as f:
        f.write('one')
    with pytest.raises(MmsegExtError, match='already exists'):
        with atomic_open(str(out)) as f:
            f.write('two')
    with pytest.raises(ValueError):
        with atomic_open(str(out), force=True) as f:
            f.write('half')
            raise ValueError('interrupted')
    assert out.read_text() == 'one'
    assert os.listdir(tmp_path) == ['x.csv']


def test_background_write_errors_surface_and_nothing_is_published(tmp_path):
    from mmseg_ext.io.prob_file import CroppedProbs
    bad = CroppedProbs.from_dense(np.ones((3, 4, 5), np.float16))  # writer wants uint8
    root = tmp_path / 'probs'
    with pytest.raises(ValueError, match='cropped probabilities are float16, not uint8'):
        with ProbFolderWriter(str(root), CLASSES, 'multi-label') as w:
            w.write(np.zeros((3, 4, 5)), 'a.png', (4, 5))
            w.write(bad, 'b.png', (4, 5))   # fails in the background thread
            w.commit()
    assert not root.exists() and os.listdir(tmp_path) == []


# ------------------------------------------------------------------ round J: one fact, two copies
def _one_image_folder(tmp_path, probs, task='multi-class', dtype='uint8'):
    from probs_helpers import write_prob_folder
    return write_prob_folder(tmp_path / 'p', {'a.png': (probs, probs.shape[1:])},
                             ('bg', 'x', 'y'), task=task, dtype=dtype)


@pytest.mark.parametrize('fill', [0.9, 0.0])
def test_multi_class_probabilities_must_sum_to_one(tmp_path, fill):
    """0.9 in every class (sum 2.7) or zeros everywhere is no softmax output: its argmax
    and confidence would mean nothing. The same values are fine as multi-label."""
    from mmseg_ext.io.probs import ProbFolder
    from mmseg_ext.utils.errors import DataError
    probs = np.full((3, 4, 5), fill, np.float32)
    folder = ProbFolder(_one_image_folder(tmp_path, probs))
    total = 3 * round(fill * 255) / 255  # as stored: uint8 levels
    with pytest.raises(DataError, match=r'a.npz: multi-class probabilities sum to '
                       rf'{total:.4f} .* at pixel \(0, 0\)'):
        folder.read('a')
    ok = ProbFolder(_one_image_folder(tmp_path / 'ml', probs, task='multi-label'))
    assert ok.read('a')[0].shape == (3, 4, 5)


@pytest.mark.parametrize('dtype', ['uint8', 'float16'])
def test_a_softmax_passes_after_storing(tmp_path, dtype):
    """Rounding each of many classes to its stored level keeps a real softmax inside
    the tolerance."""
    from mmseg_ext.io.probs import ProbFolder
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 6, 7)) * 3
    softmax = np.exp(logits) / np.exp(logits).sum(0)
    folder = ProbFolder(_one_image_folder(tmp_path, softmax.astype(np.float32), dtype=dtype))
    stored, _ = folder.read('a')
    assert stored.shape == (3, 6, 7)


def test_index_and_file_must_agree_on_stored_shape_and_dtype(tmp_path):
    """The index records each image's stored shape and the folder's dtype, the file its
    own: a disagreement is refused where both are read (they were ignored)."""
    import json
    import os.path as osp

    from robustness.test_values import rewrite_npz

    from mmseg_ext.io.probs import ProbFolder
    from mmseg_ext.utils.errors import DataError
    probs = np.full((3, 4, 5), 1 / 3, np.float32)
    root = _one_image_folder(tmp_path, probs)
    index_path = osp.join(root, 'index.json')
    index = json.load(open(index_path))
    assert index['images'][0]['shape'] == [3, 4, 5]
    index['images'][0]['shape'] = [3, 2, 2]
    json.dump(index, open(index_path, 'w'))
    with pytest.raises(DataError, match=r'shape \[3, 4, 5\] \(C, h, w\), but .*index.json '
                       r'says \[3, 2, 2\]'):
        ProbFolder(root).read('a')
    root2 = _one_image_folder(tmp_path / 'd', probs)
    rewrite_npz(osp.join(root2, 'a.npz'), dtype='float16')   # meta says float16, data uint8
    with pytest.raises(DataError, match="metadata says dtype 'float16', but the values are "
                       'stored as uint8'):
        ProbFolder(root2).read('a')
    index_path = osp.join(root2, 'index.json')
    index = json.load(open(index_path))
    index['dtype'] = 'float16'
    json.dump(index, open(index_path, 'w'))
    rewrite_npz(osp.join(root2, 'a.npz'), dtype='uint8')
    with pytest.raises(DataError, match="stores uint8 values, but .*index.json says float16"):
        ProbFolder(root2).read('a')
