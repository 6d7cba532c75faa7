"""Say when a training validates on its own training images.

A fold setting given to one loader and not the other (``train_dataloader.dataset.fold=1``
with validation still on fold 0), another ``fold_seed`` or ``subset`` for one of them,
or two data roots that share files make the validation set overlap the training set,
and the validation scores then look better than the model is. Some runs do it on
purpose (the benchmarks train on every image and validate on a part of them), so this
is a warning, given once before the first iteration, not a refusal.
"""
from __future__ import annotations

import logging
import os.path as osp
from typing import Any, Set

from mmengine.hooks import Hook
from mmengine.logging import print_log


def _image_paths(dataset: Any) -> Set[str]:
    """The real paths of a data set's images (a concatenation's parts too); empty when
    the data set does not list them."""
    found: Set[str] = set()
    for part in getattr(dataset, 'datasets', None) or [dataset]:
        get = getattr(part, 'get_data_info', None)  # mmengine may serialise data_list
        if get is None:
            continue
        for i in range(len(part)):
            info = get(i)
            path = info.get('img_path') if isinstance(info, dict) else None
            if isinstance(path, str):
                found.add(osp.realpath(path))
    return found


class ValidationOverlapHook(Hook):
    """Before training, warn in one line when validation images are training images."""

    def before_train(self, runner: Any) -> None:
        try:
            loop = runner.val_loop
            train = _image_paths(runner.train_dataloader.dataset)
            val = _image_paths(loop.dataloader.dataset) if loop is not None else set()
        except (AttributeError, TypeError, RuntimeError):
            return
        shared = sorted(train & val)
        if shared:
            print_log(f'{len(shared)} of the {len(val)} validation images are also '
                      f'training images (e.g. {shared[0]}): the validation scores of '
                      'this run are optimistic (check the fold settings of both loaders)',
                      logger='current', level=logging.WARNING)
