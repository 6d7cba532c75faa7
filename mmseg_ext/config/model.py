"""The model a config describes, built bare: random weights, no pretrained file read.

Used to compare a checkpoint with the model before any runner exists
(:func:`.checks.check_fits_config`) and by the predictor, which loads its checkpoint
into this model. :func:`bare_segmentor` unwraps DDP and test-time augmentation wrappers.
"""
from __future__ import annotations

import copy

import torch
from mmengine.config import Config
from mmengine.model import is_model_wrapper
from torch import nn


def bare_segmentor(model: nn.Module) -> nn.Module:
    """The segmentor inside ``model``: model wrappers (DDP) and test-time augmentation
    wrappers (``BaseTTAModel``, whose state-dict keys carry ``module.``) removed."""
    from mmengine.model import BaseTTAModel
    while is_model_wrapper(model) or isinstance(model, BaseTTAModel):
        model = model.module
    return model


def build_bare_model(cfg: Config) -> torch.nn.Module:
    """The segmentor of ``cfg`` with random weights: no pretrained file is read and no
    training-only parts (``train_cfg``) are set up; ``cfg`` is left unchanged."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    model_cfg = copy.deepcopy(cfg.model)
    skip_pretrained(model_cfg)
    inner = model_cfg  # a semi-supervised wrapper holds the segmentor as `segmentor`
    while isinstance(inner.get('segmentor'), dict):
        inner = inner['segmentor']
    inner['train_cfg'] = None
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    return MODELS.build(model_cfg)


def skip_pretrained(model_cfg: dict) -> None:
    """Switch off the pretrained weights of a model config (a checkpoint replaces them),
    also of the segmentor inside a semi-supervised wrapper (``segmentor=dict(...)``)."""
    if isinstance(model_cfg.get('segmentor'), dict):
        skip_pretrained(model_cfg['segmentor'])
    if 'pretrained' in model_cfg:
        model_cfg['pretrained'] = None
    backbone = model_cfg.get('backbone')
    if isinstance(backbone, dict) and backbone.get('init_cfg') is not None:
        backbone['init_cfg'] = None


def config_task(cfg: Config) -> str:
    """``'multi-label'`` when the config's segmentor is a multi-label one (sigmoid, one
    channel per class), else ``'multi-class'``."""
    from mmseg.registry import MODELS
    try:
        cls = MODELS.get(cfg.model.get('type'))
    except (KeyError, TypeError, AttributeError):
        cls = None
    return 'multi-label' if getattr(cls, 'multi_label', False) else 'multi-class'
