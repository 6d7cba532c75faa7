"""Checked label-map loading for every config the tools read.

mmseg's stock ``LoadAnnotations`` trusts a label PNG: a colour label, one of another
size than its image or a value that is no class reaches the batch, the loss or the
metric (a traceback, a stretched label, pixels silently dropped from the IoU).
:func:`use_checked_label_loading` gives each data loader's ``LoadAnnotations`` step to
:class:`~mmseg_ext.datasets.transforms.loading.LoadAnnotationsChecked` with the same
arguments and the data set's class count, so that each of those is one error naming
the file. Configs need not change; a step that is already checked keeps its
``num_classes`` when it has one.
"""
from __future__ import annotations

from typing import Iterator

from mmengine.config import Config

from .tta import dataset_classes

#: the step types taken over (mmseg's label-map loader, with or without its scope)
_STOCK = ('LoadAnnotations', 'mmseg.LoadAnnotations')
CHECKED = 'LoadAnnotationsChecked'


def _datasets(node) -> Iterator[dict]:
    """A data loader's data set config and those it wraps (``ConcatDataset``'s
    ``datasets``, ``RepeatDataset``'s ``dataset``)."""
    if not isinstance(node, dict):
        return
    yield node
    yield from _datasets(node.get('dataset'))
    for inner in node.get('datasets') or []:
        yield from _datasets(inner)


def use_checked_label_loading(cfg: Config) -> None:
    """Replace, in place, every ``LoadAnnotations`` step of the train/val/test data
    loaders' pipelines by ``LoadAnnotationsChecked`` (same arguments) and give it the
    data set's class count as ``num_classes`` where it has none."""
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        for dataset in _datasets((cfg.get(loader) or {}).get('dataset')):
            steps = dataset.get('pipeline')
            if not isinstance(steps, list):
                continue
            for step in steps:
                if not isinstance(step, dict) or step.get('type') not in _STOCK + (CHECKED,):
                    continue
                step['type'] = CHECKED
                count = len(dataset_classes(dataset))
                if step.get('num_classes') is None and 0 < count <= 255:
                    step['num_classes'] = count
