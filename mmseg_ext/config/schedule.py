"""A config's iteration-based schedule set to another length, warm-up included.

Used where a tool trains a config for a number of iterations the config does not state
(a continuation of a trained model, :mod:`mmseg_ext.workflows.self_training`): the loop
length, the validation and checkpoint intervals, and every iteration-based learning-rate
scheduler move together, so that a shortened run still warms up and decays to the end.
"""
from __future__ import annotations

from mmengine.config import Config

from ..utils.errors import ConfigError

#: the longest warm-up a shortened schedule keeps, as a share of its iterations
WARMUP_SHARE = 0.1
#: mmengine's default scheduler end (no end)
INF = float('inf')


#: scheduler arguments counted in iterations from the scheduler's ``begin``, scaled with
#: its span (lists element by element)
SPAN_ARGUMENTS = ('milestones', 'T_max', 'step_size', 'total_steps', 'periods')


def check_iteration_loop(cfg: Config, config: str, purpose: str) -> int:
    """The ``max_iters`` of ``cfg``'s iteration-based training loop
    (``IterBasedTrainLoop``, or a loop without ``type`` that gives ``max_iters``, which
    mmengine builds as one).

    Raises:
        ConfigError: naming ``config`` and ``purpose`` (what needs it): the loop counts
            epochs or has no ``max_iters``.
    """
    loop = cfg.get('train_cfg') or {}
    kind = loop.get('type')
    iteration_based = kind in ('IterBasedTrainLoop', 'mmengine.IterBasedTrainLoop') or (
        kind is None and 'max_iters' in loop and not loop.get('by_epoch', False))
    if not iteration_based or not isinstance(loop.get('max_iters'), int):
        raise ConfigError(f'{config}: {purpose} needs an iteration-based training loop '
                          f'(IterBasedTrainLoop with max_iters), got '
                          f'train_cfg={dict(loop)!r}')
    return loop['max_iters']


def set_iterations(cfg: Config, iters: int, config: str) -> None:
    """Make ``cfg`` (in place) train ``iters`` iterations.

    ``train_cfg.max_iters``, ``train_cfg.val_interval`` and the checkpoint hook's
    interval become ``iters`` (one validation and one checkpoint, at the end). Each
    iteration-based scheduler that ran to the old end (the loop's ``max_iters``, or a
    later scheduler end) now ends at ``iters``, and its span-counted arguments
    (:data:`SPAN_ARGUMENTS`: step milestones, a cosine's ``T_max``...) are scaled with
    its span; one that ended earlier (a warm-up) keeps its length up to
    ``WARMUP_SHARE`` of ``iters`` (at least 1), and a scheduler that began where the
    warm-up ended begins where the new one ends.

    Raises:
        ConfigError: naming ``config``: the loop is not iteration-based, or a
            scheduler counts epochs.
    """
    loop = cfg.train_cfg if cfg.get('train_cfg') is not None else {}
    old = check_iteration_loop(cfg, config, 'setting the number of training iterations')
    schedulers = cfg.get('param_scheduler') or []
    if isinstance(schedulers, dict):
        schedulers = [schedulers]
    for s in schedulers:
        if s.get('by_epoch', True):
            raise ConfigError(f'{config}: param_scheduler {s.get("type")!r} counts epochs '
                              '(by_epoch=True); setting the number of training iterations '
                              'needs iteration-based schedulers')
    # the old schedule's end: the loop's, or a later scheduler end (a config whose
    # max_iters was overridden without its schedulers)
    horizon = max([old] + [s['end'] for s in schedulers
                           if isinstance(s.get('end'), (int, float)) and s['end'] < INF])
    if iters == old == horizon:
        return
    warm_end = {}  # old end of a warm-up -> its new end
    for s in schedulers:
        end = s.get('end', INF)
        if end < horizon:
            new_end = max(1, min(end, int(iters * WARMUP_SHARE)))
            warm_end[end] = new_end
            s['end'] = min(new_end, max(iters - 1, 1))
    for s in schedulers:
        begin = s.get('begin', 0)
        if begin in warm_end:
            s['begin'] = warm_end[begin]
        if s.get('end', INF) >= horizon:
            old_span = max(horizon - begin, 1)
            s['end'] = max(iters, s.get('begin', 0) + 1)
            _scale_span_arguments(s, (s['end'] - s.get('begin', 0)) / old_span)
    loop['max_iters'] = iters
    if 'val_interval' in loop:
        loop['val_interval'] = iters
    checkpoint = (cfg.get('default_hooks') or {}).get('checkpoint')
    if checkpoint is not None:
        checkpoint['interval'] = iters


def _scale_span_arguments(scheduler: dict, factor: float) -> None:
    """Multiply the :data:`SPAN_ARGUMENTS` of ``scheduler`` by ``factor`` (in place),
    each at least 1 iteration."""
    for key in SPAN_ARGUMENTS:
        value = scheduler.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            scheduler[key] = max(1, round(value * factor))
        elif isinstance(value, (list, tuple)):
            scheduler[key] = [max(1, round(v * factor)) for v in value]
