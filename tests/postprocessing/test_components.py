"""Connected-component clean-up on a hand-drawn mask."""
import numpy as np

from mmseg_ext.postprocessing.components import (
    filter_components,
    keep_largest_components,
    remove_small_components,
)

DRAWING = """
..........
.###....#.
.###......
.###...##.
.......##.
#.........
.#........
"""


def parse(text):
    rows = [r for r in text.strip().splitlines()]
    return np.array([[ch == '#' for ch in r] for r in rows])


def test_hand_drawn_components():
    m = parse(DRAWING)
    # components (8-connected): 9-px square, 1-px dot, 4-px block, 2-px diagonal pair
    assert m.sum() == 16
    small_dropped = remove_small_components(m, 3)
    assert np.array_equal(small_dropped, parse("""
..........
.###......
.###......
.###...##.
.......##.
..........
..........
"""))
    assert np.array_equal(keep_largest_components(m, 1), parse("""
..........
.###......
.###......
.###......
..........
..........
..........
"""))
    # with 4-connectivity the diagonal pair is two 1-px components
    four = remove_small_components(m, 2, connectivity=4)
    assert not four[5, 0] and not four[6, 1] and four[3, 7]
    eight = remove_small_components(m, 2, connectivity=8)
    assert eight[5, 0] and eight[6, 1] and not eight[1, 8]
    # both: drop < 2 px, then keep the 2 largest -> square and block
    both = filter_components(m, min_area=2, keep_largest=2)
    assert both.sum() == 13 and not both[5, 0]
    # nothing to do / empty input
    assert np.array_equal(filter_components(m), m)
    assert not filter_components(np.zeros((4, 4)), 3).any()
    assert m.sum() == 16  # the input is not modified
