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

from .tta import config_classes, config_datasets, dataset_classes

#: the step types taken over (mmseg's label-map loader, with or without its scope)
_STOCK = ('LoadAnnotations', 'mmseg.LoadAnnotations')
CHECKED = 'LoadAnnotationsChecked'
#: the loaders searched for the classes of the test and TTA pipelines, in this order
TEST_FIRST = ('test_dataloader', 'val_dataloader', 'train_dataloader')


def _steps(pipeline) -> Iterator[dict]:
    """The steps of a pipeline, those nested in wrapping steps included
    (``TestTimeAug(transforms=[[...], [...]])``, ``RandomChoice``, ``RandomApply``)."""
    if isinstance(pipeline, dict):
        yield pipeline
        pipeline = pipeline.get('transforms')
    if isinstance(pipeline, (list, tuple)):
        for step in pipeline:
            yield from _steps(step)


def _check_steps(pipeline, count: int) -> None:
    for step in _steps(pipeline):
        if step.get('type') not in _STOCK + (CHECKED,):
            continue
        step['type'] = CHECKED
        if step.get('num_classes') is None and 0 < count <= 255:
            step['num_classes'] = count


def use_checked_label_loading(cfg: Config) -> None:
    """Replace, in place, every ``LoadAnnotations`` step by ``LoadAnnotationsChecked``
    (same arguments) and give it the class count as ``num_classes`` where it has none:
    in the train/val/test data loaders' pipelines (the data set's classes) and in the
    ``test_pipeline`` and ``tta_pipeline`` that tools put into the test loader (the
    test set's classes), steps nested in ``TestTimeAug`` included."""
    for _, dataset in config_datasets(cfg):
        _check_steps(dataset.get('pipeline'), len(dataset_classes(dataset)))
    test_classes = len(config_classes(cfg, TEST_FIRST))
    for name in ('test_pipeline', 'tta_pipeline'):
        _check_steps(cfg.get(name), test_classes)
