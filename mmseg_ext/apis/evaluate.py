"""Test a checkpoint with the stock mmengine runner, loading it strictly first.

mmengine's ``load_from`` loads with ``strict=False``: a checkpoint whose head has
another class count, or whose keys were all renamed, loads partly (a few "size
mismatch" lines in the log) and the test then reports a meaningless metric with exit 0.
:func:`test_checkpoint` compares the checkpoint with the built model on every rank
first and refuses one that does not fit, naming what differs.
"""
from __future__ import annotations

from typing import Dict

from mmengine.config import Config
from mmengine.model import is_model_wrapper
from torch import nn

from ..utils.checkpoint import read_fitting_checkpoint


def bare_segmentor(model: nn.Module) -> nn.Module:
    """The segmentor inside ``model``: model wrappers (DDP) and test-time augmentation
    wrappers (``BaseTTAModel``, whose state-dict keys carry ``module.``) removed."""
    from mmengine.model import BaseTTAModel
    while is_model_wrapper(model) or isinstance(model, BaseTTAModel):
        model = model.module
    return model


def load_checkpoint_strictly(runner, checkpoint: str, config: str = 'the config') -> dict:
    """Load ``checkpoint`` into ``runner.model`` (through the runner, so its hooks see
    the checkpoint) only when every key and shape fits the segmentor (inside a DDP or
    TTA wrapper, which mmengine's loader also unwraps); same errors as
    :func:`read_fitting_checkpoint`."""
    read_fitting_checkpoint(bare_segmentor(runner.model), checkpoint, config)
    return runner.load_checkpoint(checkpoint, map_location='cpu', strict=True)


def check_fits_config(cfg: Config, checkpoint: str, config: str = 'the config',
                      hint: str = '') -> dict:
    """Check ``checkpoint`` against the segmentor of ``cfg`` (inside a TTA wrapper when
    ``cfg.model`` is one) before any runner is built, so that a refusal leaves nothing
    behind (no work dir, no log). Returns the checkpoint.

    Raises:
        CheckpointError: as :func:`read_fitting_checkpoint`.
    """
    from .inference import build_bare_model
    model_cfg = cfg.model.module if 'module' in cfg.model else cfg.model
    bare = Config(dict(model=model_cfg, default_scope=cfg.get('default_scope', 'mmseg')))
    return read_fitting_checkpoint(build_bare_model(bare), checkpoint, config, hint)


def check_load_from(cfg: Config, config: str = 'the config') -> None:
    """Refuse a ``load_from`` checkpoint that does not fit the model, before training.

    mmengine loads ``load_from`` with ``strict=False``: a checkpoint of another model
    trains from scratch with exit 0 and only mismatch lines in the log. The fit is
    checked as ``tools/test.py`` checks it; ``load_from_strict=False`` in the config (or
    ``--cfg-options load_from_strict=False``) takes a partial fit knowingly. Nothing is
    checked when resuming (the work dir's own checkpoint is loaded then).

    Raises:
        CheckpointError: the file cannot be loaded or does not fit (what differs).
    """
    load_from = cfg.get('load_from')
    if not load_from or cfg.get('resume') or not cfg.get('load_from_strict', True) \
            or '://' in str(load_from):  # a URL: mmengine downloads it; not twice here
        return
    check_fits_config(cfg, load_from, config,
                      hint='set load_from_strict=False to load what fits')


def check_resume(cfg: Config, config: str = 'the config') -> None:
    """Refuse ``--resume`` when the work dir's latest checkpoint is of another model
    (the config changed since): mmengine would resume it partly.

    Raises:
        CheckpointError: as :func:`read_fitting_checkpoint`.
    """
    if not cfg.get('resume') or not cfg.get('work_dir'):
        return
    from mmengine.runner import find_latest_checkpoint
    # what mmengine resumes: load_from when it is set, else the work dir's latest
    latest = cfg.get('load_from') or find_latest_checkpoint(cfg.work_dir)
    if latest and '://' not in str(latest):
        check_fits_config(cfg, latest, config, hint='resume it with the config that wrote '
                          'it, or train in another work directory')


def test_checkpoint(cfg: Config, checkpoint: str, config: str = 'the config'
                    ) -> Dict[str, float]:
    """Build the runner of ``cfg`` (from :func:`~.runner_config.test_config`), load
    ``checkpoint`` strictly and run the test loop; return the metrics."""
    from mmengine.runner import Runner
    check_fits_config(cfg, checkpoint, config)  # before the runner makes its work dir
    runner = Runner.from_cfg(cfg)
    runner.load_checkpoint(checkpoint, map_location='cpu', strict=True)
    return runner.test() or {}
