"""The data sets a built (possibly wrapped) data set reads from."""
from __future__ import annotations

from typing import Any, Iterator


def leaf_datasets(dataset: Any) -> Iterator[Any]:
    """The data sets under ``dataset``: the members of a ``ConcatDataset`` and the data
    set of a ``RepeatDataset`` or ``ClassBalancedDataset``, at any depth; ``dataset``
    itself when it wraps none."""
    members = getattr(dataset, 'datasets', None)
    if members:
        for member in members:
            yield from leaf_datasets(member)
        return
    inner = getattr(dataset, 'dataset', None)
    if inner is not None and inner is not dataset:
        yield from leaf_datasets(inner)
        return
    yield dataset
