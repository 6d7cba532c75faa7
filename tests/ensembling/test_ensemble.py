"""Soft voting (match by name, weights, mixed resolutions, errors) and the hard vote."""
import numpy as np
import pytest
from conftest import run_tool
from probs_helpers import write_prob_folder

from mmseg_ext.ensembling.ensemble import hard_vote_csv, soft_vote, vote_runs
from mmseg_ext.io.prob_file import dequantize
from mmseg_ext.io.probs import ProbFolder
from mmseg_ext.io.rle import decode_rle, encode_rle, mask_runs
from mmseg_ext.utils.class_names import HAND_BONE_CLASSES
from mmseg_ext.utils.errors import MmsegExtError

CLASSES = ('bg', 'x')


def two_class(p):
    p = np.asarray(p, np.float32)
    return np.stack([1 - p, p])


def test_weighted_mean_by_hand_matched_by_name(tmp_path):
    # folder A written a, b; folder B written b, a: matching must be by name
    a = write_prob_folder(tmp_path / 'A', {
        'd/a.png': (two_class([[0.2, 1.0]]), (1, 2)),
        'd/b.png': (two_class([[0.0, 0.4]]), (1, 2))}, CLASSES, task='multi-class',
        dtype='float16')
    b = write_prob_folder(tmp_path / 'B', {
        'd/a.png': (two_class([[0.8, 0.0]]), (1, 2)),
        'd/b.png': (two_class([[1.0, 0.4]]), (1, 2))}, CLASSES, task='multi-class',
        dtype='float16', order=['d/b.png', 'd/a.png'])
    out = tmp_path / 'F'
    s = soft_vote([a, b], str(out), weights=[3, 1], progress=False)
    assert (s.images, s.models) == (2, 2)
    fused = ProbFolder(str(out))
    pa, ma = fused.read('d/a')
    pb, _ = fused.read('d/b')
    # (3 * 0.2 + 1 * 0.8) / 4 = 0.35 ; (3 * 1.0 + 0) / 4 = 0.75
    assert np.allclose(dequantize(pa)[1], [[0.35, 0.75]], atol=1e-3)
    # (3 * 0 + 1 * 1.0) / 4 = 0.25 ; 0.4
    assert np.allclose(dequantize(pb)[1], [[0.25, 0.4]], atol=1e-3)
    assert ma.img_path == 'd/a.png' and fused.classes == CLASSES
    assert fused.task == 'multi-class' and pa.dtype == np.float16
    # the fused folder can be ensembled again (equal weights by default)
    again = soft_vote([str(out), a], str(tmp_path / 'G'), progress=False)
    p2, _ = ProbFolder(again.out).read('d/a')
    assert np.allclose(dequantize(p2)[1], [[(0.35 + 0.2) / 2, (0.75 + 1.0) / 2]], atol=1e-3)


def test_mixed_resolutions_resize_to_original(tmp_path):
    low = np.zeros((2, 2, 2), np.float32)
    low[1] = [[0.0, 1.0], [0.0, 1.0]]
    high = np.zeros((2, 4, 4), np.float32)
    high[1, :, 2:] = 0.5
    a = write_prob_folder(tmp_path / 'A', {'i.png': (low, (4, 4))}, CLASSES,
                          dtype='float16')
    b = write_prob_folder(tmp_path / 'B', {'i.png': (high, (4, 4))}, CLASSES,
                          dtype='float16')
    fused = ProbFolder(soft_vote([a, b], str(tmp_path / 'F'), progress=False).out)
    p, _ = fused.read('i')
    assert p.shape == (2, 4, 4)
    # bilinear 2 -> 4 with half-pixel centres: columns 0, 0, 0.25... -> [0, 0.25, 0.75, 1]
    up = np.array([0.0, 0.25, 0.75, 1.0])
    expected = (up + np.array([0, 0, 0.5, 0.5])) / 2
    assert np.allclose(dequantize(p)[1], np.tile(expected, (4, 1)), atol=1e-3)


def test_errors_name_the_folder_and_image(tmp_path):
    p = two_class([[0.5]])
    a = write_prob_folder(tmp_path / 'A', {'x.png': (p, (1, 1)), 'y.png': (p, (1, 1))},
                          CLASSES)
    b = write_prob_folder(tmp_path / 'B', {'x.png': (p, (1, 1))}, CLASSES)
    with pytest.raises(MmsegExtError, match=f'{b}: no probabilities for image y '
                       f'\\(present in {a}'):
        soft_vote([a, b], str(tmp_path / 'F'), progress=False)
    with pytest.raises(MmsegExtError, match=f'{b}: no probabilities for image y '
                       f'\\(present in {a}'):
        soft_vote([b, a], str(tmp_path / 'F'), progress=False)
    c = write_prob_folder(tmp_path / 'C', {'x.png': (p, (1, 1)), 'y.png': (p, (1, 1))},
                          ('bg', 'z'))
    with pytest.raises(MmsegExtError, match=f"{c}: classes differ from {a} \\(class 1 is 'z' here, 'x' there"):
        soft_vote([a, c], str(tmp_path / 'F'), progress=False)
    d = write_prob_folder(tmp_path / 'D', {'x.png': (p, (1, 1)), 'y.png': (p, (1, 1))},
                          CLASSES, task='multi-class')
    with pytest.raises(MmsegExtError, match=f'{d}: multi-class probabilities, but {a} holds '
                       'multi-label'):
        soft_vote([a, d], str(tmp_path / 'F'), progress=False)
    e = write_prob_folder(tmp_path / 'E', {'x.png': (p / 2, (1, 1)), 'y.png': (p, (1, 1))},
                          CLASSES)
    with pytest.raises(MmsegExtError, match='^weights: 3 value'):
        soft_vote([a, e], str(tmp_path / 'F'), weights=[1, 2, 3], progress=False)
    assert not (tmp_path / 'F').exists()


def reference_vote(texts, shape, k):
    votes = sum(decode_rle(t, shape).astype(np.int32) for t in texts)
    return encode_rle(votes >= k)


def test_vote_runs_equals_decode_sum_encode():
    rng = np.random.default_rng(5)
    for _ in range(200):
        shape = tuple(int(v) for v in rng.integers(1, 12, 2))
        masks = [(rng.random(shape) < rng.random()) for _ in range(rng.integers(2, 6))]
        texts = [encode_rle(m) for m in masks]
        k = int(rng.integers(1, len(masks) + 1))
        s, n = vote_runs([mask_runs(m) for m in masks], k)
        got = ' '.join(f'{a + 1} {b}' for a, b in zip(s.tolist(), n.tolist()))
        assert got == reference_vote(texts, shape, k)


def write_csv(path, rows):
    path.write_text('image_name,class,rle\n' +
                    ''.join(f'{img},{c},{r}\n' for img, c, r in rows))
    return str(path)


def full_rows(name, special):
    return [(name, c, special.get(c, '')) for c in HAND_BONE_CLASSES]


def test_hard_vote_by_hand(tmp_path):
    # finger-1 on a 1 x 10 strip: votes per pixel 1-indexed
    #   a: 1-4, b: 3-6, c: 4-8  -> counts [1,1,2,3,2,2,1,1,0,0] -> >= 2: pixels 3-6
    a = write_csv(tmp_path / 'a.csv', full_rows('i.png', {'finger-1': '1 4', 'Ulna': '9 2'}))
    b = write_csv(tmp_path / 'b.csv', full_rows('i.png', {'finger-1': '3 4'})[::-1])
    c = write_csv(tmp_path / 'c.csv', full_rows('i.png', {'finger-1': '4 5', 'Ulna': '9 1'}))
    out = tmp_path / 'vote.csv'
    hard_vote_csv([a, b, c], str(out), min_votes=2, progress=False)
    lines = out.read_text().splitlines()
    assert lines[0] == 'image_name,class,rle' and len(lines) == 30
    assert lines[1] == 'i.png,finger-1,3 4'
    assert lines[29] == 'i.png,Ulna,9 1'
    assert all(line.endswith(',') for line in lines[2:29])
    hard_vote_csv([a, b, c], str(tmp_path / 'all.csv'), min_votes=3, progress=False)
    assert (tmp_path / 'all.csv').read_text().splitlines()[1] == 'i.png,finger-1,4 1'
    d = write_csv(tmp_path / 'd.csv', full_rows('i.png', {})[:-1])
    with pytest.raises(MmsegExtError, match=f'{d}: no row for \\(i.png, Ulna\\)'):
        hard_vote_csv([a, d], str(tmp_path / 'x.csv'), progress=False)
    e = write_csv(tmp_path / 'e.csv', full_rows('i.png', {'Radius': '5 2 1 1'}))
    with pytest.raises(MmsegExtError, match=f'{e}: \\(i.png, Radius\\): runs 1 and 2 are not'):
        hard_vote_csv([a, e], str(tmp_path / 'x.csv'), progress=False)


def test_cli_soft_vote_and_errors(tmp_path):
    p = two_class([[0.5, 0.1]])
    a = write_prob_folder(tmp_path / 'A', {'x.png': (p, (1, 2))}, CLASSES)
    b = write_prob_folder(tmp_path / 'B', {'y.png': (p, (1, 2))}, CLASSES)
    proc = run_tool('tools/ensemble.py', a, b, '--out-dir', str(tmp_path / 'F'))
    assert proc.returncode == 1
    assert proc.stderr.strip() == (f'error: {b}: no probabilities for image x '
                                   f'(present in {a}; 1 missing)')
    assert not (tmp_path / 'F').exists()
    c = write_prob_folder(tmp_path / 'C', {'x.png': (two_class([[0.7, 0.3]]), (1, 2))},
                          CLASSES)
    proc = run_tool('tools/ensemble.py', a, c, '--out-dir', str(tmp_path / 'F'),
                    '--no-progress')
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().startswith(f'ensemble: 2 models, 1 images -> {tmp_path}/F')
    proc = run_tool('tools/ensemble.py', a, c, '--out-dir', str(tmp_path / 'F'))
    assert proc.returncode == 1 and 'already exists (use --force' in proc.stderr


def test_one_input_is_never_counted_twice(tmp_path):
    """The same folder or CSV reached twice (as typed, through ``..``, through a link)
    or copied is refused: it would outvote the other inputs."""
    import shutil
    a = write_prob_folder(tmp_path / 'A', {'x.png': (two_class([[0.5, 0.1]]), (1, 2))},
                          CLASSES)
    b = write_prob_folder(tmp_path / 'B', {'x.png': (two_class([[0.7, 0.3]]), (1, 2))},
                          CLASSES)
    (tmp_path / 'L').symlink_to(tmp_path / 'A')
    shutil.copytree(a, tmp_path / 'copy')
    for twice in (a, f'{a}/../A', str(tmp_path / 'L'), str(tmp_path / 'copy')):
        proc = run_tool('tools/ensemble.py', a, b, twice, '--out-dir', str(tmp_path / 'F'))
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1, proc.stderr
        assert lines[0].startswith('error: ') and 'give each once' in lines[0], lines[0]
        assert not (tmp_path / 'F').exists()
    csv = tmp_path / 's.csv'
    csv.write_text('image_name,class,rle\n')
    shutil.copy(csv, tmp_path / 't.csv')
    for twice in (str(csv), str(tmp_path / 't.csv')):
        proc = run_tool('tools/ensemble.py', '--csv', str(csv), twice, '--out',
                        str(tmp_path / 'v.csv'))
        assert proc.returncode == 2 and 'give each once' in proc.stderr, proc.stderr
        assert not (tmp_path / 'v.csv').exists()
