"""Hooks and runner-side helpers (registered in ``mmseg.registry.HOOKS``)."""
from .ema_teacher import EMATeacherHook, update_teacher

__all__ = ['EMATeacherHook', 'update_teacher']
