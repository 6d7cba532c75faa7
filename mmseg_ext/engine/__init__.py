"""Hooks, model wrappers and runner-side helpers (registered in mmengine/mmseg registries)."""
from .cpu_distributed import CPUDistributedDataParallel
from .ema_teacher import EMATeacherHook, update_teacher

__all__ = ['CPUDistributedDataParallel', 'EMATeacherHook', 'update_teacher']
