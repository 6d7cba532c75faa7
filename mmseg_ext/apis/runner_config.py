"""Turn command-line options into a runner config, as mmseg's own tools do.

``tools/train.py`` and ``tools/test.py`` are thin wrappers over these functions so that
the same behaviour is importable (and tested) without a subprocess.
"""
from __future__ import annotations

import logging
import os
import os.path as osp
from typing import Optional

from mmengine.config import Config
from mmengine.logging import print_log

from ..utils.cli import UserError


def load_config(path: str, cfg_options: Optional[dict] = None,
                launcher: str = 'none', work_dir: Optional[str] = None) -> Config:
    """Read a config file, apply ``--cfg-options`` and pick the work dir.

    The work dir is, by priority: ``work_dir`` argument, ``work_dir`` in the file,
    ``./work_dirs/<config name>``.
    """
    if not osp.isfile(path):
        raise UserError(f'{path}: config file not found')
    cfg = Config.fromfile(path)
    cfg.launcher = launcher
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(path))[0])
    return cfg


def enable_amp(cfg: Config) -> None:
    """Switch the optimizer wrapper to mmengine's ``AmpOptimWrapper`` (dynamic scaling)."""
    wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if wrapper == 'AmpOptimWrapper':
        print_log('AMP is already enabled in the config.', logger='current',
                  level=logging.WARNING)
        return
    if wrapper != 'OptimWrapper':
        raise UserError(f'--amp needs optim_wrapper.type OptimWrapper, got {wrapper}')
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')


def train_config(path: str, work_dir: Optional[str] = None, resume: bool = False,
                 amp: bool = False, cfg_options: Optional[dict] = None,
                 launcher: str = 'none') -> Config:
    """Config for ``Runner.from_cfg(cfg).train()`` (``tools/train.py``)."""
    cfg = load_config(path, cfg_options, launcher, work_dir)
    if amp:
        enable_amp(cfg)
    cfg.resume = resume
    return cfg


def test_config(path: str, checkpoint: str, work_dir: Optional[str] = None,
                out: Optional[str] = None, show: bool = False,
                show_dir: Optional[str] = None, wait_time: float = 2.0,
                tta: bool = False, cfg_options: Optional[dict] = None,
                launcher: str = 'none') -> Config:
    """Config for ``Runner.from_cfg(cfg).test()`` (``tools/test.py``)."""
    if not osp.isfile(checkpoint) and '://' not in checkpoint:
        raise UserError(f'{checkpoint}: checkpoint file not found')
    cfg = load_config(path, cfg_options, launcher, work_dir)
    cfg.load_from = checkpoint
    if show or show_dir:
        hooks = cfg.get('default_hooks', {})
        if 'visualization' not in hooks:
            raise UserError(f'{path}: --show/--show-dir need a "visualization" entry '
                            'in default_hooks')
        hooks['visualization']['draw'] = True
        if show:
            hooks['visualization']['show'] = True
            hooks['visualization']['wait_time'] = wait_time
        if show_dir:
            cfg.visualizer['save_dir'] = show_dir
    if tta:
        if 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
            raise UserError(f'{path}: --tta needs tta_model and tta_pipeline in the config')
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    if out is not None:
        cfg.test_evaluator['output_dir'] = out
        cfg.test_evaluator['keep_results'] = True
    return cfg


def set_local_rank(local_rank: int) -> None:
    """torch.distributed.launch passes ``--local-rank``; torchrun sets ``LOCAL_RANK``."""
    os.environ.setdefault('LOCAL_RANK', str(local_rank))
