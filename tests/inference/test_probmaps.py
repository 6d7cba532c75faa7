"""Resizing stored probabilities: the box-only path equals the full-image resize."""
import json

import cv2
import numpy as np
import pytest

from mmseg_ext.inference.probmaps import (
    cropped_class_mask,
    resize_channel,
    threshold_level,
    upsample_class,
)
from mmseg_ext.io.prob_file import CroppedProbs, read_probs, write_probs
from mmseg_ext.io.prob_meta import ProbMeta


def sparse_maps(rng, shape, dtype):
    c, h, w = shape
    maps = np.zeros(shape, np.float32)
    for k in range(c):
        r0, c0 = rng.integers(0, h - 2), rng.integers(0, w - 2)
        if k == 0:
            r0, c0 = 0, 0          # touches the top-left border
        if k == 1:
            r0, c0 = h - 3, w - 4  # touches the bottom-right border
        maps[k, r0:r0 + rng.integers(1, 9), c0:c0 + rng.integers(1, 9)] = \
            rng.random() * 0.5 + 0.5
        maps[k] = cv2.GaussianBlur(maps[k], (3, 3), 0)
    maps[-1] = 0                   # an empty class
    if dtype == np.uint8:
        return np.rint(maps * 255).astype(np.uint8)
    return maps.astype(np.float16)


@pytest.mark.parametrize('dtype', [np.uint8, np.float16])
@pytest.mark.parametrize('src,dst', [((32, 32), (128, 128)), ((20, 30), (60, 90)),
                                     ((16, 24), (32, 120)), ((20, 30), (37, 41)),
                                     ((20, 30), (10, 15))])
def test_box_upsampling_equals_full_resize(dtype, src, dst):
    rng = np.random.default_rng(src[0] * dst[1])
    dense = sparse_maps(rng, (6, *src), dtype)
    cropped = CroppedProbs.from_dense(dense)
    assert np.array_equal(cropped.dense(), dense)
    for c in range(6):
        full = cv2.resize(dense[c].astype(np.float32) if dtype == np.float16 else dense[c],
                          dst[::-1], interpolation=cv2.INTER_LINEAR)
        got = upsample_class(cropped, c, dst)
        assert got.dtype == full.dtype and np.array_equal(got, full), (c, src, dst)
        assert np.array_equal(cropped_class_mask(cropped, c, dst, 0.3),
                              full > (0.3 if dtype == np.float16 else 255 * 0.3))
        assert np.array_equal(resize_channel(cropped.channel(c), dst), full)


def test_threshold_levels():
    # p > t with p = q / 255
    for t in (0.0, 0.1, 0.5, 0.999, 1.0):
        level = threshold_level(t)
        qs = np.arange(256)
        assert np.array_equal(qs >= level, qs / 255 > t)


def test_plain_numpy_reading_of_the_documented_format(tmp_path):
    rng = np.random.default_rng(0)
    dense = sparse_maps(rng, (4, 12, 10), np.uint8)
    path = str(tmp_path / 'x.npz')
    write_probs(path, dense, ProbMeta('x.png', (24, 20), 'abcd', 'multi-label'))
    # run the snippet of mmseg_ext/io/probs.py's docstring as it is printed there
    import textwrap

    import mmseg_ext.io.probs as probs_module
    doc = probs_module.__doc__
    snippet = doc[doc.index('Dense array in plain numpy::') + len('Dense array in plain numpy::'):]
    snippet = textwrap.dedent(snippet[:snippet.index('\n\n', 2)].strip('\n'))
    scope = {'np': np, 'json': json, 'path': path}
    exec(snippet, scope)
    probs, meta = scope['probs'], scope['meta']
    assert np.array_equal(probs, dense)
    assert np.array_equal(read_probs(path)[0], dense)
    assert meta['boxes'][3] == [0, 0, 0, 0]  # the empty class
