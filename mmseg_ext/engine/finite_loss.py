"""Stop a training whose loss is not a finite number, before it saves such weights.

mmengine trains on when the loss becomes NaN or infinite: every later step writes NaN
into the weights, the checkpoint hook saves them, and the run exits 0. The tools'
runner (:class:`~mmseg_ext.training.tool_runner.ToolRunner`) registers
:class:`FiniteLossHook` above the checkpoint hook, so the iteration whose loss is not
finite ends the run with :class:`~mmseg_ext.utils.errors.TrainingDivergedError`
before any checkpoint of it is written.
"""
from __future__ import annotations

import math
from typing import Any, Optional

from mmengine.hooks import Hook

from ..utils.errors import TrainingDivergedError


class FiniteLossHook(Hook):
    """After each training iteration, check the logged losses (``outputs``: the
    ``log_vars`` dict of scalars the model's ``train_step`` returns).

    Raises:
        TrainingDivergedError: naming the iteration and the loss that is not finite.
    """

    priority = 'ABOVE_NORMAL'  # before the checkpoint hook (VERY_LOW) saves

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None,
                         outputs: Optional[dict] = None) -> None:
        for name, value in (outputs or {}).items():
            if 'loss' not in name:
                continue
            number = float(value.item() if hasattr(value, 'item') else value)
            if not math.isfinite(number):
                raise TrainingDivergedError(
                    f'{runner.work_dir}: the training diverged at iteration '
                    f'{runner.iter + 1}: {name} is {number} (a learning rate far too high '
                    'or a loss weight out of range?); stopped before saving its weights')
