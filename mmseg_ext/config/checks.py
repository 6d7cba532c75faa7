"""The checks made on a config before any runner is built: one home for all of them.

Everything that would otherwise fail deep inside mmengine after minutes of set-up, or
worse run with a wrong meaning and exit 0, is checked here and raised as one domain
error:

* ``--cfg-options`` that name a missing key or put text where the config has a number
  (:func:`check_cfg_options`);
* run settings out of range (iterations, batch size) and components that need compiled
  ops this install lacks (:func:`check_run_settings`, :func:`check_compiled_ops`);
* pipeline sizes that are not positive (``scale=(0, 0)``, :func:`check_pipeline_sizes`);
* a local pretrained file that does not exist (:func:`check_weights_exist`);
* a ``load_from`` or resumed checkpoint that does not fit the model
  (:func:`check_load_from`, :func:`check_resume`, :func:`check_fits_config`): mmengine
  loads those with ``strict=False`` and would train or test a partly loaded model.

Training (``training.runner``), inference and the workflows import these; this module
imports only the floors below the stages.
"""
from __future__ import annotations

import logging
import os.path as osp
from typing import Any, Optional

from mmengine.config import Config
from mmengine.logging import print_log

from ..models.weights_catalog import pretrained_paths, weights_for_file
from ..utils.checkpoint import read_fitting_checkpoint
from ..utils.compiled_ops import HOW_TO_GET_OPS, has_compiled_ops, missing_ops
from ..utils.errors import (
    ConfigError,
    DataError,
    InvalidArgumentError,
    MissingWeightsError,
)


def check_fits_config(cfg: Config, checkpoint: str, config: str = 'the config',
                      hint: str = '') -> dict:
    """Check ``checkpoint`` against the segmentor of ``cfg`` (inside a TTA wrapper when
    ``cfg.model`` is one) before any runner is built, so that a refusal leaves nothing
    behind (no work dir, no log). Returns the checkpoint.

    Raises:
        CheckpointError: as :func:`read_fitting_checkpoint`.
    """
    from .model import build_bare_model
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


def check_data_roots(cfg: Config, config: str = 'the config',
                     loaders: tuple = ('train_dataloader', 'val_dataloader')) -> None:
    """Refuse a data set whose ``data_root`` is not a folder, before anything is
    written: the message names the config key, where the data set would fail only
    once the runner has made its work dir.

    Raises:
        DataError: ``<config>: train_dataloader.dataset.data_root is <path>, which is not
            a folder (relative paths start at the current folder, <cwd>)``.
    """
    import os

    from ..utils.dataset_configs import dataset_nodes
    for loader in loaders:
        node = cfg.get(loader)
        if not isinstance(node, dict):
            continue
        for ds in dataset_nodes(node.get('dataset')):
            root = ds.get('data_root')
            if root and isinstance(root, str) and not osp.isdir(root):
                where = '' if osp.isabs(root) else \
                    f' (a relative path starts at the current folder, {os.getcwd()})'
                raise DataError(f'{config}: {loader}.dataset data_root is {root}, which is '
                                f'not a folder{where}; set it with --cfg-options '
                                f'{loader}.dataset.data_root=...')


def checkpoint_pointer(work_dir: str) -> str:
    """The checkpoint that ``<work_dir>/last_checkpoint`` names (``''`` without the file),
    read as mmengine's ``find_latest_checkpoint`` reads it, but checked first: a FIFO,
    socket, device or folder there is never opened (it would block the reader), and an
    empty file is named instead of becoming the path ``''``.

    Raises:
        DataError: naming the pointer file and its problem.
    """
    from ..utils.readers import read_text, stat_problem
    pointer = osp.join(work_dir, 'last_checkpoint')
    if not osp.lexists(pointer):
        return ''
    problem = stat_problem(pointer)
    if problem:
        raise DataError(f'{pointer}: {problem}, where training keeps the name of its last '
                        'checkpoint; remove it, or resume in another work dir')
    target = read_text(pointer, 'last_checkpoint pointer').strip()
    if not target:
        raise DataError(f'{pointer}: empty (names no checkpoint to resume); remove it, or '
                        'resume in another work dir')
    if len(target.splitlines()) > 1:
        raise DataError(f'{pointer}: holds {len(target.splitlines())} lines; expected one '
                        'checkpoint path')
    if not osp.isfile(target):
        raise DataError(f'{pointer}: names {target}, which is not a file (deleted or '
                        'moved?); remove the pointer to train from the start, or resume in '
                        'another work dir')
    return target


def check_resume(cfg: Config, config: str = 'the config') -> None:
    """Refuse ``--resume`` when the work dir's latest checkpoint is of another model
    (the config changed since): mmengine would resume it partly.

    Raises:
        CheckpointError: as :func:`read_fitting_checkpoint`.
    """
    if not cfg.get('resume') or not cfg.get('work_dir'):
        return
    # what mmengine resumes: load_from when it is set, else the work dir's latest
    latest = cfg.get('load_from') or checkpoint_pointer(cfg.work_dir)
    if latest and '://' not in str(latest):
        check_fits_config(cfg, latest, config, hint='resume it with the config that wrote '
                          'it, or train in another work directory')


_MISSING = object()


def _lookup(node, parts):
    """Walk ``parts`` of a dotted key through dicts and lists; ``(value, depth reached)``
    with ``_MISSING`` when a part is absent."""
    for depth, part in enumerate(parts):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, (list, tuple)) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING, depth
    return node, len(parts)


def check_cfg_options(cfg: Config, options: dict, path: str) -> None:
    """Refuse ``--cfg-options`` that cannot mean what they say, before the merge.

    * a key whose parent does not exist in the config (``model.backbonee.depth``): one
      line naming the key and the first missing part;
    * text where the config has a number, a flag or a list (``num_classes=abc``,
      ``align_corners=ture``): one line naming the key and both values.

    * a new argument of a registered component that its class does not take
      (``model.decode_head.num_clases=5``, ``train_cfg.max_iter=3``,
      ``optim_wrapper.optimizer.lrr=5``: one line naming the class and argument).

    Another new leaf in an existing dict is allowed (configs often leave optional keys
    unset) and logged as a warning, since a misspelt leaf of a dict without a known
    type (``env_cfg.cudnn_benchmarkk``) would otherwise be ignored silently.

    Raises:
        InvalidArgumentError: of ``cfg_options``.
    """
    root = cfg.to_dict()
    for key, value in options.items():
        parts = key.split('.')
        old, depth = _lookup(root, parts)
        if old is _MISSING and depth == len(parts) - 2 and depth > 0:
            # a missing dict that its component takes as an argument
            # (`<loader>.dataset.metainfo.classes=...`): the merge makes it
            holder, _ = _lookup(root, parts[:depth])
            if isinstance(holder, dict) and component_takes(holder, parts[depth]):
                continue
        if old is _MISSING and depth < len(parts) - 1:
            missing = '.'.join(parts[:depth + 1])
            raise InvalidArgumentError('cfg_options', f'{key}: {path} has no {missing}')
        if old is _MISSING:
            parent, _ = _lookup(root, parts[:-1])
            takes = component_takes(parent, parts[-1]) if isinstance(parent, dict) else None
            if takes is False:
                raise InvalidArgumentError('cfg_options', f'{key}: {parent["type"]} has no '
                                           f'argument {parts[-1]!r}')
            if takes is None:
                print_log(f'--cfg-options {key} adds a key that {path} does not set (check '
                          'the spelling)', logger='current', level=logging.WARNING)
            continue
        if old is None or value is None:
            continue
        # text where the config has a number, a flag or a list: a typo or a value that
        # did not parse (num_classes=abc, align_corners=ture)
        wrong = isinstance(value, str) and isinstance(old, (bool, int, float, list, tuple))
        if wrong:
            raise InvalidArgumentError('cfg_options', f'{key}={value!r}: {path} has '
                                       f'{old!r} there ({type(old).__name__}), got a '
                                       f'{type(value).__name__}')


def component_takes(node: dict, name: str) -> Optional[bool]:
    """Whether the registered component a config dict builds (``node['type']``) accepts
    the argument ``name``: its ``__init__`` names it, or passes ``**kwargs`` on to a
    base class that does. ``None`` when that cannot be told (no or unknown type, or a
    ``**kwargs`` that goes nowhere we can see)."""
    import inspect

    from mmengine.registry import DefaultScope
    kind = node.get('type')
    if not isinstance(kind, str):
        return None
    cls = None
    from mmseg.registry import DATASETS, HOOKS, LOOPS, METRICS, MODELS, OPTIMIZERS, TRANSFORMS
    with DefaultScope.overwrite_default_scope('mmseg'):
        # loops (train_cfg.max_iter) and optimizers (optim_wrapper.optimizer.lrr) too;
        # not optimizer wrappers or schedulers, whose builders take keys of their own
        # (paramwise_cfg, convert_to_iter_based)
        for registry in (MODELS, DATASETS, TRANSFORMS, METRICS, HOOKS, LOOPS, OPTIMIZERS):
            try:
                cls = registry.get(kind)
            except (KeyError, TypeError):
                cls = None
            if cls is not None:
                break
    if not inspect.isclass(cls):
        return None
    for klass in cls.__mro__:
        init = klass.__dict__.get('__init__')
        if init is None:
            continue
        try:
            params = inspect.signature(init).parameters
        except (TypeError, ValueError):
            return None
        if name in params:
            return True
        if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
            return False
        if klass is object or klass.__module__.startswith('torch.'):
            return None
    return None


#: run settings that must be positive, and the smallest value each may take
_POSITIVE = {'train_cfg.max_iters': 1, 'train_cfg.max_epochs': 1,
             'train_cfg.val_interval': 1, 'train_dataloader.batch_size': 1,
             'val_dataloader.batch_size': 1, 'test_dataloader.batch_size': 1,
             'train_dataloader.num_workers': 0, 'val_dataloader.num_workers': 0,
             'test_dataloader.num_workers': 0}


def check_run_settings(cfg: Config, path: str, options: dict) -> None:
    """Iteration counts, batch sizes and worker counts in range before anything runs
    (``train_cfg.max_iters=-5`` used to exit 0 with nothing trained).

    Raises:
        InvalidArgumentError: the bad value came from ``cfg_options``.
        ConfigError: it is in the config file.
    """
    root = cfg.to_dict()
    for key, lo in _POSITIVE.items():
        value, _ = _lookup(root, key.split('.'))
        if value is _MISSING or value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < lo:
            problem = f'{key} is {value!r}; it must be an integer >= {lo}'
            if key in options:
                raise InvalidArgumentError('cfg_options', problem)
            raise ConfigError(f'{path}: {problem}')


#: top-level pipeline variables and the loaders that copy them when a config is read
_PIPELINE_VARIABLES = {'train_pipeline': ('train_dataloader',),
                       'val_pipeline': ('val_dataloader',),
                       'test_pipeline': ('test_dataloader', 'val_dataloader')}


def check_pipeline_variable_options(cfg: Config, options: dict) -> None:
    """Refuse an override of a pipeline variable (``test_pipeline.1.scale=...``) that
    nothing reads: the loaders copied the variable when the config file was read, so
    the tools, which run the loaders' pipelines, would ignore it with exit 0.

    Raises:
        InvalidArgumentError: naming the key and the keys to override instead.
    """
    for key in options:
        var, _, rest = key.partition('.')
        loaders = [name for name in _PIPELINE_VARIABLES.get(var, ())
                   if ((cfg.get(name) or {}).get('dataset') or {}).get('pipeline')]
        if loaders:
            instead = ' and '.join(f'{name}.dataset.pipeline' + (f'.{rest}' if rest else '')
                                   for name in loaders)
            raise InvalidArgumentError(
                'cfg_options', f'{key}: the config\'s {var} was copied into the data '
                f'loaders when the config was read, so changing it changes nothing; '
                f'override {instead} instead')


#: sizes of pipeline steps that must be positive numbers (one, or a pair/list of them)
_PIPELINE_SIZES = ('scale', 'scale_factor', 'crop_size', 'size', 'size_divisor',
                   'ratio_range', 'img_scale')


def _pipelines(node, where: str):
    """Every list of pipeline steps in a config tree: ``(key path, steps)``. A list is
    a pipeline when it holds dicts with a ``type`` (``TestTimeAug``'s ``transforms`` is
    a list of such lists)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _pipelines(value, f'{where}.{key}' if where else str(key))
    elif isinstance(node, (list, tuple)):
        if node and all(isinstance(s, dict) and 'type' in s for s in node):
            yield where, node
        for i, value in enumerate(node):
            yield from _pipelines(value, f'{where}.{i}')


def _positive_sizes(value) -> bool:
    """A positive number, or a non-empty (nested) list or mapping of them
    (albumentations' ``Affine(scale={'x': ..., 'y': ...})``)."""
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return bool(value) and all(_positive_sizes(v) for v in value)
    return not isinstance(value, bool) and isinstance(value, (int, float)) and value > 0


def check_pipeline_sizes(cfg: Config, path: str, options: dict) -> None:
    """Every size a pipeline step is given (``scale``, ``scale_factor``, ``crop_size``,
    Pad's ``size``, ...) is a positive number or a list of them (``None`` means unset),
    so a zero or negative scale is named as the config's value, not as a failure of
    the first image it meets.

    Raises:
        InvalidArgumentError: the bad value came from ``cfg_options``.
        ConfigError: it is in the config file.
    """
    from ..utils.readers import MAX_PIXELS_ENV, max_pixels
    cap = max_pixels()
    for where, steps in _pipelines(cfg.to_dict(), ''):
        for i, step in enumerate(steps):
            for name in _PIPELINE_SIZES:
                value = step.get(name)
                if value is None:
                    continue
                key = f'{where}.{i}.{name}'
                if not _positive_sizes(value):
                    problem = (f'{key} is {value!r} ({step.get("type")}); it must be a '
                               'positive number or a list of them')
                elif name in _OUTPUT_SIZES and _pixels(value) > cap:
                    # an image of that size would be allocated for every sample
                    problem = (f'{key} is {value!r} ({step.get("type")}): '
                               f'{_pixels(value):,} pixels, beyond the cap of {cap:,} '
                               f'(the environment variable {MAX_PIXELS_ENV} raises it)')
                else:
                    continue
                if any(key == k or key.startswith(k + '.') for k in options):
                    raise InvalidArgumentError('cfg_options', problem)
                raise ConfigError(f'{path}: {problem}')


#: the pipeline sizes that are an output image's size in pixels, (w, h) or (h, w)
_OUTPUT_SIZES = ('scale', 'crop_size', 'size', 'img_scale')


def _pixels(value) -> int:
    """The most pixels a size (a pair, or a list of pairs) can make: the product of a
    pair (with ``keep_ratio`` the image fits inside it); 0 for another form."""
    if isinstance(value, (list, tuple)) and len(value) == 2 \
            and all(isinstance(v, (int, float)) for v in value):
        return int(value[0]) * int(value[1])
    if isinstance(value, (list, tuple)):
        return max((_pixels(v) for v in value), default=0)
    return 0


def check_compiled_ops(cfg: Config, path: str) -> None:
    """Refuse, in one line, a model that needs mmcv ops this install lacks.

    Raises:
        ConfigError: naming the first such component, its op and how to get it.
    """
    if 'model' not in cfg:
        return
    needed = missing_ops(cfg.model)
    if needed and not has_compiled_ops():
        where, kind, ops = needed[0]
        raise ConfigError(f"{path}: {where} ({kind}) needs mmcv's compiled op {ops}, "
                          f'which this install lacks (mmcv without mmcv._ext). Fix: '
                          f'{HOW_TO_GET_OPS}')


def check_weights_exist(model_cfg: Any, config: str = 'the config') -> None:
    """Raise :class:`MissingWeightsError` for the first local weights file that is absent.

    The error names the registry entry that fetches the file (when there is one) and
    the config setting that trains without it.
    """
    for where, path in pretrained_paths(model_cfg):
        if osp.isfile(osp.expanduser(path)):
            continue
        known = weights_for_file(path)
        override = f'{where}=None' if known is None else known.override
        if known is None and where.endswith('.checkpoint'):
            override = f'{where.rsplit(".", 1)[0]}=None'
        if where.endswith('.checkpoint_path'):  # a TimmEncoder
            override = f'{where.rsplit(".", 1)[0]}.pretrained=False'
        raise MissingWeightsError(path, known.name if known else '', override)


def _raise(problem: str, keys, options: dict, path: str) -> None:
    """An :class:`InvalidArgumentError` of ``cfg_options`` when one of ``keys`` (or a
    key above them) came from ``options``, else a :class:`ConfigError` of the file."""
    if any(key == k or key.startswith(k + '.') or k.startswith(key + '.')
           for key in keys for k in options):
        raise InvalidArgumentError('cfg_options', problem)
    raise ConfigError(f'{path}: {problem}')


def check_dataset_metainfo(cfg: Config, path: str, options: dict) -> None:
    """Every data set's ``metainfo`` is a dict and its ``classes`` a non-empty list of
    names, so a value of another type (``metainfo=[1, 2]``) is named as the config's
    value instead of failing deep in the data set.

    Raises:
        InvalidArgumentError: the value came from ``cfg_options``.
        ConfigError: it is in the config file.
    """
    from .tta import config_datasets
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        for index, (_, ds) in enumerate(config_datasets(cfg, (loader,))):
            key = f'{loader}.dataset' if index == 0 else f'{loader}.dataset (part {index})'
            meta = ds.get('metainfo')
            if meta is None:
                continue
            if not isinstance(meta, dict):
                _raise(f'{key}.metainfo is {meta!r}, not a dict (metainfo=dict(classes=...))',
                       [f'{loader}.dataset.metainfo'], options, path)
            classes = meta.get('classes')
            if classes is None:
                continue
            if not isinstance(classes, (list, tuple)) or not classes or not all(
                    isinstance(c, str) and c.strip() for c in classes):
                _raise(f'{key}.metainfo.classes is {classes!r}: expected a non-empty list '
                       'of class names', [f'{loader}.dataset.metainfo'], options, path)
            if len(set(classes)) != len(classes):
                twice = sorted({c for c in classes if list(classes).count(c) > 1})
                _raise(f'{key}.metainfo.classes names {twice} twice',
                       [f'{loader}.dataset.metainfo'], options, path)


def _head_classes(model: Any) -> Optional[int]:
    """``num_classes`` of the decode head of a model config (inside a wrapper's
    ``segmentor``/``module``), None when it does not say."""
    while isinstance(model, dict) and 'decode_head' not in model:
        model = model.get('segmentor') or model.get('module')
    head = model.get('decode_head') if isinstance(model, dict) else None
    if isinstance(head, (list, tuple)):  # a cascade: the last head predicts
        head = head[-1] if head else None
    value = head.get('num_classes') if isinstance(head, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def check_class_count(cfg: Config, path: str, options: dict) -> None:
    """The model predicts as many classes as each data set names (a 2-class subset
    with a 29-class head would only fail when the metric compares the stacks, after the
    whole test).

    Raises:
        InvalidArgumentError: a value from ``cfg_options`` made them differ.
        ConfigError: the config file does.
    """
    from .tta import config_datasets, dataset_classes
    heads = _head_classes(cfg.get('model'))
    if heads is None:
        return
    for loader, ds in config_datasets(cfg):
        classes = tuple(dataset_classes(ds))
        if classes and len(classes) != heads:
            shown = ', '.join(classes[:6]) + (', ...' if len(classes) > 6 else '')
            _raise(f'{loader}.dataset has {len(classes)} classes ({shown}), but the model '
                   f'predicts {heads} (model.decode_head.num_classes)',
                   [f'{loader}.dataset.metainfo', 'model'], options, path)


def check_test_threshold(cfg: Config, path: str, options: dict) -> None:
    """``model.test_cfg.threshold`` (a number, a list or ``{class: number}``) holds
    probabilities in [0, 1], checked when the config is read (class names and the
    list's length are checked when the model is built).

    Raises:
        InvalidArgumentError: the value came from ``cfg_options``.
        ConfigError: it is in the config file.
    """
    from collections.abc import Mapping

    from ..utils.per_class import per_class_values
    model = cfg.get('model')
    while isinstance(model, dict) and 'test_cfg' not in model and (
            'segmentor' in model or 'module' in model):
        model = model.get('segmentor') or model.get('module')
    test_cfg = model.get('test_cfg') if isinstance(model, dict) else None
    spec = test_cfg.get('threshold') if isinstance(test_cfg, dict) else None
    if spec is None:
        return
    if isinstance(spec, Mapping):
        names = [str(k) for k in spec]
    elif isinstance(spec, (list, tuple)):
        names = [str(i) for i in range(len(spec))]
    else:
        names = ['all']
    try:
        per_class_values(spec, names, 'model.test_cfg.threshold')
    except ConfigError as exc:
        _raise(str(exc), ['model.test_cfg.threshold'], options, path)


def check_checkpoint_classes(cfg: Config, checkpoint: dict, config: str,
                             path: str, loaders=('test_dataloader',)) -> None:
    """The classes a checkpoint was trained on (``meta.dataset_meta.classes``, which
    mmengine saves) are the config's data set's, in the same order: otherwise output
    channel ``k`` would be scored (or named) as another class, with exit 0.

    Raises:
        ConfigError: naming the first position where they differ.
    """
    from .tta import config_classes
    meta = (checkpoint or {}).get('meta') or {}
    trained = (meta.get('dataset_meta') or {}).get('classes') if isinstance(meta, dict) \
        else None
    ours = config_classes(cfg, loaders)
    if not trained or not ours:
        return
    trained = tuple(str(c) for c in trained)
    if trained == ours:
        return
    if len(trained) != len(ours):
        raise ConfigError(f'{config}: its data set names {len(ours)} classes, but {path} was '
                          f'trained on {len(trained)} ({", ".join(trained[:6])}'
                          f'{", ..." if len(trained) > 6 else ""})')
    k = next(i for i, (a, b) in enumerate(zip(trained, ours)) if a != b)
    raise ConfigError(f'{config}: class {k} of its data set is {ours[k]!r}, but {path} was '
                      f'trained with {trained[k]!r} there (another class order): its '
                      'channels would be scored as the wrong classes; give the data set '
                      'the class list in the order the checkpoint was trained with')
