"""Distributed data parallel over ``gloo`` on machines without a GPU.

mmengine (both stacks) wraps a distributed model as
``MMDistributedDataParallel(device_ids=[LOCAL_RANK])``, which needs CUDA, and keeps
SyncBN layers, which have no CPU kernel ("SyncBatchNorm layers only work with GPU
modules"). :class:`CPUDistributedDataParallel` is the same wrapper with
``device_ids=None`` (the module stays on the CPU) and SyncBN reverted to BatchNorm, as
mmengine does for a single process: each rank then normalises with its own batch
statistics. :func:`mmseg_ext.training.runner.prepare_distributed` selects it, and
starts the ``gloo`` process group, when ``--launcher pytorch`` runs without CUDA.
"""
from __future__ import annotations

import logging

from mmengine.logging import print_log
from mmengine.model import MMDistributedDataParallel, revert_sync_batchnorm
from mmengine.registry import MODEL_WRAPPERS
from torch import nn


@MODEL_WRAPPERS.register_module()
class CPUDistributedDataParallel(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` for CPU processes (``gloo``).

    Args:
        module: the model, on the CPU.
        **kwargs: passed to ``DistributedDataParallel``; ``device_ids`` and
            ``output_device`` are forced to ``None``.
    """

    def __init__(self, module: nn.Module, **kwargs):
        if any(isinstance(m, nn.SyncBatchNorm) for m in module.modules()):
            print_log('CPU distributed run: SyncBN layers become BatchNorm (per-rank '
                      'statistics); SyncBN needs GPUs', logger='current',
                      level=logging.WARNING)
            module = revert_sync_batchnorm(module)
        kwargs['device_ids'] = None
        kwargs['output_device'] = None
        super().__init__(module=module, **kwargs)
