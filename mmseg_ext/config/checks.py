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
import math
import os.path as osp
from collections.abc import Mapping
from typing import Any, Iterator, Optional, Sequence, Tuple

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
from .components import (
    SETTINGS_DICTS,
    component_takes,
    find_class,
    new_component_problem,
    place_kind,
    settings_keys,
    value_problem,
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
        DataError: ``<config>: train_dataloader.dataset.datasets.1.data_root is <path>,
            which is not a folder (a relative path starts at the current folder, <cwd>)``:
            the key of the data set itself, inside any wrapper.
    """
    import os

    from ..utils.dataset_configs import dataset_node_paths
    for loader in loaders:
        node = cfg.get(loader)
        if not isinstance(node, dict):
            continue
        for key, ds in dataset_node_paths(node.get('dataset'), f'{loader}.dataset'):
            root = ds.get('data_root')
            if root and isinstance(root, str) and not osp.isdir(root):
                where = '' if osp.isabs(root) else \
                    f' (a relative path starts at the current folder, {os.getcwd()})'
                raise DataError(f'{config}: {key}.data_root is {root}, which is not a '
                                f'folder{where}; set {key}.data_root to the data\'s folder')


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
    merged = _merged(root, options)
    for key, value in options.items():
        parts = key.split('.')
        if '_delete_' in parts:
            continue  # mmengine's "replace this dict": what it leaves is checked below
        old, depth = _lookup(root, parts)
        if old is _MISSING and 0 < depth < len(parts) and _lookup(root, parts[:depth])[0] \
                is None:
            depth -= 1  # a dict the config leaves None (clip_grad=None) is made anew
        if old is _MISSING and depth < len(parts) - 1:
            level = _first_missing_level(root, parts, depth, options)
            if level is None:
                continue  # the merge makes the missing dicts; checked below
            missing = '.'.join(parts[:level + 1])
            hint = ''
            if 'custom_keys' in parts[:level]:
                hint = (' (a custom_keys entry is one name, set key by key: '
                        f'{".".join(parts[:parts.index("custom_keys") + 2])}.lr_mult=...; '
                        'a module name with dots cannot be given on the command line, '
                        'set it in the config)')
            elif level == len(parts) - 2:
                hint = (f' (to add it, give its type too: {missing}.type=...; plain '
                        f'settings dicts {sorted(PLAIN_DICT_ARGUMENTS)} need none)')
            raise InvalidArgumentError('cfg_options', f'{key}: {path} has no {missing}'
                                       + hint)
        if old is _MISSING:
            _check_new_argument(key, value, root, merged, options, path)
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
    if merged is not None:
        _check_typed_components(root, merged, options)


def _check_new_argument(key: str, value: Any, root: dict, merged: Optional[dict],
                        options: dict, path: str) -> None:
    """A key that ``--cfg-options`` adds to an existing dict: an argument the
    component takes (of the type it will have after the merge, when the options change
    it), with a value of its kind; elsewhere a warning, since a misspelt key of a dict
    without a type would be ignored silently."""
    parts = key.split('.')
    holder = parts[:-1]
    parent, _ = _lookup(merged if merged is not None else root, holder)
    if not isinstance(parent, dict) or place_kind(holder) != 'component':
        parent = None
    takes = component_takes(parent, parts[-1]) if parent is not None else None
    if takes is False:
        raise InvalidArgumentError('cfg_options', f'{key}: {parent["type"]} has no '
                                   f'argument {parts[-1]!r}')
    if takes and parts[-1] != 'type':
        cls, _ = find_class(parent['type'])
        problem = value_problem(cls, parts[-1], value)
        if problem:
            raise InvalidArgumentError('cfg_options', f'{".".join(holder)}.{problem}')
    if takes is None and not _checked_settings(parts) \
            and '.'.join(holder) not in settings_keys():  # check_runner_settings
        print_log(f'--cfg-options {key} adds a key that {path} does not set (check the '
                  'spelling)', logger='current', level=logging.WARNING)


#: arguments that are plain dicts of settings, not components with a ``type``: one of
#: their keys may be set on the command line when the config leaves them out
#: (``optim_wrapper.clip_grad.max_norm=1``, ``<loader>.dataset.metainfo.classes=...``)
PLAIN_DICT_ARGUMENTS = SETTINGS_DICTS


def _first_missing_level(root: dict, parts: list, depth: int,
                        options: dict) -> Optional[int]:
    """Where ``--cfg-options`` cannot create the dicts that ``parts`` needs below the
    existing level ``depth`` (the index of the first part that cannot be made), or None
    when the merge may make them all. A level may be made when the same options give
    its ``type`` (a new component, ``default_hooks.early_stopping.type=...``), when it
    is a plain settings dict (:data:`PLAIN_DICT_ARGUMENTS`) or an entry of
    ``custom_keys`` (any module name), and its holder does not refuse it."""
    for k in range(depth, len(parts) - 1):
        prefix = parts[:k + 1]
        if k == depth:
            holder, _ = _lookup(root, prefix[:-1])
            if not isinstance(holder, dict):
                return k
        else:  # made by the same options
            holder_type = options.get('.'.join(prefix[:-1]) + '.type')
            holder = {'type': holder_type} if isinstance(holder_type, str) else {}
        name = prefix[-1]
        typed = '.'.join(prefix) + '.type' in options
        if typed or name in PLAIN_DICT_ARGUMENTS:
            if component_takes(holder, name) is False:
                return k
        elif not (k > 0 and prefix[-2] == 'custom_keys'):
            return k
    return None


def _checked_settings(parts: list) -> bool:
    """Whether a key lies in a settings dict whose keys a check of this module knows
    (:func:`check_clip_grad`, :func:`check_paramwise_cfg`): no spelling warning there."""
    return len(parts) > 2 and parts[0] == 'optim_wrapper' \
        and parts[1] in ('clip_grad', 'paramwise_cfg')


def _merged(root: dict, options: dict) -> Optional[dict]:
    """The config tree as it will be after ``options`` are merged (None when they
    cannot be: the loader reports that)."""
    try:
        merged = Config(root)
        merged.merge_from_dict(options)
        return merged.to_dict()
    except Exception:  # noqa: BLE001
        return None


def _check_typed_components(root: dict, merged: dict, options: dict) -> None:
    """Check every component whose ``type`` the options set (a new one, or another
    type for an existing one) as mmengine will build it: registered where it is built,
    its arguments taken (those the config kept from the type it replaces too), required
    ones given, numbers where numbers go. Settings dicts with a ``type`` of their own
    (``clip_grad.type=value``) are left to their checks."""
    for key in options:
        if not key.endswith('.type'):
            continue
        place = key[:-len('.type')]
        parts = place.split('.')
        if place_kind(parts) == 'settings':
            continue
        node, _ = _lookup(merged, parts)
        if not isinstance(node, dict):
            continue
        before, _ = _lookup(root, parts)
        replaced = before.get('type') if isinstance(before, dict) and \
            f'{place}._delete_' not in options else None
        kept = {k for k in node if f'{place}.{k}' not in options} if replaced else set()
        problem = new_component_problem(place, node, kept_from=replaced, kept=kept)
        if problem:
            raise InvalidArgumentError('cfg_options', problem)



#: run settings that must be positive, and the smallest value each may take
_POSITIVE = {'train_cfg.max_iters': 1, 'train_cfg.max_epochs': 1,
             'train_cfg.val_interval': 1, 'train_dataloader.batch_size': 1,
             'val_dataloader.batch_size': 1, 'test_dataloader.batch_size': 1,
             'train_dataloader.num_workers': 0, 'val_dataloader.num_workers': 0,
             'test_dataloader.num_workers': 0}

#: the largest count a run setting may take (2**31 - 1): mmengine turns the time left
#: (seconds per iteration times iterations left) into a ``timedelta``, which overflows
#: for counts near 2**63 after the first iteration; no run counts that far
_COUNT_LIMIT = 2 ** 31 - 1


def _check_loader_workers(cfg: Config, path: str, options: dict) -> None:
    """``persistent_workers`` and ``prefetch_factor`` need worker processes: torch's
    DataLoader refuses them with ``num_workers=0`` only when the runner builds it."""
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        node = cfg.get(loader)
        if not isinstance(node, Mapping) or node.get('num_workers', 0) != 0:
            continue
        for name in ('persistent_workers', 'prefetch_factor'):
            if node.get(name):
                _raise(f'{loader}.{name} is {node[name]!r}, but {loader}.num_workers is 0: '
                       f'{name} needs worker processes (set num_workers >= 1, or '
                       f'{name}={"False" if name == "persistent_workers" else "None"})',
                       [f'{loader}.{name}', f'{loader}.num_workers'], options, path)


def check_run_settings(cfg: Config, path: str, options: dict) -> None:
    """Iteration counts, batch sizes and worker counts in range before anything runs
    (``train_cfg.max_iters=-5`` used to exit 0 with nothing trained; ``2**63 - 1`` ended
    in an ``OverflowError`` after the first iteration).

    Raises:
        InvalidArgumentError: the bad value came from ``cfg_options``.
        ConfigError: it is in the config file.
    """
    root = cfg.to_dict()
    for key, lo in _POSITIVE.items():
        value, _ = _lookup(root, key.split('.'))
        if value is _MISSING or value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or \
                not lo <= value <= _COUNT_LIMIT:
            problem = (f'{key} is {value!r}; it must be an integer from {lo} to '
                       f'{_COUNT_LIMIT}')
            if key in options:
                raise InvalidArgumentError('cfg_options', problem)
            raise ConfigError(f'{path}: {problem}')
    _check_loader_workers(cfg, path, options)
    _check_log_level_and_scope(cfg, path, options)


def check_finite_settings(cfg: Config, path: str, options: dict) -> None:
    """Every number of the config is finite: a NaN or infinite loss weight, learning
    rate or scheduler factor trained NaN weights with exit 0. (Made after the checks
    with a more specific message for the same value, such as the pipeline sizes.)

    Raises:
        InvalidArgumentError: the value came from ``options``.
        ConfigError: it is in the config file.
    """
    import math
    for dotted, value in _config_entries(cfg.to_dict()):
        if isinstance(value, float) and not math.isfinite(value):
            problem = f'{dotted} is {value}; a setting must be a finite number'
            if any(dotted == k or dotted.startswith(f'{k}.') for k in options):
                raise InvalidArgumentError('cfg_options', problem)
            raise ConfigError(f'{path}: {problem}')


def _config_entries(root: dict) -> Iterator[Tuple[str, Any]]:
    """``(dotted key, value)`` of every entry of a config's nested dicts and lists (list
    items by their index: ``param_scheduler.0.end``)."""
    stack = [((), root)]
    while stack:
        where, node = stack.pop()
        for key, value in (node.items() if isinstance(node, dict) else enumerate(node)):
            at = (*where, str(key))
            yield '.'.join(at), value
            if isinstance(value, (dict, list, tuple)):
                stack.append((at, value))


def _check_log_level_and_scope(cfg: Config, path: str, options: dict) -> None:
    """``log_level`` is a level of Python's ``logging`` (a name or a number) and
    ``default_scope`` a registry scope this install can import: mmengine reads both
    when it builds the runner, and a misspelt one ended in a ``KeyError`` traceback."""
    import importlib.util
    import logging
    problems = {}
    level = cfg.get('log_level', 'INFO')
    if isinstance(level, bool) or not isinstance(level, (int, str)) or (
            isinstance(level, str) and level not in logging.getLevelNamesMapping()):
        names = ', '.join(n for n in logging.getLevelNamesMapping() if n != 'WARN')
        problems['log_level'] = f'log_level is {level!r}; it must be one of {names}'
    scope = cfg.get('default_scope')
    if scope is not None:
        known = isinstance(scope, str) and scope and scope.isidentifier() and (
            scope == 'mmengine' or importlib.util.find_spec(scope) is not None)
        if known:
            try:
                known = importlib.util.find_spec(f'{scope}.registry') is not None
            except (ImportError, ValueError):
                known = False
        if not known:
            problems['default_scope'] = (f'default_scope is {scope!r}, not a registry '
                                         'scope this install can import (mmseg, '
                                         'mmengine, ...)')
    for key, problem in problems.items():
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
        if var not in _PIPELINE_VARIABLES and var not in read_top_level_keys() \
                and var not in cfg:
            raise InvalidArgumentError(
                'cfg_options', f'{key}: {var} is not a setting of the config, and '
                'nothing reads it (check the spelling)')
        if var not in _PIPELINE_VARIABLES and var not in read_top_level_keys():
            uses = _settings_holding(cfg, cfg.get(var)) if var in cfg else []
            instead = (f'; override the settings that took its value instead '
                       f'({", ".join(uses[:3])}{", ..." if len(uses) > 3 else ""})'
                       if uses else '')
            raise InvalidArgumentError(
                'cfg_options', f'{key}: nothing reads {var} once the config file is '
                'read (the file used it to write other settings, which keep the value '
                f'they got), so changing it changes nothing{instead}')


def check_top_level_spelling(cfg: Config, path: str) -> None:
    """Refuse a top-level name of the config that nothing reads and that is one typo
    away from a setting something reads (``train_dataloder``, ``val_evaluater``): the
    runner ignores it, so the run used the base config's value with exit 0. Names of
    the file's own variables (``crop_size``, ``test_pipeline``) are far from every
    setting and pass.

    Raises:
        ConfigError: naming the name and the setting it is close to.
    """
    import difflib
    known = sorted(read_top_level_keys())
    for key in cfg.keys():
        if key in known or key in _PIPELINE_VARIABLES or key.startswith('_'):
            continue
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.85)
        if close:
            raise ConfigError(f'{path}: {key} is not a setting anything reads once the '
                              f'config is read, and it is one typo away from {close[0]}, '
                              f'which is: the run would ignore it; rename it to {close[0]} '
                              '(or give a variable of the file a name further from the '
                              'settings)')


#: top-level keys the tools read themselves, besides the runner's arguments
_TOOL_TOP_LEVEL_KEYS = frozenset({'tta_model', 'tta_pipeline', 'tta_views',
                                  'find_unused_parameters', 'model_wrapper_cfg',
                                  'load_from_strict', 'dist_params'})


def read_top_level_keys() -> frozenset:
    """The top-level config keys something reads after the file is read: the arguments
    of the installed mmengine ``Runner`` (``Runner.from_cfg`` passes each by name) and
    :data:`_TOOL_TOP_LEVEL_KEYS`. Any other top-level name is a variable the file used
    while it was read."""
    import inspect

    from mmengine.runner import Runner
    return frozenset(inspect.signature(Runner.__init__).parameters) - {'self'} \
        | _TOOL_TOP_LEVEL_KEYS


def _settings_holding(cfg: Config, value) -> list:
    """Dotted keys of the config whose value is ``value`` or, for text, starts with it
    (``train_dataloader.dataset.data_root`` for ``data_root``)."""
    if value is None or isinstance(value, (dict, list)) or value == '':
        return []

    def holds(item) -> bool:
        return type(item) is type(value) and item == value or isinstance(
            value, str) and isinstance(item, str) and item.startswith(value)
    return sorted(key for key, item in _config_entries(cfg.to_dict())
                  if '.' in key and holds(item))


#: sizes of pipeline steps that must be positive numbers (one, or a pair/list of them)
_PIPELINE_SIZES = ('scale', 'scales', 'scale_factor', 'crop_size', 'size', 'size_divisor',
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
    return not isinstance(value, bool) and isinstance(value, (int, float)) and value > 0 \
        and math.isfinite(value)


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
                elif name in _OUTPUT_SIZES and _step_pixels(step, name) > cap:
                    # an image of that size would be allocated for every sample
                    problem = (f'{key} is {value!r} ({step.get("type")}'
                               f'{_ratio_note(step, name)}): {_step_pixels(step, name):,} '
                               f'pixels, beyond the cap of {cap:,} (the environment '
                               f'variable {MAX_PIXELS_ENV} raises it)')
                elif name == 'scale_factor' and _largest(value) > MAX_SCALE_FACTOR:
                    problem = (f'{key} is {value!r} ({step.get("type")}): a resize by more '
                               f'than {MAX_SCALE_FACTOR:g} times each side')
                else:
                    continue
                if any(key == k or key.startswith(k + '.') for k in options):
                    raise InvalidArgumentError('cfg_options', problem)
                raise ConfigError(f'{path}: {problem}')
        _check_chained_sizes(where, steps, cap, path, options)


def _check_chained_sizes(where: str, steps: list, cap: int, path: str,
                         options: dict) -> None:
    """Follow the largest image a pipeline can make from step to step: a step that
    passes the cap by itself can pass it together with the ones before it (a resize to
    16384 a side, then a ``scale_factor`` of 64)."""
    from ..utils.readers import MAX_PIXELS_ENV
    bound: Optional[int] = None  # unknown: the image as read (capped when it is read)
    for i, step in enumerate(steps):
        bound = _pixels_after(step, bound)
        if bound is not None and bound > cap:
            chain = ', then '.join(str(s.get('type')) for s in steps[:i + 1])
            problem = (f'{where}: steps 0-{i} ({chain}) can make images of {bound:,} '
                       f'pixels together, beyond the cap of {cap:,} (the environment '
                       f'variable {MAX_PIXELS_ENV} raises it)')
            keys = [f'{where}.{j}' for j in range(i + 1)]
            if any(k == key or k.startswith(key + '.') or key.startswith(k + '.')
                   for k in options for key in keys):
                raise InvalidArgumentError('cfg_options', problem)
            raise ConfigError(f'{path}: {problem}')


def _pixels_after(step: dict, bound: Optional[int]) -> Optional[int]:
    """The most pixels an image can have after ``step`` when it has at most ``bound``
    before (None: not known from the config). A ``scale`` sets the size, a
    ``scale_factor`` multiplies it, a crop can only shrink it and a pad only grow it;
    ``TestTimeAug`` takes the largest of each stage's alternatives."""
    if not isinstance(step, dict):
        return bound
    if step.get('type') == 'TestTimeAug' and isinstance(step.get('transforms'), list):
        for stage in step['transforms']:
            alternatives = stage if isinstance(stage, list) else [stage]
            after = [_pixels_after(alt, bound) for alt in alternatives]
            bound = None if not after or any(a is None for a in after) else max(after)
        return bound
    for name in ('scale', 'scales', 'img_scale'):
        if _positive_sizes(step.get(name)):
            return _step_pixels(step, name)
    factor = step.get('scale_factor')
    if _positive_sizes(factor):
        if bound is None:
            return None
        if isinstance(factor, (list, tuple)) and len(factor) == 2 \
                and all(isinstance(f, (int, float)) for f in factor):
            return int(bound * factor[0] * factor[1])
        return int(bound * _largest(factor) ** 2)
    if bound is not None and _positive_sizes(step.get('crop_size')):
        return min(bound, _pixels(step['crop_size']))
    if bound is not None and _positive_sizes(step.get('size')):
        return max(bound, _pixels(step['size']))
    return bound


#: the pipeline sizes that are an output image's size in pixels, (w, h) or (h, w), an
#: edge ``s`` for ``(s, s)``, or a list of them (``RandomChoiceResize``'s ``scales``)
_OUTPUT_SIZES = ('scale', 'scales', 'crop_size', 'size', 'img_scale')
#: the largest ``scale_factor`` a pipeline may resize by (each side): the input's size is
#: not known when the config is read, so a factor is judged by itself
MAX_SCALE_FACTOR = 64.0


def _pixels(value) -> int:
    """The most pixels a size can make: ``w * h`` of a pair (with ``keep_ratio`` the
    image fits inside it), ``s * s`` of one edge, the largest of a list of sizes."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, (int, float)):
        return int(value) * int(value)
    if isinstance(value, (list, tuple)) and len(value) == 2 \
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return int(value[0]) * int(value[1])
    if isinstance(value, (list, tuple)) and len(value) == 1:
        return _pixels(value[0])
    if isinstance(value, (list, tuple)):
        return max((_pixels(v) for v in value), default=0)
    return 0


def _largest(value) -> float:
    """The largest number in a (nested) size."""
    if isinstance(value, (list, tuple)):
        return max((_largest(v) for v in value), default=0.0)
    if isinstance(value, dict):
        return _largest(list(value.values()))
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        else 0.0


def _step_pixels(step: dict, name: str) -> int:
    """The most pixels ``step``'s ``name`` size can make, times the square of the
    largest ``ratio_range`` (``RandomResize``) that scales it."""
    pixels = _pixels(step.get(name))
    ratio = step.get('ratio_range') if name == 'scale' else None
    if ratio is not None and _positive_sizes(ratio):
        pixels = int(pixels * _largest(ratio) ** 2)
    return pixels


def _ratio_note(step: dict, name: str) -> str:
    ratio = step.get('ratio_range') if name == 'scale' else None
    return f', ratio_range {ratio!r}' if ratio is not None and _positive_sizes(ratio) else ''


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


def _loader_datasets(cfg: Config):
    """``(dotted key, data set dict)`` of every data set of the three loaders, wrappers
    and wrapped alike (``train_dataloader.dataset.datasets.1``)."""
    from ..utils.dataset_configs import dataset_node_paths
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset = (cfg.get(loader) or {}).get('dataset')
        yield from dataset_node_paths(dataset, f'{loader}.dataset')


def check_dataset_metainfo(cfg: Config, path: str, options: dict) -> None:
    """Every data set's ``metainfo`` is a dict and its ``classes`` a non-empty list of
    distinct names, so a value of another type (``metainfo=[1, 2]``) is named as the
    config's value instead of failing deep in the data set.

    Raises:
        InvalidArgumentError: the value came from ``cfg_options``.
        ConfigError: it is in the config file.
    """
    for key, ds in _loader_datasets(cfg):
        meta = ds.get('metainfo')
        if meta is None:
            continue
        where = f'{key}.metainfo'
        if not isinstance(meta, dict):
            _raise(f'{where} is {meta!r}, not a dict (metainfo=dict(classes=...))',
                   [where], options, path)
        classes = meta.get('classes')
        if classes is None:
            continue
        if not isinstance(classes, (list, tuple)) or not classes or not all(
                isinstance(c, str) and c.strip() for c in classes):
            _raise(f'{where}.classes is {classes!r}: expected a non-empty list of class '
                   'names', [where], options, path)
        if len(set(classes)) != len(classes):
            twice = sorted({c for c in classes if list(classes).count(c) > 1})
            _raise(f'{where}.classes names {twice} twice', [where], options, path)


def _model_heads(model: Any, path: str = 'model'):
    """``(dotted key, num_classes)`` of every head of a model config that names an int
    ``num_classes``: each decode head (every stage of a cascade) and auxiliary head,
    inside a wrapper's ``segmentor``/``module``."""
    if not isinstance(model, dict):
        return
    for inner in ('segmentor', 'module'):
        if isinstance(model.get(inner), dict):
            yield from _model_heads(model[inner], f'{path}.{inner}')
    for name in ('decode_head', 'auxiliary_head'):
        heads = model.get(name)
        listed = heads if isinstance(heads, (list, tuple)) else [heads]
        for i, head in enumerate(listed):
            value = head.get('num_classes') if isinstance(head, dict) else None
            if isinstance(value, int) and not isinstance(value, bool):
                key = f'{path}.{name}' + (f'.{i}' if isinstance(heads, (list, tuple)) else '')
                yield f'{key}.num_classes', value


def check_class_count(cfg: Config, path: str, options: dict) -> None:
    """Every head of the model (each decode head, every cascade stage, each auxiliary
    head) predicts as many classes as each data set names: a 2-class subset with a
    29-class head would only fail when the metric compares the stacks, after the whole
    test, and an auxiliary head of another count trains on wrong targets.

    Raises:
        InvalidArgumentError: a value from ``cfg_options`` made them differ.
        ConfigError: the config file does.
    """
    from .tta import dataset_classes
    heads = list(_model_heads(cfg.get('model')))
    if not heads:
        return
    for key, ds in _loader_datasets(cfg):
        if is_wrapper_only(ds):
            continue
        classes = tuple(dataset_classes(ds))
        for head_key, count in heads:
            if classes and len(classes) != count:
                shown = ', '.join(classes[:6]) + (', ...' if len(classes) > 6 else '')
                _raise(f'{key} has {len(classes)} classes ({shown}), but the model '
                       f'predicts {count} ({head_key})', [f'{key}.metainfo', head_key],
                       options, path)


def is_wrapper_only(ds: dict) -> bool:
    """A wrapper without a pipeline of its own: its classes are its members'."""
    from ..utils.dataset_configs import is_wrapper
    return is_wrapper(ds) and 'pipeline' not in ds


def check_test_threshold(cfg: Config, path: str, options: dict) -> None:
    """``test_cfg.threshold`` of the model (inside a wrapper's ``segmentor``/``module``
    too: a number, a list or ``{class: number}``) holds probabilities in [0, 1],
    checked when the config is read (class names and the list's length are checked
    when the model is built).

    Raises:
        InvalidArgumentError: the value came from ``cfg_options``.
        ConfigError: it is in the config file.
    """
    from collections.abc import Mapping

    from ..utils.per_class import per_class_values
    model, key = cfg.get('model'), 'model'
    while isinstance(model, dict):
        test_cfg = model.get('test_cfg')
        spec = test_cfg.get('threshold') if isinstance(test_cfg, dict) else None
        if spec is not None:
            where = f'{key}.test_cfg.threshold'
            if isinstance(spec, Mapping):
                odd = next((k for k in spec if not isinstance(k, str)), None)
                if odd is not None:
                    _raise(f'{where}: the keys of a threshold dict are class names, got '
                           f'{odd!r} (a list gives thresholds in class order)', [where],
                           options, path)
                names = list(spec)
            elif isinstance(spec, (list, tuple)):
                names = [str(i) for i in range(len(spec))]
            else:
                names = ['all']
            try:
                per_class_values(spec, names, where)
            except ConfigError as exc:
                _raise(str(exc), [where], options, path)
        inner = next((k for k in ('segmentor', 'module') if isinstance(model.get(k), dict)),
                     None)
        if inner is None:
            break
        model, key = model[inner], f'{key}.{inner}'


def check_checkpoint_classes(cfg: Config, checkpoint: dict, config: str,
                             path: str, loaders=('test_dataloader',)) -> None:
    """The classes a checkpoint was trained on (``meta.dataset_meta.classes``, which
    mmengine saves) are the config's data set's, in the same order: otherwise output
    channel ``k`` would be scored (or named) as another class, with exit 0.

    Raises:
        CheckpointError: the checkpoint's own class list is bad (not distinct names,
            or another count than the config's model predicts): naming ``path`` and
            ``meta.dataset_meta.classes``.
        ConfigError: naming the first position where they differ.
    """
    from ..utils.checkpoint import checkpoint_class_names
    from ..utils.errors import CheckpointError
    from .tta import config_classes
    trained = checkpoint_class_names(checkpoint, path)  # its own list checked first
    heads = [(key, n) for key, n in _model_heads(cfg.get('model')) if '.decode_head' in key]
    if trained and heads and heads[-1][1] != len(trained):  # the weights fit this model
        raise CheckpointError(f'{path}: meta.dataset_meta.classes names {len(trained)} '
                              f'classes ({", ".join(trained[:6])}'
                              f'{", ..." if len(trained) > 6 else ""}), but its weights '
                              f'predict {heads[-1][1]} ({heads[-1][0]} of {config})')
    ours = config_classes(cfg, loaders)
    if not trained or not ours:
        return  # the checkpoint does not say (another writer's meta): nothing to compare
    if trained == ours:
        return
    if len(trained) != len(ours):
        raise ConfigError(f'{config}: its data set names {len(ours)} classes, but {path} was '
                          f'trained on {len(trained)} ({", ".join(trained[:6])}'
                          f'{", ..." if len(trained) > 6 else ""})')
    k = next(i for i, (a, b) in enumerate(zip(trained, ours)) if a != b)
    why = 'another class order' if set(trained) == set(ours) else 'another class name'
    raise ConfigError(f'{config}: class {k} of its data set is {ours[k]!r}, but {path} was '
                      f'trained with {trained[k]!r} there ({why}): its channels would be '
                      'scored or named as the wrong classes; give the data set the class '
                      'list the checkpoint was trained with, in its order')


def model_test_cfg(model_cfg: Any) -> Optional[Mapping]:
    """The ``test_cfg`` dict of a model config (inside a wrapper's ``segmentor`` /
    ``module`` when the wrapper has none), None when there is none."""
    while isinstance(model_cfg, Mapping) and 'test_cfg' not in model_cfg and (
            'segmentor' in model_cfg or 'module' in model_cfg):
        model_cfg = model_cfg.get('segmentor') or model_cfg.get('module')
    test_cfg = model_cfg.get('test_cfg') if isinstance(model_cfg, Mapping) else None
    return test_cfg if isinstance(test_cfg, Mapping) else None


def check_test_cfg_classes(cfg: Any, config: str, loaders: Sequence[str],
                           options: Optional[Mapping] = None) -> None:
    """``model.test_cfg.classes``, when given, is the class list of the config's data set
    (the first of ``loaders`` that names one), in the same order.

    Raises:
        InvalidArgumentError: of ``cfg_options``, when an option set either list.
        ConfigError: naming ``config`` and the first difference.
    """
    from ..models.segmentors.postprocess import class_order_problem
    from .tta import config_classes, config_datasets
    given = (model_test_cfg(cfg.get('model')) or {}).get('classes')
    if not given or not isinstance(given, (list, tuple)):
        return
    ours = config_classes(cfg, loaders)
    if not ours:
        return
    loader = next(name for name, ds in config_datasets(cfg, loaders)
                  if config_classes(cfg, (name,)))
    problem = class_order_problem(given, ours, f'the class list of {loader}.dataset')
    if not problem:
        return
    if any(key == 'model' or 'test_cfg' in key.split('.') or 'metainfo' in key.split('.')
           or key in (loader, f'{loader}.dataset') for key in options or {}):
        raise InvalidArgumentError('cfg_options', problem)
    raise ConfigError(f'{config}: {problem}')


#: the arguments of mmengine's gradient clipping (``optim_wrapper.clip_grad``), by type
_CLIP_KEYS = {'norm': {'type', 'max_norm', 'norm_type', 'error_if_nonfinite', 'foreach'},
              'value': {'type', 'clip_value', 'foreach'}}


def check_clip_grad(cfg: Config, path: str, options: dict) -> None:
    """``optim_wrapper.clip_grad``, when set, clips by a finite positive amount with the
    arguments mmengine's clipping takes: a negative ``max_norm`` multiplies every
    gradient by a negative factor (training climbs the loss), 0 zeroes them, and a
    misspelt key fails only at the first step.

    Raises:
        InvalidArgumentError: the value came from ``cfg_options``.
        ConfigError: it is in the config file.
    """
    clip = (cfg.get('optim_wrapper') or {}).get('clip_grad')
    if clip is None:
        return
    key = 'optim_wrapper.clip_grad'
    if not isinstance(clip, dict):
        _raise(f'{key} is {clip!r}, not a dict (clip_grad=dict(max_norm=...))', [key],
               options, path)
    kind = clip.get('type', 'norm')
    if kind not in _CLIP_KEYS:
        _raise(f"{key}.type is {kind!r}: mmengine clips by 'norm' or 'value'", [key],
               options, path)
    unknown = sorted(set(clip) - _CLIP_KEYS[kind])
    if unknown:
        _raise(f'{key} has {unknown[0]!r}, which clipping by {kind} does not take '
               f'(it takes {sorted(_CLIP_KEYS[kind] - {"type"})})', [key], options, path)
    amount = 'max_norm' if kind == 'norm' else 'clip_value'
    if amount not in clip:
        _raise(f'{key} has no {amount}: clipping by {kind} needs it ({key}.{amount}=...)',
               [key], options, path)
    value = clip.get(amount)
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value <= 0:
        _raise(f'{key}.{amount} is {value!r}: it must be a finite number > 0 (a negative '
               'one turns every gradient around, 0 stops training)', [key], options, path)
    norm_type = clip.get('norm_type', 2)
    if kind == 'norm' and not (norm_type in ('inf', float('inf')) or (
            isinstance(norm_type, (int, float)) and not isinstance(norm_type, bool)
            and math.isfinite(norm_type) and norm_type > 0)):
        _raise(f"{key}.norm_type is {norm_type!r}: a number > 0 or 'inf'", [key], options,
               path)



#: ``paramwise_cfg`` keys of mmengine's default optimizer-wrapper constructor (and
#: mmseg's forcing variant); other constructors read keys of their own
_PARAMWISE_KEYS = frozenset({'custom_keys', 'bias_lr_mult', 'bias_decay_mult',
                             'norm_decay_mult', 'dwconv_decay_mult', 'flat_decay_mult',
                             'bypass_duplicate', 'dcn_offset_lr_mult'})
_DEFAULT_CONSTRUCTORS = (None, 'DefaultOptimWrapperConstructor',
                         'ForceDefaultOptimWrapperConstructor')
#: what one ``custom_keys`` entry may set
_CUSTOM_KEY_KEYS = frozenset({'lr_mult', 'decay_mult'})


def _multiplier_problem(key: str, value: Any) -> Optional[str]:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value < 0:
        return f'{key} is {value!r}: a multiplier must be a finite number >= 0'
    return None


def check_paramwise_cfg(cfg: Config, path: str, options: dict) -> None:
    """``optim_wrapper.paramwise_cfg`` of the default constructor: known keys (mmengine
    ignores a misspelt one silently), multipliers that are finite numbers >= 0, and
    ``custom_keys`` entries (any module name) that set only ``lr_mult`` and
    ``decay_mult``. A config with another ``constructor`` is left to it.

    Raises:
        InvalidArgumentError: the value came from ``cfg_options``.
        ConfigError: it is in the config file.
    """
    wrapper = cfg.get('optim_wrapper') or {}
    paramwise = wrapper.get('paramwise_cfg')
    if paramwise is None or wrapper.get('constructor') not in _DEFAULT_CONSTRUCTORS:
        return
    key = 'optim_wrapper.paramwise_cfg'
    if not isinstance(paramwise, Mapping):
        _raise(f'{key} is {paramwise!r}, not a dict', [key], options, path)
    unknown = sorted(set(paramwise) - _PARAMWISE_KEYS - {'_delete_'})
    if unknown:
        _raise(f'{key} has {unknown[0]!r}, which mmengine\'s optimizer-wrapper constructor '
               f'does not read (it reads {sorted(_PARAMWISE_KEYS)})', [key], options, path)
    for name, value in paramwise.items():
        if name == '_delete_':
            continue
        problem = None
        if name.endswith('_mult'):
            problem = _multiplier_problem(f'{key}.{name}', value)
        elif name == 'bypass_duplicate' and not isinstance(value, bool):
            problem = f'{key}.bypass_duplicate is {value!r}: True or False'
        if problem:
            _raise(problem, [f'{key}.{name}'], options, path)
    custom = paramwise.get('custom_keys') or {}
    if not isinstance(custom, Mapping):
        _raise(f'{key}.custom_keys is {custom!r}: a dict of module name to '
               "dict(lr_mult=..., decay_mult=...)", [key], options, path)
    for module, entry in custom.items():
        where = f'{key}.custom_keys.{module}'
        if not isinstance(entry, Mapping):
            _raise(f'{where} is {entry!r}, not a dict; set its keys one by one '
                   f'({where}.lr_mult=..., {where}.decay_mult=...)', [where], options, path)
        unknown = sorted(set(entry) - _CUSTOM_KEY_KEYS - {'_delete_'})
        if unknown:
            _raise(f'{where} has {unknown[0]!r}; an entry of custom_keys sets '
                   f'{sorted(_CUSTOM_KEY_KEYS)}', [where], options, path)
        for name, value in entry.items():
            if name == '_delete_':
                continue
            problem = _multiplier_problem(f'{where}.{name}', value)
            if problem:
                _raise(problem, [where], options, path)


def _logged_metrics(evaluator: Any) -> Optional[set]:
    """The metric names the validation logs (``mIoU``, ``Dice.<class>`` as ``Dice.*``),
    None when an evaluator of another kind makes them unknowable here."""
    metrics = evaluator if isinstance(evaluator, (list, tuple)) else [evaluator]
    names: set = set()
    for metric in metrics:
        if not isinstance(metric, Mapping):
            return None
        kind = metric.get('type')
        if kind == 'IoUMetric':
            chosen = metric.get('iou_metrics', ['mIoU'])
            chosen = [chosen] if isinstance(chosen, str) else list(chosen or [])
            found = {'aAcc'}
            for name in chosen:
                found |= {'mIoU': {'mIoU', 'mAcc'}, 'mDice': {'mDice', 'mAcc'},
                          'mFscore': {'mFscore', 'mPrecision', 'mRecall'}}.get(name, set())
        elif kind == 'MultiLabelDiceMetric':
            found = {'mDice', 'mDice_dataset', 'Dice.*'}
        elif kind == 'PerImageIoUMetric':
            found = {'mIoU_per_image'}
        else:
            return None
        prefix = metric.get('prefix')
        names |= {f'{prefix}/{n}' for n in found} if prefix else found
    return names


def _is_logged(name: str, names: set) -> bool:
    return name in names or any(n.endswith('.*') and name.startswith(n[:-1]) for n in names)


def check_monitored_metrics(cfg: Config, path: str, options: dict) -> None:
    """``default_hooks.checkpoint.save_best`` and an ``EarlyStoppingHook``'s ``monitor``
    name a metric the validation logs: a misspelt one (``mIOU``) ends the run in a
    ``KeyError`` at the first validation, after training, or never stops it early.
    Checked when the evaluator's names are known (mmseg's ``IoUMetric`` and this
    project's metrics).

    Raises:
        InvalidArgumentError: the name came from ``cfg_options``.
        ConfigError: it is in the config file.
    """
    names = _logged_metrics(cfg.get('val_evaluator'))
    if not names or not cfg.get('val_dataloader'):
        return
    watched = []
    hooks = cfg.get('default_hooks') or {}
    best = (hooks.get('checkpoint') or {}).get('save_best') if isinstance(hooks, Mapping) \
        else None
    for name in ([best] if isinstance(best, str) else best or []):
        watched.append(('default_hooks.checkpoint.save_best', name))
    places = [(f'default_hooks.{k}', h) for k, h in hooks.items()] \
        if isinstance(hooks, Mapping) else []
    places += [(f'custom_hooks.{i}', h) for i, h in enumerate(cfg.get('custom_hooks') or [])]
    for where, hook in places:
        if isinstance(hook, Mapping) and hook.get('type') == 'EarlyStoppingHook':
            watched.append((f'{where}.monitor', hook.get('monitor')))
    for key, name in watched:
        if isinstance(name, str) and name != 'auto' and not _is_logged(name, names):
            _raise(f'{key} is {name!r}, which the validation does not log (it logs '
                   f'{", ".join(sorted(names))})', [key], options, path)


#: optimizer settings torch refuses below 0 (a traceback when the optimizer is built)
_NON_NEGATIVE_OPTIMIZER = ('lr', 'weight_decay', 'momentum', 'eps')


def check_optimizer_values(cfg: Config, path: str, options: dict) -> None:
    """The optimizer's learning rate, weight decay, momentum and eps are finite numbers
    >= 0 (torch refuses a negative one only when training starts).

    Raises:
        InvalidArgumentError: the value came from ``cfg_options``.
        ConfigError: it is in the config file.
    """
    optimizer = (cfg.get('optim_wrapper') or {}).get('optimizer')
    if not isinstance(optimizer, Mapping):
        return
    for name in _NON_NEGATIVE_OPTIMIZER:
        value = optimizer.get(name)
        if value is None:
            continue
        key = f'optim_wrapper.optimizer.{name}'
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value) or value < 0:
            _raise(f'{key} is {value!r}: it must be a finite number >= 0', [key], options,
                   path)


def _flag(value: Any) -> str:
    return '' if isinstance(value, bool) or (type(value) is int and value in (0, 1)) \
        else 'must be True or False'


def _count(low: int, high: Optional[int] = None):
    def problem(value: Any) -> str:
        if type(value) is not int or value < low or (high is not None and value > high):
            top = f' and <= {high}' if high is not None else ''
            return f'must be a whole number >= {low}{top}'
        return ''
    return problem


def _optional(rule):
    return lambda value: '' if value is None else rule(value)


def _start_method(value: Any) -> str:
    import multiprocessing
    methods = multiprocessing.get_all_start_methods()
    return '' if value in methods else f'must be one of {methods}'


def _of_type(kind: type, name: str):
    return lambda value: '' if isinstance(value, kind) else f'must be {name}'


#: what each value of the runner's settings dicts must be (mmengine passes them on
#: unchecked: a text flag counts as true, a negative batch size scales the learning
#: rate below zero, a seed outside numpy's range fails when the run starts)
_SETTING_VALUES = {
    'randomness': {'seed': _optional(_count(0, 2 ** 32 - 1)), 'deterministic': _flag,
                   'diff_rank_seed': _flag},
    'auto_scale_lr': {'enable': _flag, 'base_batch_size': _count(1)},
    'env_cfg': {'cudnn_benchmark': _flag, 'resource_limit': _count(1),
                'mp_cfg': _of_type(Mapping, 'a dict'),
                'dist_cfg': _of_type(Mapping, 'a dict')},
    'env_cfg.mp_cfg': {'mp_start_method': _start_method,
                       'opencv_num_threads': _count(0)},
    'log_processor': {'window_size': _count(1), 'by_epoch': _flag, 'num_digits': _count(0),
                      'log_with_hierarchy': _flag, 'mean_pattern': _of_type(str, 'a text'),
                      'custom_cfg': _optional(_of_type((list, tuple), 'a list'))},
}
#: the settings dicts mmengine accepts as None (it then uses its defaults)
_SETTINGS_NONE_ALLOWED = ('auto_scale_lr', 'log_processor')


def check_runner_settings(cfg: Config, path: str, options: dict) -> None:
    """The runner's settings dicts (``randomness``, ``auto_scale_lr``, ``env_cfg`` and
    its ``mp_cfg``, ``log_processor``: :func:`~.components.settings_keys`) hold only
    the keys mmengine reads, each with a value of its kind (:data:`_SETTING_VALUES`):
    a misspelt key is ignored silently (``auto_scale_lr.enabel``) or ends in a
    ``TypeError`` when the runner starts (``randomness.determinstic``), and a value
    mmengine does not check does its harm later (``auto_scale_lr.enable=no`` scales the
    learning rate; ``base_batch_size=-4`` makes it negative). A ``log_processor`` of
    another type takes that class's arguments, and is left to its builder.

    Raises:
        InvalidArgumentError: the key came from ``cfg_options``.
        ConfigError: it is in the config file.
    """
    root = cfg.to_dict()
    for key, known in settings_keys().items():
        node, depth = _lookup(root, key.split('.'))
        if node is None and depth == len(key.split('.')) and '.' not in key \
                and key not in _SETTINGS_NONE_ALLOWED:
            _raise(f'{key} is None: mmengine needs a dict there (leave it out for its '
                   'defaults)', [key], options, path)
        if not isinstance(node, Mapping):
            if node is not _MISSING and node is not None:
                _raise(f'{key} is {node!r}: it must be a dict', [key], options, path)
            continue
        if key == 'log_processor' and node.get('type', 'LogProcessor') not in (
                'LogProcessor', 'mmengine.LogProcessor'):
            continue
        unknown = sorted(str(k) for k in node if k not in known and k != '_delete_')
        if unknown:
            _raise(f'{key} has {unknown[0]!r}, which mmengine does not read (it reads '
                   f'{sorted(known)})', [f'{key}.{unknown[0]}'], options, path)
        for name, rule in _SETTING_VALUES.get(key, {}).items():
            if name in node:
                problem = rule(node[name])
                if problem:
                    _raise(f'{key}.{name} is {node[name]!r}: it {problem}',
                           [f'{key}.{name}'], options, path)
    scale = root.get('auto_scale_lr')
    if isinstance(scale, Mapping) and scale.get('enable') and 'base_batch_size' not in scale:
        _raise('auto_scale_lr.enable is True but base_batch_size is missing: the learning '
               'rate is scaled by the real batch size over base_batch_size',
               ['auto_scale_lr'], options, path)


def slide_problem(test_cfg: Any) -> str:
    """What is wrong with a segmentor's ``test_cfg`` (``''``: nothing): its ``mode`` is
    ``'whole'`` or ``'slide'``; a slide's ``crop_size`` and ``stride`` are each two whole
    numbers > 0, and the stride no larger than the crop, else windows skip pixels."""
    if not isinstance(test_cfg, Mapping) or 'mode' not in test_cfg:
        return ''
    if test_cfg['mode'] not in ('whole', 'slide'):
        return f"mode is {test_cfg['mode']!r}: a segmentor runs 'whole' or 'slide'"
    if test_cfg['mode'] != 'slide':
        return ''
    sizes = {}
    for key in ('crop_size', 'stride'):
        value = test_cfg.get(key)
        if not isinstance(value, (list, tuple)) or len(value) != 2 or not all(
                type(v) is int and v > 0 for v in value):
            return f'{key} is {value!r}; a slide needs two whole numbers > 0 (height, width)'
        sizes[key] = value
    if any(s > c for s, c in zip(sizes['stride'], sizes['crop_size'])):
        return (f'stride {tuple(sizes["stride"])} is larger than crop_size '
                f'{tuple(sizes["crop_size"])}: the windows would skip pixels')
    return ''


def check_slide_settings(cfg: Config, path: str, options: dict) -> None:
    """Every ``test_cfg`` of the model (and of the segmentor a semi-supervised wrapper
    holds) that slides has window sizes that cover the image (:func:`slide_problem`),
    named at load instead of an assertion inside mmseg at the first image.

    Raises:
        InvalidArgumentError: the setting came from ``cfg_options``.
        ConfigError: it is in the config file.
    """
    node, key = cfg.get('model'), 'model'
    while isinstance(node, Mapping):
        problem = slide_problem(node.get('test_cfg'))
        if problem:
            _raise(f'{key}.test_cfg.{problem}', [f'{key}.test_cfg'], options, path)
        inner = next((k for k in ('segmentor', 'module') if isinstance(node.get(k), Mapping)),
                     None)
        if inner is None:
            break
        node, key = node[inner], f'{key}.{inner}'
