"""The data set configs under a data loader's ``dataset``: wrappers and what they wrap.

mmengine and mmseg wrap data sets in others: ``ConcatDataset(datasets=[...])``,
``RepeatDataset(dataset=...)``, ``ClassBalancedDataset(dataset=...)``, mmseg's
``MultiImageMixDataset(dataset=..., pipeline=...)``; wrappers nest. Every reader of
a config's data sets (the inputs a config names, the label loading it gets, its
classes and pipelines for TTA) walks them with :func:`dataset_nodes`, so a wrapper
hides nothing from any of them.
"""
from __future__ import annotations

from typing import Any, Iterator

#: the keys under which a wrapper holds the data sets it wraps
WRAPPED_KEYS = ('dataset', 'datasets')


def dataset_nodes(node: Any) -> Iterator[dict]:
    """Every data set dict of the tree under ``node`` (a data set dict, or a list of
    them), outer before inner: wrappers and the data sets they wrap alike."""
    if isinstance(node, dict):
        yield node
        for key in WRAPPED_KEYS:
            yield from dataset_nodes(node.get(key))
    elif isinstance(node, (list, tuple)):
        for item in node:
            yield from dataset_nodes(item)


def dataset_node_paths(node: Any, path: str) -> Iterator[tuple]:
    """:func:`dataset_nodes` with the dotted config key of each
    (``train_dataloader.dataset.datasets.1``), outer before inner."""
    if isinstance(node, dict):
        yield path, node
        for key in WRAPPED_KEYS:
            yield from dataset_node_paths(node.get(key), f'{path}.{key}')
    elif isinstance(node, (list, tuple)):
        for i, item in enumerate(node):
            yield from dataset_node_paths(item, f'{path}.{i}')


def is_wrapper(node: dict) -> bool:
    """Whether a data set dict wraps others (has ``dataset`` or ``datasets``)."""
    return any(isinstance(node.get(key), (dict, list, tuple)) for key in WRAPPED_KEYS)


def pipeline_datasets(node: Any) -> Iterator[dict]:
    """The data sets under ``node`` that read samples themselves, and the wrappers with a
    pipeline of their own (``MultiImageMixDataset``), outer before inner."""
    for ds in dataset_nodes(node):
        if not is_wrapper(ds) or 'pipeline' in ds:
            yield ds
