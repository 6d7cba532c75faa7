"""Mean-teacher EMA: a frozen copy of the model that follows the student's weights.

After every ``interval`` training iterations (from ``start_iter`` on) each floating-point
parameter and buffer of the teacher becomes::

    teacher = decay * teacher + (1 - decay) * student

(``teacher.mul_(decay).add_(student, alpha=1 - decay)``, in the tensor's own dtype);
integer buffers (BatchNorm's ``num_batches_tracked``) are copied. Before ``start_iter``
the teacher is a plain copy of the student. The teacher lives on the hook, outside the
model: the optimizer and the model wrapper (DDP) never see it; checkpoints store its
state under ``checkpoint['ema_teacher']`` and resuming restores it.

This is only the weight update. ``MeanTeacherSegmentor`` (mmseg_ext/models/segmentors/
mean_teacher.py) keeps its own teacher inside the model and calls :func:`update_teacher`
itself; do not combine it with this hook.
"""
from __future__ import annotations

import copy
from typing import Optional

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS
from torch import nn


@torch.no_grad()
def update_teacher(teacher: nn.Module, student: nn.Module, decay: float) -> None:
    """In place: floating tensors ``t = decay * t + (1 - decay) * s``, others copied.

    Both modules must have the same parameter and buffer names and shapes.
    """
    if not 0.0 <= decay <= 1.0:
        raise ValueError(f'decay must be in [0, 1], got {decay}')
    t_state = dict(teacher.named_parameters())
    t_state.update(teacher.named_buffers())
    s_state = dict(student.named_parameters())
    s_state.update(student.named_buffers())
    if t_state.keys() != s_state.keys():
        missing = sorted(set(s_state) ^ set(t_state))[:3]
        raise ValueError(f'teacher and student differ in tensors, e.g. {missing}')
    for name, t in t_state.items():
        s = s_state[name].detach()
        if t.shape != s.shape:
            raise ValueError(f'{name}: teacher {tuple(t.shape)} vs student {tuple(s.shape)}')
        if t.is_floating_point():
            t.mul_(decay).add_(s.to(t.dtype), alpha=1.0 - decay)
        else:
            t.copy_(s)


@HOOKS.register_module()
class EMATeacherHook(Hook):
    """Keep an exponential-moving-average teacher of the trained model (mean teacher).

    Config::

        custom_hooks = [dict(type='EMATeacherHook', decay=0.999, interval=1)]

    Args:
        decay: weight of the old teacher in [0, 1] (0.99-0.9999 are usual).
        interval: update every ``interval`` iterations.
        start_iter: before this iteration the teacher is copied from the student.

    Attributes:
        teacher: the teacher ``nn.Module`` (eval mode, no gradients), created in
            ``before_train`` from the unwrapped model; None before that.
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self, decay: float = 0.999, interval: int = 1, start_iter: int = 0) -> None:
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f'decay must be in [0, 1], got {decay}')
        if interval < 1:
            raise ValueError(f'interval must be >= 1, got {interval}')
        self.decay = float(decay)
        self.interval = int(interval)
        self.start_iter = int(start_iter)
        self.teacher: Optional[nn.Module] = None
        self._pending_state: Optional[dict] = None

    @staticmethod
    def _student(runner) -> nn.Module:
        model = runner.model
        return model.module if is_model_wrapper(model) else model

    def before_train(self, runner) -> None:
        student = self._student(runner)
        self.teacher = copy.deepcopy(student)
        self.teacher.eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        if self._pending_state is not None:
            self.teacher.load_state_dict(self._pending_state)
            self._pending_state = None

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        if self.teacher is None or (runner.iter + 1) % self.interval:
            return
        decay = self.decay if runner.iter + 1 > self.start_iter else 0.0
        update_teacher(self.teacher, self._student(runner), decay)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self.teacher is not None:
            checkpoint['ema_teacher'] = self.teacher.state_dict()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get('ema_teacher')
        if state is None:
            return
        if self.teacher is None:
            self._pending_state = state  # resumed before before_train
        else:
            self.teacher.load_state_dict(state)
