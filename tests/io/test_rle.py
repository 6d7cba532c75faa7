"""RLE: the FORMATS.md example, every convention against a slow reference, pycocotools."""
import numpy as np
import pycocotools.mask as coco_mask
import pytest

from mmseg_ext.io.rle import (
    COLUMN_RLE,
    HANDBONE_RLE,
    PORT_RLE,
    RLEConvention,
    RLEError,
    coco_counts_to_string,
    coco_string_to_counts,
    coco_to_mask,
    decode_rle,
    encode_rle,
    mask_bbox,
    mask_to_coco,
    parse_rle,
)


def reference_encode(mask, order='C', index_base=1, empty=''):
    """The straightforward encoder (the baselines'): pad, compare neighbours, np.where."""
    pixels = (np.asarray(mask) != 0).astype(np.uint8).flatten(order=order)
    pixels = np.concatenate([[0], pixels, [0]])
    runs = np.where(pixels[1:] != pixels[:-1])[0] + 1
    runs[1::2] -= runs[::2]
    runs[0::2] -= 1 - index_base
    if runs.size == 0:
        h, w = np.shape(mask)
        return empty.format(size=h * w, h=h, w=w)
    return ' '.join(str(x) for x in runs)


def reference_decode(text, shape, order='C', index_base=1):
    flat = np.zeros(shape[0] * shape[1], np.uint8)
    values = [int(v) for v in text.split()]
    for start, length in zip(values[0::2], values[1::2]):
        flat[start - index_base:start - index_base + length] = 1
    return flat.reshape(shape, order=order)


def random_masks(seed, count=400):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        h, w = (int(v) for v in rng.integers(1, 24, 2))
        kind = rng.integers(0, 5)
        if kind == 0:
            m = np.zeros((h, w), np.uint8)
        elif kind == 1:
            m = np.ones((h, w), np.uint8)
        elif kind == 2:  # full-width rows: runs wrap from one row to the next
            m = np.zeros((h, w), np.uint8)
            m[rng.integers(0, h):] = 1
            m[0, -1] = 1
        else:
            m = (rng.random((h, w)) < rng.random()).astype(np.uint8)
        yield m


def test_formats_md_worked_example():
    mask = np.array([[0, 1, 1, 0], [1, 0, 0, 0], [0, 0, 0, 1]], np.uint8)
    assert encode_rle(mask) == '2 2 5 1 12 1'
    assert HANDBONE_RLE.encode(mask) == '2 2 5 1 12 1'
    assert np.array_equal(decode_rle('2 2 5 1 12 1', (3, 4)), mask)
    assert encode_rle(np.zeros((3, 4), np.uint8)) == ''
    # port: 0-indexed, empty written as "0 H*W"
    assert PORT_RLE.encode(mask) == '1 2 4 1 11 1'
    assert PORT_RLE.encode(np.zeros((3, 4))) == '0 12'
    assert not PORT_RLE.decode('0 12', (3, 4)).any()
    # column-major: flatten order is 0,1,0 | 1,0,0 | 1,0,0 | 0,0,1 -> 1-indexed runs
    assert COLUMN_RLE.encode(mask) == '2 1 4 1 7 1 12 1'


@pytest.mark.parametrize('order', ['C', 'F'])
@pytest.mark.parametrize('index_base', [0, 1])
@pytest.mark.parametrize('empty', ['', '0 {size}', 'none'])
def test_round_trip_matches_reference(order, index_base, empty):
    conv = RLEConvention(order, index_base, empty)
    for mask in random_masks(seed=index_base * 10 + len(empty) + (order == 'F')):
        text = conv.encode(mask)
        assert text == reference_encode(mask, order, index_base, empty)
        if mask.any():
            assert np.array_equal(reference_decode(text, mask.shape, order, index_base), mask)
        if not (empty == '0 {size}' and index_base == 0 and mask.all()):
            # (under the port convention a full mask is written like the empty token)
            assert np.array_equal(conv.decode(text, mask.shape), mask != 0)


def test_encoder_accepts_any_dtype_and_layout():
    rng = np.random.default_rng(3)
    base = rng.random((37, 53)) < 0.3
    expected = reference_encode(base)
    for variant in (base, base.astype(np.uint8) * 255, base.astype(np.int32),
                    base.astype(np.float32), np.asfortranarray(base),
                    np.pad(base, ((0, 0), (0, 5)))[:, :53]):
        assert encode_rle(variant) == expected


def test_large_sparse_masks_match_reference():
    """The fast path (bounding box, coarse 64-bit blocks) on big masks and edge cases."""
    rng = np.random.default_rng(0)
    for h, w in ((2048, 2048), (373, 454), (1000, 8)):
        for _ in range(4):
            m = np.zeros((h, w), np.uint8)
            r, c = rng.integers(0, h), rng.integers(0, w)
            m[r:r + rng.integers(1, 90), c:c + rng.integers(1, 90)] = 1
            if rng.random() < 0.5:
                m[-1, -1] = 1
            for order in 'CF':
                assert encode_rle(m, order=order) == reference_encode(m, order)
    m = np.zeros((64, 64), np.uint8)
    m[10, 63] = m[11, 0] = 1  # touch both side edges: the row-major run wraps
    assert encode_rle(m) == reference_encode(m) == f'{10 * 64 + 64} 2'
    m = np.zeros((64, 64), np.uint8)
    m[63, 5] = m[0, 6] = 1  # column-major wrap
    assert encode_rle(m, order='F') == reference_encode(m, 'F') == f'{5 * 64 + 64} 2'


def test_mask_bbox():
    m = np.zeros((300, 200), np.uint8)
    assert mask_bbox(m) is None
    m[17, 33] = m[250, 5] = 1
    assert mask_bbox(m) == (17, 250, 5, 33)


@pytest.mark.parametrize('text,problem', [
    ('1 2 x 3', "'x' is not a non-negative integer"),
    ('1 2 3', 'odd number'),
    ('0 2', 'before the first pixel'),
    ('1 0', 'length 0'),
    ('5 2 1 1', 'not sorted'),
    ('1 3 2 1', 'overlapping'),
    ('11 3', 'ends at pixel 13 .*beyond the 12 pixels'),
    ('-1 2', "'-1' is not a non-negative integer"),
    ('1.5 2', 'not a non-negative integer'),
])
def test_parse_rle_rejects(text, problem):
    with pytest.raises(RLEError, match=problem):
        parse_rle(text, index_base=1, shape=(3, 4))


def test_parse_rle_accepts_edge_runs():
    starts, lengths = parse_rle('1 1 12 1', index_base=1, shape=(3, 4))
    assert starts.tolist() == [0, 11] and lengths.tolist() == [1, 1]
    assert parse_rle('', shape=(3, 4))[0].size == 0
    with pytest.raises(RLEError, match='empty RLE'):
        parse_rle('', index_base=0, empty='0 {size}', shape=(3, 4))


def test_coco_conversion_agrees_with_pycocotools():
    for mask in random_masks(seed=7, count=300):
        ours = mask_to_coco(mask)
        theirs = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
        assert ours['size'] == list(theirs['size'])
        assert ours['counts'] == theirs['counts']
        assert np.array_equal(coco_to_mask(theirs), mask)
        assert np.array_equal(coco_mask.decode(ours), mask)
        # uncompressed counts, as in COCO json files
        plain = mask_to_coco(mask, compressed=False)
        via_coco = coco_mask.frPyObjects(plain, *mask.shape)
        assert via_coco['counts'] == theirs['counts']
        assert np.array_equal(coco_to_mask(plain), mask)


def test_coco_counts_string_round_trip_large_values():
    counts = [0, 5, 100000, 3, 2, 4194304, 1, 7]
    assert coco_string_to_counts(coco_counts_to_string(counts)).tolist() == counts
