"""One image in other bytes (round AL, AL-6): re-saved copies are the same image.

Each expected pair is known from how the files were made; the pixels are compared with
Pillow's decoding as an independent reference where that matters.
"""
import os

import cv2
import numpy as np
import pytest
from PIL import Image

from mmseg_ext.io import image_identity
from mmseg_ext.io.image_identity import same_images
from mmseg_ext.utils.errors import DataError


@pytest.fixture
def grey(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (24, 32), dtype=np.uint8)
    path = tmp_path / 'a.png'
    cv2.imwrite(str(path), image, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    return image, str(path)


def _bytes(path):
    with open(path, 'rb') as f:
        return f.read()


def test_re_encodings_of_one_image_are_one_image(tmp_path, grey):
    image, a = grey
    copies = {
        'png9.png': lambda p: cv2.imwrite(p, image, [cv2.IMWRITE_PNG_COMPRESSION, 9]),
        'a.tif': lambda p: cv2.imwrite(p, image),
        'a.bmp': lambda p: cv2.imwrite(p, image),
        'rgb.png': lambda p: cv2.imwrite(p, cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)),
        'pil.png': lambda p: Image.fromarray(image).save(p, optimize=True),
    }
    paths = []
    for name, write in copies.items():
        path = str(tmp_path / name)
        write(path)
        assert _bytes(path) != _bytes(a)  # other bytes: the byte comparison misses them
        assert np.array_equal(np.array(Image.open(path).convert('L')), image)
        paths.append(path)
    assert same_images(paths, [a]) == [(p, a) for p in paths]


def test_sixteen_bit_image_and_its_eight_bit_save_are_one_image(tmp_path):
    """The tools read a 12-bit X-ray in a 16-bit PNG scaled to 8 bits; saved at 8 bits
    by that scaling it is the picture the model sees."""
    rng = np.random.default_rng(1)
    wide = rng.integers(0, 4096, (20, 30), dtype=np.uint16)
    wide[0, 0] = 4095  # 12 significant bits
    a = str(tmp_path / 'wide.png')
    cv2.imwrite(a, wide)
    narrow = np.clip(np.rint(wide.astype(np.float64) * 255 / 4095), 0, 255).astype(np.uint8)
    b = str(tmp_path / 'narrow.png')
    cv2.imwrite(b, narrow)
    assert same_images([b], [a]) == [(b, a)]


def test_other_pixels_are_other_images(tmp_path, grey):
    image, a = grey
    one_pixel = image.copy()
    one_pixel[3, 4] ^= 1
    b = str(tmp_path / 'b.png')
    cv2.imwrite(b, one_pixel)
    flipped = str(tmp_path / 'flipped.png')
    cv2.imwrite(flipped, image[:, ::-1])
    jpeg = str(tmp_path / 'lossy.jpg')
    cv2.imwrite(jpeg, image, [cv2.IMWRITE_JPEG_QUALITY, 50])
    assert same_images([b, flipped, jpeg], [a]) == []


def test_only_images_of_a_shared_size_are_decoded(tmp_path, grey, monkeypatch):
    image, a = grey
    other = str(tmp_path / 'other.png')
    cv2.imwrite(other, np.zeros((10, 10), np.uint8))
    copy = str(tmp_path / 'copy.tif')
    cv2.imwrite(copy, image)
    decoded = []
    real = image_identity.pixel_digest
    monkeypatch.setattr(image_identity, 'pixel_digest',
                        lambda path: decoded.append(os.path.basename(path)) or real(path))
    assert same_images([other, copy], [a, a]) == [(copy, a)]
    assert sorted(decoded) == ['a.png', 'copy.tif']  # the 10x10 image was never decoded


def test_byte_copies_and_links_are_found_without_decoding(tmp_path, grey, monkeypatch):
    _, a = grey
    link = str(tmp_path / 'link.png')
    os.symlink(a, link)
    monkeypatch.setattr(image_identity, 'pixel_digest',
                        lambda path: pytest.fail(f'decoded {path}'))
    assert same_images([link], [a]) == [(link, a)]


def test_an_image_that_cannot_be_decoded_is_named(tmp_path, grey):
    _, a = grey
    broken = tmp_path / 'broken.png'
    broken.write_bytes(_bytes(a)[:60])  # the header says 24x32, the pixels are cut off
    with pytest.raises(DataError, match='broken.png'):
        same_images([str(broken)], [a])
