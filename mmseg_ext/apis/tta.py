"""Test-time augmentation from a config: one set of checks for every tool that runs it.

``tools/test.py --tta`` (through :func:`~.runner_config.test_config`) and
``tools/inference.py --tta`` (through :func:`~.inference.build_predictor`) call
:func:`check_tta_config` before a model is built. It

* refuses a config without ``tta_pipeline`` or ``tta_model``;
* makes a multi-label model merge its views with ``MultiLabelSegTTAModel`` (sigmoid
  probabilities averaged) even when the config inherited mmseg's softmax ``SegTTAModel``
  from ``default_runtime.py``: one warning line says so; a multi-label TTA model around
  a softmax segmentor is refused;
* warns, in one line, when the views are not at the ratios the TTA pipeline names times
  the test pipeline's scale
  (:func:`~mmseg_ext.datasets.transforms.pipeline_geometry.tta_scale_mismatch`).
"""
from __future__ import annotations

import logging
from typing import Optional, Sequence

from mmengine.config import Config
from mmengine.logging import print_log

from ..datasets.transforms.pipeline_geometry import tta_scale_mismatch
from ..utils.errors import ConfigError

MULTI_LABEL_TTA = 'MultiLabelSegTTAModel'


def _registered(type_name) -> Optional[type]:
    from mmseg.registry import MODELS
    if not isinstance(type_name, str):
        return type_name if isinstance(type_name, type) else None
    try:
        return MODELS.get(type_name)
    except KeyError:
        return None


def is_multi_label_config(model_cfg: dict) -> bool:
    """Whether the segmentor a model config builds has ``multi_label = True``."""
    cls = _registered(model_cfg.get('type'))
    return bool(getattr(cls, 'multi_label', False))


def config_test_pipeline(cfg: Config) -> Optional[Sequence]:
    """The pipeline ``tools/test.py`` runs: ``test_dataloader.dataset.pipeline``, else
    ``test_pipeline``; ``None`` when the config has neither."""
    loader = cfg.get('test_dataloader') or {}
    pipeline = (loader.get('dataset') or {}).get('pipeline')
    if pipeline:
        return pipeline
    return cfg.get('test_pipeline')


def check_tta_config(cfg: Config, path: str) -> None:
    """Check (and where safe, correct) the TTA settings of ``cfg`` in place.

    Raises:
        ConfigError: ``tta_pipeline`` or ``tta_model`` is missing, or a multi-label TTA
            merge wraps a softmax segmentor.
    """
    if not cfg.get('tta_model') or not cfg.get('tta_pipeline'):
        raise ConfigError(f'{path}: test-time augmentation needs tta_model and '
                          'tta_pipeline in the config')
    tta_type = cfg.tta_model.get('type')
    tta_cls = _registered(tta_type)
    tta_multi = bool(getattr(tta_cls, 'multi_label', False))
    if is_multi_label_config(cfg.model):
        if not tta_multi:
            print_log(f'{path}: tta_model {tta_type} merges softmax outputs; the model is '
                      f'multi-label, so its views are merged by {MULTI_LABEL_TTA} '
                      '(sigmoid probabilities averaged) instead', logger='current',
                      level=logging.WARNING)
            cfg.tta_model.type = MULTI_LABEL_TTA
    elif tta_multi:
        raise ConfigError(f'{path}: tta_model {tta_type} merges multi-label (sigmoid) '
                          f'outputs but the model {cfg.model.get("type")} is a softmax '
                          "segmentor; use tta_model = dict(type='SegTTAModel')")
    test_pipeline = config_test_pipeline(cfg)
    if test_pipeline:
        problem = tta_scale_mismatch(test_pipeline, cfg.tta_pipeline)
        if problem:
            print_log(f'{path}: {problem}', logger='current', level=logging.WARNING)


# ------------------------------------------------------------------ left and right
_FLIPS = ('RandomFlip', 'MultiLabelRandomFlip', 'mmseg.RandomFlip', 'mmcv.RandomFlip')


def _horizontal_flips(pipeline) -> list:
    """The flip steps of a pipeline that may flip horizontally (inside TestTimeAug too)."""
    found = []
    for step in pipeline or []:
        if not isinstance(step, dict):
            continue
        if step.get('type') == 'TestTimeAug':
            found += _horizontal_flips([t for b in step['transforms'] for t in b])
        elif step.get('type') in _FLIPS and (step.get('prob') or 0) > 0 and \
                step.get('direction', 'horizontal') in ('horizontal', ['horizontal']):
            found.append(step)
    return found


LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def config_datasets(cfg: Config, loaders: Sequence[str] = LOADERS):
    """``(loader name, dataset config)`` of each loader of ``cfg`` in ``loaders`` order,
    the parts of a ``ConcatDataset`` one by one."""
    for loader in loaders:
        dataset = (cfg.get(loader) or {}).get('dataset') or {}
        for ds in dataset.get('datasets', [dataset]):
            if ds:
                yield loader, ds


def dataset_classes(ds: dict) -> Sequence[str]:
    """The class names a dataset config uses: its metainfo's, else its type's
    ``METAINFO`` (``()`` when neither says)."""
    from mmseg.registry import DATASETS
    classes = (ds.get('metainfo') or {}).get('classes')
    if classes is None and isinstance(ds.get('type'), str):
        try:
            classes = DATASETS.get(ds['type']).METAINFO.get('classes')
        except (AttributeError, KeyError, TypeError):
            classes = None
    return tuple(classes or ())


def lateral_flip_problem(cfg: Config) -> Optional[str]:
    """Say which lateral class pairs (``right_lung``/``left_lung``, by name:
    :func:`~mmseg_ext.utils.class_names.lateral_pairs`) a config flips horizontally
    without swapping, or ``None``. Multi-label: the data set's metainfo
    ``flip_swap_classes`` with ``MultiLabelRandomFlip`` in training; multi-class:
    ``RandomFlip(swap_seg_labels=...)``."""
    from ..utils.class_names import lateral_pairs
    multi_label = is_multi_label_config(cfg.model) if 'model' in cfg else False
    for loader, ds in config_datasets(cfg):
        classes = dataset_classes(ds)
        pairs = lateral_pairs(classes)
        flips = _horizontal_flips(ds.get('pipeline'))
        if loader != 'train_dataloader':
            flips += _horizontal_flips(cfg.get('tta_pipeline'))
        if not pairs or not flips:
            continue
        if multi_label:
            named = {frozenset(p) for p in (ds.get('metainfo') or {}).get(
                'flip_swap_classes') or ()}
            plain = [f for f in flips if f.get('type') != 'MultiLabelRandomFlip'
                     and loader == 'train_dataloader']
            if named and plain:
                return (f'{loader}: RandomFlip does not swap channels; use '
                        'MultiLabelRandomFlip for the flip_swap_classes to apply')
            hint = ("name them in the data set's metainfo flip_swap_classes=[('"
                    f"{pairs[0][0]}', '{pairs[0][1]}'), ...]")
        else:
            named = set()
            for f in flips:
                for a, b in f.get('swap_seg_labels') or ():
                    if max(a, b) < len(classes):
                        named.add(frozenset((classes[a], classes[b])))
            hint = 'give RandomFlip swap_seg_labels=[(i, j), ...] (class indices)'
        missing = [p for p in pairs if frozenset(p) not in named]
        if missing:
            shown = ', '.join(f'{a}/{b}' for a, b in missing)
            return (f'{loader}: the pipeline flips images horizontally but does not swap '
                    f'the lateral classes {shown}, so a flipped left becomes right; '
                    f'{hint}')
    return None
