"""Submission writers against hand-made CSV text; the checker catching each error."""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import run_tool
from probs_helpers import write_images, write_prob_folder

from mmseg_ext.inference.probmaps import class_mask, label_map, threshold_level
from mmseg_ext.submission.check import check_submission
from mmseg_ext.submission.make import make_submission
from mmseg_ext.utils.class_names import HAND_BONE_CLASSES, PORT_CLASSES, TRASH_CLASSES
from mmseg_ext.utils.errors import MmsegExtError
from mmseg_ext.utils.per_class import per_class_option

EXAMPLE = np.array([[0, 1, 1, 0], [1, 0, 0, 0], [0, 0, 0, 1]], np.float32)  # FORMATS.md


def handbone_probs():
    a = np.zeros((29, 3, 4), np.float32)
    a[0] = EXAMPLE * 0.9 + 0.05          # finger-1 of a.png: the worked example
    a[1] = 0.6                            # finger-2: all pixels at 0.6
    b = np.zeros((29, 3, 4), np.float32)
    b[28, 2, 3] = 0.8                     # Ulna of b.png: the last pixel
    # b.png sorts first by path (ID1/ < ID2/) although its name sorts last
    return {'ID2/a.png': (a, (3, 4)), 'ID1/b.png': (b, (3, 4))}


def expected_handbone(rows_by_image):
    lines = ['image_name,class,rle']
    for name, special in rows_by_image:
        for cls in HAND_BONE_CLASSES:
            lines.append(f'{name},{cls},{special.get(cls, "")}')
    return '\n'.join(lines) + '\n'


def test_handbone_csv_text(tmp_path):
    probs = write_prob_folder(tmp_path / 'p', handbone_probs(), HAND_BONE_CLASSES)
    out = tmp_path / 'sub.csv'
    s = make_submission(probs, 'handbone', str(out), progress=False)
    assert out.read_text() == expected_handbone([
        ('b.png', {'Ulna': '12 1'}),
        ('a.png', {'finger-1': '2 2 5 1 12 1', 'finger-2': '1 12'})])
    assert (s.images, s.rows, s.empty) == (2, 58, 55)
    # per-class thresholds: finger-2 at 0.7 becomes empty, the others keep 0.5
    out2 = tmp_path / 'sub2.csv'
    make_submission(probs, 'handbone', str(out2), thresholds={'finger-2': 0.7},
                    progress=False)
    assert out2.read_text() == expected_handbone([
        ('b.png', {'Ulna': '12 1'}), ('a.png', {'finger-1': '2 2 5 1 12 1'})])
    with pytest.raises(MmsegExtError, match='already exists'):
        make_submission(probs, 'handbone', str(out), progress=False)


def test_trash_csv_text(tmp_path):
    labels = np.zeros((512, 512), np.int64)
    labels[:256, 256:] = 3
    labels[300:, :100] = 10
    labels[301, 51] = 7  # odd row: nearest-neighbour 512 -> 256 samples even rows only
    probs = np.full((11, 512, 512), 0.01, np.float32)
    np.put_along_axis(probs, labels[None], 0.9, axis=0)
    images = {'batch_01_vt/0024.jpg': (probs, (512, 512)),
              'batch_01_vt/0003.jpg': (probs * 0 + np.eye(11)[0][:, None, None],
                                       (512, 512))}
    folder = write_prob_folder(tmp_path / 'p', images, TRASH_CLASSES, task='multi-class')
    test_json = tmp_path / 'test.json'
    test_json.write_text(json.dumps({'images': [
        {'id': 0, 'file_name': 'batch_01_vt/0024.jpg'},
        {'id': 1, 'file_name': 'batch_01_vt/0003.jpg'}]}))
    out = tmp_path / 'sub.csv'
    make_submission(folder, 'trash', str(out), test_json=str(test_json), progress=False)
    small = labels[::2, ::2]
    assert small[150, 25] == 10 and 7 not in small
    expected = ('image_id,PredictionString\n'
                f'batch_01_vt/0024.jpg,{" ".join(map(str, small.ravel()))}\n'
                f'batch_01_vt/0003.jpg,{" ".join(["0"] * 65536)}\n')
    assert out.read_text() == expected
    report = check_submission(str(out), 'trash', test_json=str(test_json))
    assert report.ok, report.errors


def test_port_csv_text(tmp_path):
    labels = np.array([[0, 1, 1, 0], [4, 0, 0, 0], [0, 0, 0, 4]])
    probs = np.eye(5, dtype=np.float32)[labels].transpose(2, 0, 1) * 0.8 + 0.04
    folder = write_prob_folder(tmp_path / 'p', {'x.jpg': (probs, (3, 4))}, PORT_CLASSES,
                               task='multi-class')
    out = tmp_path / 'sub.csv'
    make_submission(folder, 'port', str(out), progress=False)
    assert out.read_text() == ('file_name,class,prediction\n'
                               'x.jpg,container_truck,1 2\n'
                               'x.jpg,forklift,0 12\n'
                               'x.jpg,reach_stacker,0 12\n'
                               'x.jpg,ship,4 1 11 1\n')
    sample = tmp_path / 'sample.csv'
    sample.write_text('file_name,class,prediction\nx.jpg,ship,\nx.jpg,1,\n')
    out2 = tmp_path / 'sub2.csv'
    make_submission(folder, 'port', str(out2), sample=str(sample), progress=False)
    assert out2.read_text() == ('file_name,class,prediction\n'
                                'x.jpg,ship,4 1 11 1\nx.jpg,1,1 2\n')


def test_port_sample_that_leaves_out_an_image_with_probabilities(tmp_path):
    """The sample decides the rows: an image with probabilities that it does not name
    would be dropped from the CSV with exit 0 (round H); it is refused, as for trash."""
    probs = np.full((5, 2, 2), 0.2, np.float32)
    folder = write_prob_folder(tmp_path / 'p', {'x.jpg': (probs, (2, 2)),
                                                'y.jpg': (probs, (2, 2))},
                               PORT_CLASSES, task='multi-class')
    sample = tmp_path / 'sample.csv'
    sample.write_text('file_name,class,prediction\nx.jpg,ship,\n')
    with pytest.raises(MmsegExtError, match=r'p: 1 image\(s\) with probabilities are not '
                       r'in .*sample\.csv, e\.g\. y\.jpg'):
        make_submission(folder, 'port', str(tmp_path / 'sub.csv'), sample=str(sample),
                        progress=False)
    assert not (tmp_path / 'sub.csv').exists()


def test_inputs_are_checked_before_the_output_is_opened(tmp_path):
    """A bad sample is named even when the output exists (no --force); a sample or a
    test.json the format does not use is refused, never silently ignored."""
    labels = np.array([[0, 1], [4, 0]])
    probs = np.eye(5, dtype=np.float32)[labels].transpose(2, 0, 1)
    folder = write_prob_folder(tmp_path / 'p', {'x.jpg': (probs, (2, 2))}, PORT_CLASSES,
                               task='multi-class')
    out = tmp_path / 'sub.csv'
    out.write_text('kept\n')
    bad = tmp_path / 'bad.csv'
    bad.write_text('file_name,class,prediction\nnot_there.jpg,ship,\n')
    with pytest.raises(MmsegExtError, match=f'{bad}:2: no probabilities for image not_there'):
        make_submission(folder, 'port', str(out), sample=str(bad), progress=False)
    (tmp_path / 'sample_dir').mkdir()
    with pytest.raises(MmsegExtError, match=r'sample_dir: not a regular file \(a folder\)'):
        make_submission(folder, 'port', str(tmp_path / 'o.csv'),
                        sample=str(tmp_path / 'sample_dir'), progress=False)
    assert out.read_text() == 'kept\n' and not (tmp_path / 'o.csv').exists()
    hb = write_prob_folder(tmp_path / 'hb', {'a.png': (np.zeros((29, 2, 2)), (2, 2))},
                           HAND_BONE_CLASSES)
    with pytest.raises(MmsegExtError, match='sample: the handbone format takes its rows'):
        make_submission(hb, 'handbone', str(tmp_path / 'h.csv'), sample=str(bad),
                        progress=False)
    with pytest.raises(MmsegExtError, match='test_json: the port format takes no test.json'):
        make_submission(folder, 'port', str(tmp_path / 'h.csv'), test_json=str(bad),
                        progress=False)
    # the checker refuses them alike
    with pytest.raises(MmsegExtError, match='sample: the handbone format .* is for port'):
        check_submission(str(bad), 'handbone', img_dir=str(tmp_path), sample=str(bad))
    with pytest.raises(MmsegExtError, match=r'of trash\)'):
        check_submission(str(bad), 'handbone', img_dir=str(tmp_path), test_json=str(bad))


def test_post_processing_in_submission(tmp_path):
    p = np.zeros((29, 6, 6), np.float32)
    p[0, 0:3, 0:3] = 0.9   # 9 pixels
    p[0, 5, 5] = 0.9       # 1 pixel: dropped with min-area 2
    folder = write_prob_folder(tmp_path / 'p', {'a.png': (p, (6, 6))}, HAND_BONE_CLASSES)
    out = tmp_path / 's.csv'
    make_submission(folder, 'handbone', str(out), min_area={'finger-1': 2},
                    progress=False)
    assert out.read_text().splitlines()[1] == 'a.png,finger-1,1 3 7 3 13 3'


def test_resize_matches_torch_bilinear():
    rng = np.random.default_rng(0)
    low = rng.random((5, 8)).astype(np.float32)
    ref = F.interpolate(torch.from_numpy(low)[None, None], size=(24, 40), mode='bilinear',
                        align_corners=False)[0, 0].numpy()
    mask = class_mask(low.astype(np.float16), (24, 40), 0.5)
    close = np.abs(ref - 0.5) < 2e-3
    assert np.array_equal(mask[~close], (ref > 0.5)[~close])
    q = np.rint(low * 255).astype(np.uint8)
    mask_q = class_mask(q, (24, 40), 0.5)
    close = np.abs(ref - 0.5) < 4 / 255
    assert np.array_equal(mask_q[~close], (ref > 0.5)[~close])
    assert threshold_level(0.5) == 128 and threshold_level(0.0) == 1


def test_label_map_ties_go_to_first_class():
    probs = np.array([[[5, 9]], [[5, 2]], [[7, 9]]], np.uint8)
    assert label_map(probs, (1, 2)).tolist() == [[2, 0]]


def test_wrong_inputs_are_user_errors(tmp_path):
    folder = write_prob_folder(tmp_path / 'p', handbone_probs(), HAND_BONE_CLASSES)
    with pytest.raises(MmsegExtError, match='multi-label probabilities; the trash format'):
        make_submission(folder, 'trash', str(tmp_path / 'x.csv'), progress=False)
    bad = tmp_path / 'thr.json'
    bad.write_text('{"finger-1": 0.4, "Femur": 0.5}')
    with pytest.raises(MmsegExtError, match=f"{bad}: unknown class name\\(s\\) \\['Femur'\\]"):
        per_class_option(str(bad), HAND_BONE_CLASSES, 'thresholds', float, 0, 1)
    imgs = write_images(tmp_path / 'img', {'ID1/b.png': (3, 4), 'ID2/a.png': (3, 4),
                                           'ID3/c.png': (3, 4)})
    with pytest.raises(MmsegExtError, match='no probabilities for 1 image.*ID3/c.png'):
        make_submission(folder, 'handbone', str(tmp_path / 'y.csv'), img_dir=imgs,
                        progress=False)


# ------------------------------------------------------------------ the checker
def good_handbone_lines():
    lines = ['image_name,class,rle']
    for name in ('a.png', 'b.png'):
        lines += [f'{name},{c},' for c in HAND_BONE_CLASSES]
    return lines


@pytest.fixture
def img_dir(tmp_path):
    return write_images(tmp_path / 'imgs', {'ID1/a.png': (3, 4), 'ID2/b.png': (3, 4)})


def check_lines(tmp_path, img_dir, lines, fmt='handbone', classes='competition'):
    """Check ``lines``; hand-bone files against the 29 competition classes unless
    ``classes`` is None (the classes the file carries) or another list."""
    from mmseg_ext.utils.class_names import HAND_BONE_CLASSES
    path = tmp_path / 'check.csv'
    path.write_text('\n'.join(lines) + '\n')
    if classes == 'competition':
        classes = HAND_BONE_CLASSES if fmt == 'handbone' else None
    return check_submission(str(path), fmt, img_dir=img_dir, classes=classes), str(path)


def test_checker_uses_the_classes_the_file_carries(tmp_path, img_dir):
    """Without a class list the list most images share is the list (the first image's on
    a tie); an image that lacks one or has another is an error on its line."""
    lines = ['image_name,class,rle', 'a.png,heart,1 2', 'a.png,left_lung,',
             'b.png,heart,', 'b.png,left_lung,']
    report, path = check_lines(tmp_path, img_dir, lines, classes=None)
    assert report.ok, report.errors
    assert report.classes_used == 'the 2 classes the CSV carries'
    lines[4] = 'b.png,right_lung,'
    report, path = check_lines(tmp_path, img_dir, lines, classes=None)
    assert f"{path}:5: unknown class 'right_lung'" in report.errors
    assert f"{path}: image b.png: missing classes ['left_lung']" in report.errors
    # three images: the odd one out is the first
    write_images(img_dir, {'ID3/c.png': (3, 4)})
    lines[4] = 'b.png,left_lung,'
    lines[2] = 'a.png,left_lungg,'
    lines += ['c.png,heart,', 'c.png,left_lung,']
    report, path = check_lines(tmp_path, img_dir, lines, classes=None)
    assert report.classes_used == 'the 2 classes the CSV carries'
    assert f"{path}:3: unknown class 'left_lungg'" in report.errors
    assert f"{path}: image a.png: missing classes ['left_lung']" in report.errors
    assert len(report.errors) == 2


def test_checker_bad_class_in_the_first_image_is_not_the_reference(tmp_path, img_dir):
    """Round U, U-4: two images, the first with finger-99 where finger-2 belongs. Without
    a class list the tie between the two images' lists goes to the format's own list,
    so line 3 is the one named (before: line 32, the good row, was blamed)."""
    lines = good_handbone_lines()
    lines[2] = 'a.png,finger-99,'
    report, path = check_lines(tmp_path, img_dir, lines, classes=None)
    assert report.errors == [f"{path}:3: unknown class 'finger-99'",
                             f"{path}: image a.png: missing classes ['finger-2']"]
    assert report.warnings == []
    assert report.classes_used == 'the 29 classes the CSV carries'


def test_checker_warns_when_the_carried_list_is_not_the_formats(tmp_path, img_dir):
    """Every image with its rows reordered (finger-1 and finger-2 swapped), or without
    Ulna: no row error (the CSV is consistent), but one warning naming the first line
    that differs from the hand-bone list, since the grader expects that list."""
    lines = good_handbone_lines()
    for first in (1, 30):  # a.png's rows are lines 2..30, b.png's 31..59
        lines[first], lines[first + 1] = lines[first + 1], lines[first]
    report, path = check_lines(tmp_path, img_dir, lines, classes=None)
    tail = ('(the CSV carries 29 classes that are not the 29 handbone classes in order; '
            'its rows were checked against its own list)')
    assert report.errors == []
    assert report.warnings == [
        f"{path}:2: class 'finger-2' where the handbone format has 'finger-1' {tail}"]
    lines = good_handbone_lines()
    lines = [lines[0]] + [ln for ln in lines[1:] if not ln.endswith(',Ulna,')]
    report, path = check_lines(tmp_path, img_dir, lines, classes=None)
    assert report.errors == []
    assert report.warnings == [
        f'{path}:29: image a.png ends after 28 classes, the handbone format has 29 '
        + tail.replace('carries 29', 'carries 28')]


@pytest.mark.parametrize('bad,good,first,hint', [
    ('ulna', 'Ulna', 30, " (the format has 'Ulna')"),          # the 29th class of a.png
    ('Finger-1', 'finger-1', 2, " (the format has 'finger-1')"),
    ('finger-O', 'finger-9', 10, " (the format has 'finger-9')"),
    ('skull', 'Pisiform', 28, ''),                               # nothing near it
])
def test_checker_refuses_a_carried_name_that_is_not_a_handbone_class(tmp_path, img_dir, bad,
                                                                       good, first, hint):
    """Round V-16: every image with 'ulna' for 'Ulna' (a consistent misspelling the
    carried list learns): an error on the first such line, not a warning and "check OK",
    since a grader expecting 'Ulna' scores it as missing on every image."""
    lines = [ln.replace(f',{good},', f',{bad},') for ln in good_handbone_lines()]
    report, path = check_lines(tmp_path, img_dir, lines, classes=None)
    assert report.errors == [
        f"{path}:{first}: class {bad!r} is not a handbone class{hint}: a grader expecting "
        'the 29 handbone classes would score that class as missing on every image']
    assert report.warnings == []
    assert not report.ok


def test_checker_keeps_a_csv_of_another_class_list_quiet(tmp_path, img_dir):
    """Round V-16: a CSV of another class list altogether (the 2 chest classes, sharing
    nothing with the hand-bone list) is still checked against its own list, quietly."""
    lines = ['image_name,class,rle', 'a.png,heart,', 'a.png,left_lung,', 'b.png,heart,',
             'b.png,left_lung,']
    report, _ = check_lines(tmp_path, img_dir, lines, classes=None)
    assert report.errors == [] and report.warnings == []


@pytest.mark.parametrize('bad,problem', [
    (' finger-2', "class ' finger-2' starts or ends with white space"),
    ('finger-2\x00', "class 'finger-2\\x00' holds a control character"),
    ('', 'the class field is empty'),
])
def test_checker_bad_class_field_is_a_row_error(tmp_path, img_dir, bad, problem):
    """Round U, U-5: a class field that breaks the class-name rule is an error of its
    line, counted with the others (before: one line naming neither file nor line, and
    the check stopped)."""
    lines = good_handbone_lines()
    lines[2] = f'a.png,{bad},'
    lines[1] = 'a.png,finger-1,1 x'
    report, path = check_lines(tmp_path, img_dir, lines, classes=None)
    assert report.errors == [f"{path}:2: rle: RLE token 'x' is not a non-negative integer",
                             f'{path}:3: {problem}',
                             f"{path}: image a.png: missing classes ['finger-2']"]
    csv = tmp_path / 'bad.csv'
    csv.write_text('\n'.join(lines) + '\n')
    proc = run_tool('tools/make_submission.py', '--check', str(csv), '--format', 'handbone',
                    '--img-dir', img_dir, '--no-progress')
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == ''
    out = proc.stdout.splitlines()
    assert f'error: {csv}:3: {problem}' in out
    assert out[-1] == (f'check FAILED: {csv}: 58 rows, 3 error(s), 0 warning(s) (handbone; '
                       'checked against the 29 classes the CSV carries)')


def test_rle_reader_names_a_bad_class_field(tmp_path):
    """The reader of ensemble --csv and scoring: the same class field is refused on its
    line (before: accepted, then 'no row for (a.png, finger-2)')."""
    from mmseg_ext.io.submission import FORMATS, read_rle_csv
    csv = tmp_path / 'x.csv'
    csv.write_text('image_name,class,rle\na.png,finger-1,\na.png, finger-2,\n')
    with pytest.raises(MmsegExtError) as exc:
        read_rle_csv(str(csv), FORMATS['handbone'], any_class=True)
    assert str(exc.value) == f"{csv}:3: class ' finger-2' starts or ends with white space"


def test_checker_warns_about_forms_no_writer_produces(tmp_path, img_dir):
    """Round U's notes: a BOM, lone-CR line ends and extra white space in an RLE passed
    ``--check`` without a word; they read the same, but no writer produces them and a
    grader may refuse them. Warnings, not errors."""
    lines = good_handbone_lines()
    lines[1] = 'a.png,finger-1,2  2 5 1'
    path = tmp_path / 'forms.csv'
    path.write_bytes(b'\xef\xbb\xbf' + '\r'.join(lines).encode() + b'\r')
    report = check_submission(str(path), 'handbone', img_dir=img_dir,
                              classes=HAND_BONE_CLASSES)
    assert report.ok and report.rows == 58
    assert report.warnings == [
        f'{path}:2: rle has white space other than single spaces between numbers (read '
        'the same, but not what an encoder writes)',
        f'{path}:1: the file starts with a UTF-8 byte-order mark (read the same, but the '
        'writers write none and a grader may not accept it)',
        f'{path}: lines end with a lone CR (old Mac line ends; read the same, but the '
        'writers end lines with LF and a grader may not accept it)']
    path.write_bytes('\r\n'.join(lines).encode() + b'\r\n')  # Windows ends: fine
    report = check_submission(str(path), 'handbone', img_dir=img_dir,
                              classes=HAND_BONE_CLASSES)
    assert report.ok and report.warnings == [f'{path}:2: rle has white space other than '
                                             'single spaces between numbers (read the '
                                             'same, but not what an encoder writes)']


def test_checker_accepts_a_good_file(tmp_path, img_dir):
    lines = good_handbone_lines()
    lines[1] = 'a.png,finger-1,2 2 5 1 12 1'
    report, _ = check_lines(tmp_path, img_dir, lines)
    assert report.ok and report.rows == 58 and not report.warnings


@pytest.mark.parametrize('line_no,new,message', [
    (0, 'image,class,rle', ":1: header is 'image,class,rle'"),
    (1, 'a.png,finger-1,1 2,x', ':2: 4 fields, expected 3'),
    (2, 'a.png,finger-30,', ":3: unknown class 'finger-30'"),
    (2, 'c.png,finger-2,', ":3: image 'c.png' is not a test image"),
    (3, 'a.png,finger-1,', ':4: (a.png, finger-1) already on line 2'),
    (1, 'a.png,finger-1,1 x', ":2: rle: RLE token 'x'"),
    (1, 'a.png,finger-1,1 2 3', ':2: rle: RLE has an odd number'),
    (1, 'a.png,finger-1,12 2', ':2: rle: last run ends at pixel 13'),
    (1, 'a.png,finger-1,5 1 1 1', ':2: rle: runs 1 and 2 are not sorted'),
    (1, 'a.png,finger-1,1 3 2 1', ':2: rle: runs 1 and 2 are overlapping'),
    (1, 'a.png,finger-1,0 1', ':2: rle: run 1 starts at 0, before the first pixel'),
    (1, 'a.png,finger-1,3 0', ':2: rle: run 1 has length 0'),
])
def test_checker_catches(tmp_path, img_dir, line_no, new, message):
    lines = good_handbone_lines()
    lines[line_no] = new
    report, path = check_lines(tmp_path, img_dir, lines)
    assert not report.ok
    assert any(e.startswith(path) and message in e for e in report.errors), report.errors


def test_checker_missing_rows_and_counts(tmp_path, img_dir):
    lines = good_handbone_lines()
    del lines[3]                       # a.png finger-3
    lines = lines[:29]                 # b.png: no rows at all
    report, path = check_lines(tmp_path, img_dir, lines)
    assert f"{path}: image a.png: missing classes ['finger-3']" in report.errors
    assert f'{path}: image b.png: no rows' in report.errors
    assert f'{path}: 28 rows, expected 58' in report.errors


def test_checker_warnings_do_not_fail(tmp_path, img_dir):
    lines = good_handbone_lines()
    lines[1], lines[2] = lines[2], lines[1]
    lines[3] = 'a.png,finger-3,1 2 3 2'   # touching runs
    report, path = check_lines(tmp_path, img_dir, lines)
    assert report.ok
    assert f'{path}:2: rows of image a.png are not in class order' in report.warnings
    assert any(':4: rle has touching runs' in w for w in report.warnings)


def test_checker_port_and_trash(tmp_path, img_dir):
    lines = ['file_name,class,prediction']
    for name in ('a.png', 'b.png'):
        lines += [f'{name},{c},0 12' for c in PORT_CLASSES[1:]]
    report, _ = check_lines(tmp_path, img_dir, lines, 'port')
    assert report.ok, report.errors
    lines[1] = 'a.png,container_truck,'
    lines[2] = 'a.png,forklift,12 1'
    report, path = check_lines(tmp_path, img_dir, lines, 'port')
    assert any(':2: rle: empty RLE string' in e for e in report.errors)
    assert any(':3: rle: last run ends at pixel 12 (index base 0)' in e
               for e in report.errors)
    test_json = tmp_path / 'test.json'
    test_json.write_text(json.dumps({'images': [{'file_name': 'x/1.jpg'},
                                                {'file_name': 'x/2.jpg'}]}))
    zeros = ' '.join(['0'] * 65536)
    csv = tmp_path / 'trash.csv'
    csv.write_text(f'image_id,PredictionString\nx/2.jpg,{zeros}\nx/1.jpg,{zeros[:-2]} 11\n'
                   f'x/3.jpg,1 2\n')
    report = check_submission(str(csv), 'trash', test_json=str(test_json))
    assert f'{csv}:3: class id 11 in PredictionString (ids are 0..10)' in report.errors
    assert f"{csv}:4: image 'x/3.jpg' is not a test image" in report.errors
    assert any(':4: PredictionString has 2 values, expected 65536' in e
               for e in report.errors)
    assert any(':2: row order differs from the test json' in e for e in report.errors)


def test_cli_check_prints_every_problem(tmp_path, img_dir):
    lines = good_handbone_lines()
    lines[1] = 'a.png,finger-1,1 x'
    lines[2] = 'a.png,finger-99,'
    csv = tmp_path / 'bad.csv'
    csv.write_text('\n'.join(lines) + '\n')
    proc = run_tool('tools/make_submission.py', '--check', str(csv), '--format', 'handbone',
                    '--img-dir', img_dir, '--competition-classes')
    assert proc.returncode == 1, proc.stderr
    out = proc.stdout.splitlines()
    assert f"error: {csv}:2: rle: RLE token 'x' is not a non-negative integer" in out
    assert f"error: {csv}:3: unknown class 'finger-99'" in out
    assert out[-1].startswith(f'check FAILED: {csv}: 58 rows, ')


def test_cli_write_then_check(tmp_path, img_dir):
    images = handbone_probs()
    images = {'ID1/a.png': images['ID2/a.png'], 'ID2/b.png': images['ID1/b.png']}
    probs = write_prob_folder(tmp_path / 'p', images, HAND_BONE_CLASSES)
    out = tmp_path / 'sub.csv'
    args = ('tools/make_submission.py', probs, '--format', 'handbone', '--out', str(out),
            '--img-dir', img_dir, '--no-progress')
    proc = run_tool(*args)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1].startswith(
        f'submission: 2 images, 58 rows (55 empty masks) -> {out}')
    proc = run_tool(*args)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f'error: {out}: already exists (use --force to replace it)'
    proc = run_tool('tools/make_submission.py', '--check', str(out), '--format', 'handbone',
                    '--img-dir', img_dir)
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout.strip().startswith(f'check OK: {out}: 58 rows, 0 error(s)')


def test_handbone_csv_for_any_class_list(tmp_path):
    """A 3-class multi-label folder gives a 3-class hand-bone-layout CSV that --check
    accepts as it is (the classes the CSV carries) and with that class list given; the
    29 competition classes are enforced on request, when writing and when checking."""
    classes = ('right_lung', 'left_lung', 'heart')
    probs = np.zeros((3, 4, 5), np.float32)
    probs[0, 1:3, 1:4] = 0.9                       # rows 1-2, cols 1-3 of right_lung
    folder = write_prob_folder(tmp_path / 'p', {'x/a.png': (probs, (4, 5))}, classes)
    imgs = write_images(tmp_path / 'img', {'x/a.png': (4, 5)})
    out = tmp_path / 'sub.csv'
    proc = run_tool('tools/make_submission.py', folder, '--format', 'handbone', '--out',
                    str(out), '--img-dir', imgs, '--no-progress')
    assert proc.returncode == 0, proc.stderr
    # row-major 1-indexed runs of the 4x5 mask: pixels 7-9 and 12-14
    assert out.read_text().splitlines() == [
        'image_name,class,rle', 'a.png,right_lung,7 3 12 3', 'a.png,left_lung,',
        'a.png,heart,']
    ok = run_tool('tools/make_submission.py', '--check', str(out), '--format', 'handbone',
                  '--img-dir', imgs, '--classes', folder, '--no-progress')
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.strip().splitlines()[-1].startswith(f'check OK: {out}: 3 rows')
    default = run_tool('tools/make_submission.py', '--check', str(out), '--format',
                       'handbone', '--img-dir', imgs, '--no-progress')
    assert default.returncode == 0, default.stdout
    assert default.stdout.strip().splitlines() == [
        f'check OK: {out}: 3 rows, 0 error(s), 0 warning(s) (handbone; checked against '
        'the 3 classes the CSV carries)']
    strict = run_tool('tools/make_submission.py', '--check', str(out), '--format',
                      'handbone', '--img-dir', imgs, '--no-progress', '--competition-classes')
    assert strict.returncode == 1
    assert strict.stdout.strip().splitlines() == [
        f'error: {out}: the CSV carries 3 classes, not the 29 expected: 29 missing '
        '(finger-1, finger-2, finger-3, ...); 3 not expected (right_lung, left_lung, heart)',
        f'check FAILED: {out}: 3 rows, 1 error(s), 0 warning(s) (handbone; checked against '
        '29 given classes)']
    enforced = run_tool('tools/make_submission.py', folder, '--format', 'handbone', '--out',
                        str(tmp_path / 'b.csv'), '--competition-classes')
    assert enforced.returncode == 1
    assert enforced.stderr.strip().startswith(
        f'error: {folder}: classes do not match the handbone format (29 missing: finger-1')
