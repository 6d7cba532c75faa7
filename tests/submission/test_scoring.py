"""The competition Dice of a hand-bone-layout CSV, on a hand-worked example."""
import numpy as np
import pytest
from PIL import Image

from mmseg_ext.submission.scoring import score_handbone_csv
from mmseg_ext.utils.errors import DataError


@pytest.fixture
def two_images(tmp_path):
    """Two 2x3 images; ground truth for classes a, b as (2, 2, 3) .npy masks."""
    img = tmp_path / 'img'
    gt = tmp_path / 'gt'
    img.mkdir()
    gt.mkdir()
    for name in ('p1', 'p2'):
        Image.fromarray(np.zeros((2, 3), np.uint8)).save(img / f'{name}.png')
    # p1: a = first row, b = empty; p2: a = pixel (1, 2), b = everything
    np.save(gt / 'p1.npy', np.array([[[1, 1, 1], [0, 0, 0]], np.zeros((2, 3))], np.uint8))
    np.save(gt / 'p2.npy', np.array([[[0, 0, 0], [0, 0, 1]], np.ones((2, 3))], np.uint8))
    return img, gt


def test_dice_per_class_is_the_mean_over_images(two_images, tmp_path):
    img, gt = two_images
    csv = tmp_path / 's.csv'
    # 1-indexed row-major runs on a 2x3 image: pixel (r, c) is 3 r + c + 1
    csv.write_text('image_name,class,rle\n'
                   'p1.png,a,1 2\n'      # 2 of the 3 truth pixels: 2*2 / (2 + 3)
                   'p1.png,b,\n'         # both empty: 1
                   'p2.png,a,6 1\n'      # exact: 1
                   'p2.png,b,1 3\n')     # 3 of 6: 2*3 / (3 + 6)
    score = score_handbone_csv(str(csv), str(gt), str(img), ['a', 'b'], progress=False)
    eps = 1e-4
    a = ((4 + eps) / (5 + eps) + 1.0) / 2
    b = (1.0 + (6 + eps) / (9 + eps)) / 2
    assert score.per_class == pytest.approx({'a': a, 'b': b})
    assert score.mean == pytest.approx((a + b) / 2)
    assert score.images == 2


def test_a_missing_row_is_an_error_naming_it(two_images, tmp_path):
    img, gt = two_images
    csv = tmp_path / 's.csv'
    csv.write_text('image_name,class,rle\np1.png,a,1 2\np1.png,b,\np2.png,a,6 1\n')
    with pytest.raises(DataError, match=r'no row for \(p2.png, b\)'):
        score_handbone_csv(str(csv), str(gt), str(img), ['a', 'b'], progress=False)


@pytest.mark.parametrize('extra, words', [
    ('p1.png,c,\np2.png,c,\n', "class 'c' is not one of the 2 classes scored"),
    ('p3.png,a,\np3.png,b,\n', 'rows for p3.png, which is not an image of'),
])
def test_rows_beyond_the_classes_or_images_scored_are_errors(two_images, tmp_path, extra,
                                                             words):
    img, gt = two_images
    csv = tmp_path / 's.csv'
    csv.write_text('image_name,class,rle\np1.png,a,\np1.png,b,\np2.png,a,\np2.png,b,\n'
                   + extra)
    with pytest.raises(DataError, match=words):
        score_handbone_csv(str(csv), str(gt), str(img), ['a', 'b'], progress=False)
    only_a = tmp_path / 'a.csv'
    only_a.write_text('image_name,class,rle\np1.png,a,\np2.png,a,\n')
    with pytest.raises(DataError, match="no rows for class 'b'"):
        score_handbone_csv(str(only_a), str(gt), str(img), ['a', 'b'], progress=False)
