"""A hook that runs one check on each data set of a run, before its loop starts."""
from __future__ import annotations

from typing import Any, Callable

from mmengine.hooks import Hook


class DatasetCheckHook(Hook):
    """Before training, validation and testing, call ``check(dataset)`` on the data set
    of that loop's loader (it raises a domain error naming what is wrong); each data set
    is checked once per run. Subclasses set :attr:`check`."""

    #: ``check(dataset)``: raises for a data set the run must not use
    check: Callable[[Any], None]

    def __init__(self) -> None:
        self._checked: set = set()

    def _check(self, loader: Any) -> None:
        dataset = getattr(loader, 'dataset', None)
        if dataset is None or id(dataset) in self._checked:
            return
        type(self).check(dataset)
        self._checked.add(id(dataset))

    def before_train(self, runner: Any) -> None:
        self._check(runner.train_dataloader)

    def before_val(self, runner: Any) -> None:
        self._check(runner.val_dataloader)

    def before_test(self, runner: Any) -> None:
        self._check(runner.test_dataloader)
