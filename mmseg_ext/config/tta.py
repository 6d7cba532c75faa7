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

import copy
import logging
import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from mmengine.config import Config
from mmengine.logging import print_log

from ..datasets.transforms.pipeline_geometry import (
    PROBE_SHAPES,
    is_resize_step,
    resized_shape,
    tta_ratios,
    tta_scale_mismatch,
)
from ..utils.dataset_configs import pipeline_datasets
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

    A config without ``tta_pipeline`` gets one built from its test pipeline and its
    ``tta_views`` (:func:`config_tta_views`, :func:`build_tta_pipeline`); an explicit
    ``tta_pipeline`` wins. Each way the views leave what the model was trained on is one
    warning line (:func:`tta_view_warnings`).

    Raises:
        ConfigError: no ``tta_model``, no ``tta_pipeline`` and no test pipeline to build
            one from, bad ``tta_views``, or a multi-label TTA merge around a softmax
            segmentor.
    """
    test_pipeline = config_test_pipeline(cfg)
    cfg.tta_pipeline = config_tta_pipeline(cfg, path)
    if not cfg.get('tta_model'):
        raise ConfigError(f'{path}: test-time augmentation needs tta_model in the config')
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
    if test_pipeline:
        problem = tta_scale_mismatch(test_pipeline, cfg.tta_pipeline)
        if problem:
            print_log(f'{path}: {problem}', logger='current', level=logging.WARNING)
    for problem in tta_view_warnings(cfg, cfg.tta_pipeline):
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
    """``(loader name, dataset config)`` of each loader of ``cfg`` in ``loaders`` order:
    the data sets that read samples, found inside any wrappers
    (:func:`~mmseg_ext.utils.dataset_configs.pipeline_datasets`: the parts of a
    ``ConcatDataset`` one by one, what a ``RepeatDataset`` repeats)."""
    for loader in loaders:
        for ds in pipeline_datasets((cfg.get(loader) or {}).get('dataset')):
            if ds:
                yield loader, ds


def dataset_classes(ds: dict) -> Sequence[str]:
    """The class names a dataset config uses: its metainfo's, else its type's
    ``METAINFO`` (``()`` when neither says)."""
    from mmseg.registry import DATASETS
    meta = ds.get('metainfo')
    classes = meta.get('classes') if isinstance(meta, dict) else None
    if classes is None and isinstance(ds.get('type'), str):
        try:
            classes = DATASETS.get(ds['type']).METAINFO.get('classes')
        except (AttributeError, KeyError, TypeError):
            classes = None
    return tuple(classes or ())


def config_classes(cfg: Config, loaders: Sequence[str] = LOADERS) -> Tuple[str, ...]:
    """The class names of the first data set in ``loaders`` order that names them
    (``()`` when none does)."""
    classes = next(filter(None, (dataset_classes(ds) for _, ds in config_datasets(cfg, loaders))),
                   ())
    return tuple(str(c) for c in classes)


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


# ------------------------------------------------------------------ views from the config
#: the ratios TTA views take by default, before the training range narrows them
DEFAULT_TTA_SCALES = (0.75, 1.0, 1.25)
#: the metainfo key by which a data set says a horizontally flipped image does not occur
#: (a chest X-ray: the heart sits on one side)
HFLIP_NATURAL_KEY = 'horizontal_flip_natural'


@dataclass(frozen=True)
class TTAViews:
    """The views of test-time augmentation, as ratios of the test scale.

    Attributes:
        scales: resize ratios of the image the test pipeline makes (1.0 = as tested).
        flip: also each view flipped horizontally (and flipped back, lateral classes
            swapped, before the merge).
    """
    scales: Tuple[float, ...]
    flip: bool

    def describe(self) -> str:
        return (f'scales {", ".join(f"{s:g}" for s in self.scales)}'
                + (' x (plain, flipped)' if self.flip else ', no flip'))


def _check_scales(value, where: str) -> Tuple[float, ...]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = (value,)
    if not isinstance(value, (list, tuple)) or not value:
        raise ConfigError(f'{where}: scales must be a non-empty list of positive numbers, '
                          f'got {value!r}')
    out = []
    for s in value:
        if isinstance(s, bool) or not isinstance(s, (int, float)) or \
                not math.isfinite(s) or s <= 0:
            raise ConfigError(f'{where}: scale {s!r} is not a positive number')
        out.append(float(s))
    return tuple(sorted(set(out)))


def training_flips(cfg: Config) -> bool:
    """Whether the training pipeline flips images horizontally."""
    return any(_horizontal_flips(ds.get('pipeline'))
               for _, ds in config_datasets(cfg, ('train_dataloader',)))


def flip_natural(cfg: Config) -> bool:
    """``False`` when a data set of the config declares in its metainfo
    (``horizontal_flip_natural=False``) that flipped images do not occur."""
    return all((ds.get('metainfo') or {}).get(HFLIP_NATURAL_KEY, True) is not False
               for _, ds in config_datasets(cfg))


def training_scale_range(cfg: Config) -> Optional[Tuple[float, float]]:
    """The smallest and largest training scale as ratios of the test scale, or ``None``
    when it cannot be known: no ``RandomResize`` with a ``ratio_range`` in training, or a
    test pipeline that does not resize (the ratio then depends on each image's size).

    With the same ``scale`` in both pipelines this is the ``ratio_range`` itself;
    otherwise it is measured on a probe image through both resizing steps (to 0.01).
    """
    test = config_test_pipeline(cfg)
    train = next((ds.get('pipeline') for _, ds in config_datasets(
        cfg, ('train_dataloader',)) if ds.get('pipeline')), None)
    if not test or not train:
        return None
    rr = next((s for s in train if isinstance(s, dict) and s.get('type') == 'RandomResize'
               and s.get('ratio_range')), None)
    test_resize = next((s for s in test if isinstance(s, dict) and is_resize_step(s)), None)
    if rr is None or test_resize is None or test_resize.get('type') != 'Resize' or \
            not _is_pair(rr.get('scale')):
        return None
    lo, hi = (float(r) for r in rr['ratio_range'])
    if _is_pair(test_resize.get('scale')) and \
            tuple(test_resize['scale']) == tuple(rr['scale']) and \
            bool(test_resize.get('keep_ratio')) == bool(rr.get('keep_ratio')):
        return (lo, hi)
    probe = PROBE_SHAPES[0]
    test_shape = resized_shape(test, probe)
    ratios = []
    for r in (lo, hi):
        scale = tuple(int(round(v * r)) for v in rr['scale'])
        step = dict(type='Resize', scale=scale, keep_ratio=rr.get('keep_ratio', False))
        ratios.append(round(resized_shape([step], probe)[0] / test_shape[0], 2))
    return (min(ratios), max(ratios))


def _is_pair(value) -> bool:
    return isinstance(value, (list, tuple)) and len(value) == 2 and \
        all(isinstance(v, (int, float)) for v in value)


def config_tta_views(cfg: Config, path: str) -> TTAViews:
    """The views ``cfg`` asks for: its ``tta_views = dict(scales=..., flip=...)``, each key
    optional. Default scales: :data:`DEFAULT_TTA_SCALES` clipped into the training scale
    range (:func:`training_scale_range`; 1.0 always stays); default flip: when training
    flips and the data set does not declare flips unnatural.

    Raises:
        ConfigError: ``tta_views`` is not a dict, has other keys, a scale that is not a
            positive number, an empty scale list, or a ``flip`` that is not a bool.
    """
    spec = cfg.get('tta_views') or {}
    where = f'{path}: tta_views'
    if not isinstance(spec, dict):
        raise ConfigError(f'{where}: must be a dict(scales=..., flip=...), got {spec!r}')
    unknown = sorted(set(spec) - {'scales', 'flip'})
    if unknown:
        raise ConfigError(f'{where}: unknown key {unknown[0]!r} (scales, flip)')
    if 'scales' in spec:
        scales = _check_scales(spec['scales'], where)
    else:
        span = training_scale_range(cfg)
        lo, hi = span if span is not None else (0.0, math.inf)
        scales = tuple(sorted({round(min(max(s, lo), hi), 4) for s in DEFAULT_TTA_SCALES}
                              | {1.0}))
    flip = spec.get('flip')
    if flip is None:
        flip = training_flips(cfg) and flip_natural(cfg)
    elif not isinstance(flip, bool):
        raise ConfigError(f'{where}: flip must be True or False, got {flip!r}')
    return TTAViews(scales, flip)


def config_tta_pipeline(cfg: Config, path: str) -> list:
    """The TTA pipeline of ``cfg``: its explicit ``tta_pipeline`` (which wins; its
    ``tta_views``, if any, are still checked), else one built from its test pipeline and
    :func:`config_tta_views`. ``cfg`` is not changed.

    Raises:
        ConfigError: neither a ``tta_pipeline`` nor a test pipeline; bad ``tta_views``.
    """
    if cfg.get('tta_pipeline'):
        if cfg.get('tta_views') is not None:
            config_tta_views(cfg, path)
        return cfg.tta_pipeline
    test_pipeline = config_test_pipeline(cfg)
    if not test_pipeline:
        raise ConfigError(f'{path}: test-time augmentation needs a test pipeline (or a '
                          'tta_pipeline) in the config')
    return build_tta_pipeline(test_pipeline, config_tta_views(cfg, path))


def build_tta_pipeline(test_pipeline: Sequence, views: TTAViews) -> list:
    """A ``TestTimeAug`` pipeline made from ``test_pipeline``: its steps up to and
    including the first resize (the loader alone when it has none), then one branch of
    ``Resize(scale_factor=r)`` per ratio, one of flips when ``views.flip``, and each
    later step of the test pipeline (annotation loading, packing) as a branch of one.
    A view is then exactly ``r`` times what the test pipeline makes."""
    steps = [copy.deepcopy(dict(s)) if isinstance(s, dict) else s for s in test_pipeline]
    cut = next((i + 1 for i, s in enumerate(steps) if is_resize_step(s)), 1)
    branches = [[dict(type='Resize', scale_factor=r, keep_ratio=True)
                 for r in views.scales]]
    if views.flip:
        branches.append([dict(type='RandomFlip', prob=0.0, direction='horizontal'),
                         dict(type='RandomFlip', prob=1.0, direction='horizontal')])
    branches += [[s] for s in steps[cut:]]
    return steps[:cut] + [dict(type='TestTimeAug', transforms=branches)]


def tta_view_warnings(cfg: Config, tta_pipeline: Sequence) -> List[str]:
    """One line for each way the views leave what the model was trained on: a flipped
    view when training never flips (or the data set declares flips unnatural), a view
    scale outside the training scale range."""
    problems = []
    flips = _horizontal_flips(tta_pipeline)
    if flips and not flip_natural(cfg):
        problems.append(f'a TTA view flips horizontally, but the data set declares '
                        f'{HFLIP_NATURAL_KEY}=False; set tta_views=dict(flip=False)')
    elif flips and not training_flips(cfg):
        problems.append('a TTA view flips horizontally, but the training pipeline never '
                        'flips: the model has not seen flipped images; set '
                        'tta_views=dict(flip=False) or flip in training')
    span = training_scale_range(cfg)
    if span is not None:
        outside = [r for r in tta_ratios(tta_pipeline)
                   if not span[0] - 1e-6 <= r <= span[1] + 1e-6]
        if outside:
            problems.append(f'TTA view scale {", ".join(f"{r:g}" for r in outside)} lies '
                            f'outside the training scale range {span[0]:.2f}-{span[1]:.2f} '
                            'of the test scale')
    return problems


def training_flip_problem(cfg: Config) -> Optional[str]:
    """Say so when the training pipeline flips images horizontally although a data set
    declares flipped images unnatural (``horizontal_flip_natural=False``)."""
    if training_flips(cfg) and not flip_natural(cfg):
        return (f'the training pipeline flips images horizontally, but the data set '
                f'declares {HFLIP_NATURAL_KEY}=False (flipped images do not occur)')
    return None
