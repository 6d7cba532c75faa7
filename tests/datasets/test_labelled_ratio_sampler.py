"""LabelledRatioBatchSampler: a fixed labelled/unlabelled split of every batch, each part
cycled on its own, seeded, and split between ranks like mmengine's InfiniteSampler."""
import itertools

import pytest
from mmengine.dataset import BaseDataset, ConcatDataset, InfiniteSampler

from mmseg_ext.datasets import samplers
from mmseg_ext.datasets.samplers import LabelledRatioBatchSampler
from mmseg_ext.utils.errors import ConfigError


class Items(BaseDataset):
    """``n`` items ``{'i': 0..n-1}``."""

    def __init__(self, n):
        self.n = n
        super().__init__(serialize_data=False)

    def load_data_list(self):
        return [dict(i=i) for i in range(self.n)]


def batches(n_lab, n_unl, batch_size, labelled, count, **kwargs):
    concat = ConcatDataset([Items(n_lab), Items(n_unl)])
    sampler = LabelledRatioBatchSampler(InfiniteSampler(concat, seed=0), batch_size,
                                        labelled, **kwargs)
    return sampler, list(itertools.islice(iter(sampler), count))


def test_in_order_batches_by_hand():
    # labelled 0, 1, 2 and unlabelled 3..7, each cycled on its own: two of each per batch
    sampler, got = batches(3, 5, 4, 2, 4, shuffle=False)
    assert got == [[0, 1, 3, 4], [2, 0, 5, 6], [1, 2, 7, 3], [0, 1, 4, 5]]
    assert len(sampler) == 3    # ceil(5 / 2) batches show every unlabelled item once


def test_two_ranks_take_alternate_items_of_each_stream(monkeypatch):
    # streams 0 1 2 0 1 2 ... and 3 4 5 6 7 3 4 ...: rank r takes items r, r + 2, ...
    want = {0: [[0, 2, 3, 5], [1, 0, 7, 4]], 1: [[1, 0, 4, 6], [2, 1, 3, 5]]}
    for rank in (0, 1):
        monkeypatch.setattr(samplers, 'get_dist_info', lambda r=rank: (r, 2))
        sampler, got = batches(3, 5, 4, 2, 2, shuffle=False)
        assert got == want[rank]
        assert len(sampler) == 2    # ceil(5 / (2 * 2))


def test_shuffled_passes_cover_each_part_and_follow_the_seed():
    _, got = batches(5, 7, 3, 1, 14, seed=4)
    lab = [b[0] for b in got]
    unl = [i for b in got for i in b[1:]]
    assert all(len(b) == 3 for b in got)
    # every pass over a part is a permutation of it, the parts never mix
    assert sorted(lab[:5]) == sorted(lab[5:10]) == list(range(5))
    assert sorted(unl[:7]) == sorted(unl[7:14]) == sorted(unl[14:21]) == list(range(5, 12))
    assert lab[:5] != list(range(5)) or unl[:7] != list(range(5, 12))   # shuffled
    assert batches(5, 7, 3, 1, 14, seed=4)[1] == got
    assert batches(5, 7, 3, 1, 14, seed=5)[1] != got


def test_seed_defaults_to_the_samplers():
    concat = ConcatDataset([Items(4), Items(6)])
    a = LabelledRatioBatchSampler(InfiniteSampler(concat, seed=7), 4, 2)
    b = LabelledRatioBatchSampler(InfiniteSampler(concat, seed=0), 4, 2, seed=7)
    assert a.seed == 7
    assert list(itertools.islice(iter(a), 5)) == list(itertools.islice(iter(b), 5))


def test_refusals():
    plain = Items(4)
    with pytest.raises(ConfigError, match='ConcatDataset of two'):
        LabelledRatioBatchSampler(InfiniteSampler(plain, seed=0), 4, 2)
    concat = ConcatDataset([Items(4), Items(6)])
    for bad in (0, 4):
        with pytest.raises(ConfigError, match=r'labelled_per_batch must be in .* = \[1, 3\], got'):
            LabelledRatioBatchSampler(InfiniteSampler(concat, seed=0), 4, bad)
    empty = ConcatDataset([Items(4), Items(0)])
    with pytest.raises(ConfigError, match='unlabelled data set is empty'):
        LabelledRatioBatchSampler(InfiniteSampler(empty, seed=0), 4, 2)
