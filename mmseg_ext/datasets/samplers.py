"""Batches with a fixed number of labelled and unlabelled samples (``DATA_SAMPLERS``).

Semi-supervised training on one stock data loader: ``train_dataloader.dataset`` is an
mmengine ``ConcatDataset`` of the labelled set (first) and the unlabelled set (second),
and :class:`LabelledRatioBatchSampler`, as ``train_dataloader.batch_sampler``, makes
every batch ``labelled_per_batch`` labelled samples followed by the rest unlabelled
(UniMatch trains on equal halves). Each part is shuffled and cycled on its own, so the
small labelled set is seen many times while the unlabelled set is seen once::

    train_dataloader = dict(
        batch_size=8,
        sampler=dict(type='InfiniteSampler', shuffle=True),   # unused, mmengine needs one
        batch_sampler=dict(type='LabelledRatioBatchSampler', labelled_per_batch=4),
        dataset=dict(type='ConcatDataset', datasets=[labelled, unlabelled]))
"""
from __future__ import annotations

import itertools
from typing import Iterator, List, Optional, Sized

import torch
from mmengine.dataset import ConcatDataset
from mmengine.dist import get_dist_info, sync_random_seed
from mmseg.registry import DATA_SAMPLERS
from torch.utils.data import Sampler

from ..utils.errors import ConfigError


def infinite_stream(size: int, seed: int, shuffle: bool = True) -> Iterator[int]:
    """``0 .. size-1`` forever: one permutation per pass from a generator seeded with
    ``seed`` (as mmengine's ``InfiniteSampler``), or in order without ``shuffle``."""
    g = torch.Generator()
    g.manual_seed(seed)
    while True:
        if shuffle:
            yield from torch.randperm(size, generator=g).tolist()
        else:
            yield from range(size)


@DATA_SAMPLERS.register_module()
class LabelledRatioBatchSampler(Sampler[List[int]]):
    """Infinite batches of ``labelled_per_batch`` labelled and ``batch_size -
    labelled_per_batch`` unlabelled indices of a two-part ``ConcatDataset``.

    Part 0 (indices ``0 .. n0-1``) is the labelled set, part 1 (``n0 .. n0+n1-1``) the
    unlabelled one. Each part has its own infinite stream (:func:`infinite_stream`,
    seeds ``seed`` and ``seed + 1``), and, as in ``InfiniteSampler``, rank ``r`` of
    ``w`` takes the stream's items ``r, r + w, r + 2w, ...``: the ranks' streams are
    disjoint and together cover every pass. A batch lists its labelled indices first.

    Args:
        sampler: the data loader's sampler (mmengine passes it); only its ``dataset``
            (and ``seed`` when ``seed`` is None) is used, and it is kept as
            ``self.sampler`` for mmengine's ``DistSamplerSeedHook``.
        batch_size: samples per batch (the data loader's ``batch_size``).
        labelled_per_batch: labelled samples per batch, in ``[1, batch_size - 1]``.
        shuffle: shuffle each pass (else each part in order).
        seed: stream seed; ``None`` takes the sampler's (the runner's seed), else a seed
            shared by all ranks.

    ``len()`` is the number of batches after which this rank has drawn every sample
    of each part at least once (``max(ceil(n_p / (per_batch_p * w)))``).

    Raises:
        ConfigError: the dataset is not a two-part ``ConcatDataset`` with both parts
            non-empty, or ``labelled_per_batch`` is out of range.
    """

    def __init__(self, sampler: Sampler, batch_size: int, labelled_per_batch: int,
                 shuffle: bool = True, seed: Optional[int] = None) -> None:
        name = type(self).__name__
        dataset: Sized = getattr(sampler, 'dataset', None)
        if not isinstance(dataset, ConcatDataset) or len(dataset.datasets) != 2:
            raise ConfigError(f'{name}: train_dataloader.dataset must be a ConcatDataset '
                              'of two data sets, the labelled one first and the '
                              f'unlabelled one second; got {type(dataset).__name__}')
        if not 1 <= labelled_per_batch <= batch_size - 1:
            raise ConfigError(f'{name}: labelled_per_batch must be in [1, batch_size - 1]'
                              f' = [1, {batch_size - 1}], got {labelled_per_batch}')
        self.sizes = tuple(len(d) for d in dataset.datasets)
        if min(self.sizes) == 0:
            part = 'labelled' if self.sizes[0] == 0 else 'unlabelled'
            raise ConfigError(f'{name}: the {part} data set is empty')
        self.sampler = sampler  # mmengine's DistSamplerSeedHook reads batch_sampler.sampler
        self.rank, self.world_size = get_dist_info()
        if seed is None:
            seed = getattr(sampler, 'seed', None)
        self.seed = sync_random_seed() if seed is None else int(seed)
        self.batch_size = batch_size
        self.per_batch = (labelled_per_batch, batch_size - labelled_per_batch)
        self.shuffle = shuffle
        self._streams = [self._rank_stream(part) for part in (0, 1)]

    def _rank_stream(self, part: int) -> Iterator[int]:
        """This rank's share of part ``part``'s infinite stream, as ConcatDataset
        indices (the unlabelled part starts after the labelled one)."""
        offset = 0 if part == 0 else self.sizes[0]
        stream = infinite_stream(self.sizes[part], self.seed + part, self.shuffle)
        for i in itertools.islice(stream, self.rank, None, self.world_size):
            yield offset + i

    def __iter__(self) -> Iterator[List[int]]:
        while True:
            yield [index for stream, count in zip(self._streams, self.per_batch)
                   for index in itertools.islice(stream, count)]

    def __len__(self) -> int:
        return max(-(-size // (count * self.world_size))
                   for size, count in zip(self.sizes, self.per_batch))
