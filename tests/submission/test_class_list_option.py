"""``make_submission --check --classes``: a class list given as text, a file or a
probability folder, refused the way every other ``--classes`` option refuses it
(round J of bad inputs)."""
import cv2
import numpy as np
import pytest
from conftest import run_tool


@pytest.fixture
def world(tmp_path):
    (tmp_path / 'imgs').mkdir()
    for name in ('a', 'b'):
        cv2.imwrite(str(tmp_path / 'imgs' / f'{name}.png'), np.zeros((4, 4, 3), np.uint8))
    rows = ''.join(f'{n}.png,{c},1 2\n' for n in 'ab' for c in ('A', 'B'))
    (tmp_path / 's.csv').write_text('image_name,class,rle\n' + rows)
    return tmp_path


def check(world, *extra):
    return run_tool('tools/make_submission.py', '--check', str(world / 's.csv'), '--format',
                    'handbone', '--img-dir', str(world / 'imgs'), '--no-progress', *extra)


@pytest.mark.parametrize('spec, words', [('A,,B', 'class 1: a class name is empty'),
                                         ('A,B,', 'class 2: a class name is empty'),
                                         ('A,A', 'twice')])
def test_a_bad_comma_list_names_the_option(world, spec, words):
    proc = check(world, '--classes', spec)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith('error: --classes: ') and words in lines[0], lines[0]


@pytest.mark.parametrize('spec', ['nonexist/', 'classes.txt', 'lists/classes'])
def test_a_path_that_is_not_there_is_not_a_class(world, spec):
    """A mistyped file or folder was taken as a one-class list and the CSV blamed."""
    proc = check(world, '--classes', spec)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert f'--classes: {spec}: no such file or folder' in lines[0]


def test_a_class_file_skips_comments_as_every_list_file(world):
    (world / 'cls.txt').write_text('# expected classes\nA\n\nB\n')
    proc = check(world, '--classes', str(world / 'cls.txt'))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 'checked against 2 given classes' in proc.stdout


def test_an_empty_csv_names_the_classes_it_was_checked_against(world):
    (world / 's.csv').write_text('image_name,class,rle\n')
    proc = check(world)
    assert proc.returncode == 1
    assert 'error: ' in proc.stdout + proc.stderr
    out = proc.stdout + proc.stderr
    assert '0 rows, expected 58' in out                       # 29 classes x 2 images
    assert 'checked against the 29 handbone classes' in out   # the same 29, said so
