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


def set_iterations(cfg: Config, iters: int, config: str) -> None:
    """Make ``cfg`` (in place) train ``iters`` iterations.

    ``train_cfg.max_iters``, ``train_cfg.val_interval`` and the checkpoint hook's
    interval become ``iters`` (one validation and one checkpoint, at the end). Each
    iteration-based scheduler that ran to the old end (the loop's ``max_iters``, or a
    later scheduler end) now ends at ``iters``; one that ended earlier (a warm-up) keeps its length up to ``WARMUP_SHARE`` of ``iters``
    (at least 1), and a scheduler that began where the warm-up ended begins where the
    new one ends.

    Raises:
        ConfigError: naming ``config``: the loop is not iteration-based, or a
            scheduler counts epochs.
    """
    loop = cfg.get('train_cfg') or {}
    if loop.get('type') not in ('IterBasedTrainLoop', 'mmengine.IterBasedTrainLoop') \
            or not isinstance(loop.get('max_iters'), int):
        raise ConfigError(f'{config}: setting the number of training iterations needs an '
                          f'IterBasedTrainLoop with max_iters, got train_cfg={dict(loop)!r}')
    old = loop['max_iters']
    if iters == old:
        return
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
            s['end'] = max(iters, s.get('begin', 0) + 1)
    loop['max_iters'] = iters
    if 'val_interval' in loop:
        loop['val_interval'] = iters
    checkpoint = (cfg.get('default_hooks') or {}).get('checkpoint')
    if checkpoint is not None:
        checkpoint['interval'] = iters
