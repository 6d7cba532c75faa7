"""Round K of hostile inputs (issue 28), each case by its class:

* class indices that do not fit a label map: a multi-class folder with 256 or more
  classes wrote class 255 as the ignore index and class 299 as 43 (``299 % 256``) into
  pseudo-label PNGs with exit 0; every argmax label map now has a dtype that holds its
  classes (:func:`mmseg_ext.inference.probmaps.label_dtype`), and every ``uint8`` label
  PNG writer checks the capacity (:func:`mmseg_ext.io.images.check_label_capacity`);
* range bounds printed in ``%g`` (``[0, 4.29497e+09]``, which reads as larger than the
  refused 4294967296): whole bounds are printed exactly, in errors and in ``--help``;
* an output place that cannot be one: a device (``/dev/full`` was called "not written
  by this tool; move it away") or ``-`` (which wrote a file named ``-``). The one CLI
  layer refuses both for every output option of every tool.
"""
import os.path as osp
import sys

import cv2
import numpy as np
import pytest

TESTS = osp.dirname(osp.dirname(osp.abspath(__file__)))
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)

from probs_helpers import write_images, write_prob_folder  # noqa: E402

from robustness.test_bad_inputs import assert_refused, run_main, snapshot  # noqa: E402


def _many_classes(root, n, winner):
    """A multi-class folder of ``n`` classes, one 4x4 image where class ``winner`` has
    p = 0.5 and the others share the rest (the probabilities sum to 1)."""
    p = np.full((n, 4, 4), 0.5 / (n - 1), np.float32)
    p[winner] = 0.5
    return write_prob_folder(root, {'ID1/a.png': (p, (4, 4))},
                             ['Background'] + [f'c{i}' for i in range(1, n)],
                             task='multi-class', dtype='float16')


@pytest.mark.parametrize('n', [256, 300])
def test_pseudo_label_pngs_refuse_classes_a_uint8_map_cannot_hold(tmp_path, n):
    probs = _many_classes(tmp_path / 'probs', n, n - 1)
    before = snapshot(str(tmp_path))
    code, lines = run_main('pseudo_label.py', [probs, '--out-dir', tmp_path / 'out',
                                               '--format', 'label-png', '--pixel-conf',
                                               '0.1', '--no-progress'])
    assert_refused(code, lines, 1, probs, f'{n} classes', 'at most 255')
    assert snapshot(str(tmp_path)) == before and not osp.exists(tmp_path / 'out')


def test_pseudo_label_png_holds_the_last_class_that_fits(tmp_path):
    """255 classes: class 254 is the largest index below the ignore value."""
    probs = _many_classes(tmp_path / 'probs', 255, 254)
    code, _ = run_main('pseudo_label.py', [probs, '--out-dir', tmp_path / 'out',
                                           '--format', 'label-png', '--pixel-conf', '0.1',
                                           '--no-progress'])
    assert code == 0
    label = cv2.imread(str(tmp_path / 'out' / 'ID1' / 'a.png'), cv2.IMREAD_UNCHANGED)
    assert label.dtype == np.uint8 and (label == 254).all()


@pytest.mark.parametrize('n,winner,dtype', [(256, 255, np.uint8), (300, 299, np.uint16),
                                            (2, 1, np.uint8)])
def test_argmax_label_maps_never_wrap(n, winner, dtype):
    from mmseg_ext.inference.probmaps import label_map
    p = np.full((n, 3, 5), 0.1 / (n - 1), np.float32)
    p[winner] = 0.9
    labels = label_map(p, (6, 10))
    assert labels.dtype == dtype and labels.shape == (6, 10) and (labels == winner).all()


def test_whole_range_bounds_are_printed_exactly(tmp_path):
    write_images(tmp_path / 'imgs', {f'P{i}/x.png': (8, 8) for i in range(4)})
    code, lines = run_main('kfold.py', ['folder', tmp_path / 'imgs', '--out',
                                        tmp_path / 'splits', '--seed', '4294967296',
                                        '--no-progress'])
    assert_refused(code, lines, 2, '4294967296 is outside [0, 4294967295]')
    from mmseg_ext.utils.cli import bound_text
    assert [bound_text(v) for v in (0, 1.0, 0.5, 2 ** 32 - 1, 1e-6, 1e300)] == \
        ['0', '1', '0.5', '4294967295', '1e-06', '1e+300']


@pytest.fixture
def probs(tmp_path):
    p = np.zeros((2, 4, 4), np.float32)
    p[0, 1:3, 1:3] = 0.9
    return write_prob_folder(tmp_path / 'probs', {'ID1/a.png': (p, (4, 4))},
                             ['finger-1', 'finger-2'])


@pytest.mark.skipif(not osp.exists('/dev/full'), reason='needs /dev/full')
@pytest.mark.parametrize('tool,option', [('make_submission.py', '--out'),
                                         ('ensemble.py', '--out-dir'),
                                         ('pseudo_label.py', '--out-dir')])
def test_a_device_or_dash_is_no_output_place(tmp_path, probs, monkeypatch, tool, option):
    monkeypatch.chdir(tmp_path)
    p = np.zeros((2, 4, 4), np.float32)
    p[0, 1:3, 1:3] = 0.8  # a second run of the model, stored in float16
    second = write_prob_folder(tmp_path / 'probs2', {'ID1/a.png': (p, (4, 4))},
                               ['finger-1', 'finger-2'], dtype='float16')
    inputs = {'make_submission.py': [probs, '--format', 'handbone'],
              'ensemble.py': [probs, second],
              'pseudo_label.py': [probs, '--format', 'handbone-json']}[tool]
    before = snapshot(str(tmp_path))
    for out, words in (('/dev/full', ['/dev/full is a character device']),
                       ('-', ["'-' (standard output) is not supported"])):
        code, lines = run_main(tool, inputs + [option, out, '--no-progress'])
        assert_refused(code, lines, 2, option, *words)
        assert snapshot(str(tmp_path)) == before
        assert not osp.lexists(tmp_path / '-')


@pytest.mark.skipif(not osp.exists('/dev/null'), reason='needs /dev/null')
def test_the_library_names_a_device_in_place_of_an_output_file():
    from mmseg_ext.io.owned_file import check_replaceable_file
    from mmseg_ext.utils.errors import OutputError
    with pytest.raises(OutputError, match='/dev/null: is a character device, not a file'):
        check_replaceable_file('/dev/null', 'make_submission')


def test_a_comma_list_may_hold_class_names_with_a_slash(tmp_path, monkeypatch):
    """Review item: a comma list is a list even when a name holds '/'; a single
    path-like value that names nothing is still 'not found'."""
    from mmseg_ext.io.submission import read_class_list
    from mmseg_ext.utils.errors import InvalidArgumentError
    monkeypatch.chdir(tmp_path)
    assert read_class_list('lung/left,lung/right') == ('lung/left', 'lung/right')
    with pytest.raises(InvalidArgumentError, match='no such file or folder'):
        read_class_list('lists/classes.txt')
    with pytest.raises(InvalidArgumentError, match='no such file or folder'):
        read_class_list('classes.txt')
    (tmp_path / 'a,b.txt').write_text('x\ny\n')   # an existing file wins, comma or not
    assert read_class_list('a,b.txt') == ('x', 'y')


def _two_runs(tmp_path, second_values):
    rng = np.random.default_rng(3)
    first = {f'ID1/{n}.png': (rng.random((2, 6, 6)).astype(np.float32), (6, 6))
             for n in 'ab'}
    a = write_prob_folder(tmp_path / 'a', first, ['finger-1', 'finger-2'])
    b = write_prob_folder(tmp_path / 'b', second_values(first), ['finger-1', 'finger-2'],
                          dtype='float16')
    return a, b


def test_one_model_stored_in_two_dtypes_is_one_ensemble_input(tmp_path):
    """Review item: the same probabilities re-written as float16 are other bytes but
    one model; the vote refuses them and publishes nothing."""
    a, b = _two_runs(tmp_path, lambda first: first)
    before = snapshot(str(tmp_path))
    code, lines = run_main('ensemble.py', [a, b, '--out-dir', tmp_path / 'e',
                                           '--no-progress'])
    assert_refused(code, lines, 2, a, b, 'the same probabilities on every image',
                   'uint8 and float16')
    assert snapshot(str(tmp_path)) == before and not osp.exists(tmp_path / 'e')


def test_models_that_differ_on_one_image_or_predict_nothing_are_voted(tmp_path):
    def one_image_differs(first):
        out = dict(first)
        p, size = first['ID1/b.png']
        out['ID1/b.png'] = (np.clip(p + 0.05, 0, 1), size)
        return out
    a, b = _two_runs(tmp_path, one_image_differs)
    code, _ = run_main('ensemble.py', [a, b, '--out-dir', tmp_path / 'e', '--no-progress'])
    assert code == 0
    empty = {'ID1/a.png': (np.zeros((2, 4, 4), np.float32), (4, 4))}
    z1 = write_prob_folder(tmp_path / 'z1', empty, ['finger-1', 'finger-2'])
    z2 = write_prob_folder(tmp_path / 'z2', empty, ['finger-1', 'finger-2'],
                           dtype='float16')
    code, _ = run_main('ensemble.py', [z1, z2, '--out-dir', tmp_path / 'ze',
                                       '--no-progress'])
    assert code == 0   # two models that found nothing agree without being one model


def test_same_values_tracks_pairs_by_uint8_level():
    from mmseg_ext.ensembling.ensemble import SameValues
    from mmseg_ext.io.prob_file import CroppedProbs

    def cropped(levels):
        arr = np.asarray(levels, np.uint8)[None]
        return CroppedProbs(arr.shape, np.array([[0, arr.shape[1], 0, arr.shape[2]]]),
                            [arr[0]])
    alike = SameValues(3)
    alike.update([cropped([[10, 200]]), cropped([[11, 199]]), cropped([[13, 200]])])
    # levels within 1 stay alike (0, 1); 3 levels apart drop the pairs with member 2
    assert alike.pairs == {(0, 1)} and alike.with_content == {(0, 1)}


def test_every_reader_of_a_file_checks_multi_class_sums(tmp_path):
    """Review item: the softmax check lived in ProbFolder.read only; the file readers
    (read_cropped, read_probs) now refuse a multi-class file whose classes do not sum
    to 1, naming it."""
    from mmseg_ext.io.prob_file import read_cropped, read_probs, write_probs
    from mmseg_ext.io.prob_meta import ProbFileError, ProbMeta
    path = str(tmp_path / 'a.npz')
    meta = ProbMeta(classes=('bg', 'fg'), task='multi-class', img_path='a.png',
                    ori_shape=(4, 5))
    write_probs(path, np.full((2, 4, 5), 0.2), meta)   # sums to 0.4
    for reader in (read_cropped, read_probs):
        with pytest.raises(ProbFileError, match=f'{path}: multi-class probabilities sum'):
            reader(path)
    write_probs(path, np.stack([np.full((4, 5), 0.3), np.full((4, 5), 0.7)]), meta)
    assert read_probs(path)[0].shape == (2, 4, 5)
