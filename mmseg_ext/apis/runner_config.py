"""Turn command-line options into a runner config, as mmseg's own tools do, and check
it before the runner is built.

``tools/train.py`` and ``tools/test.py`` are thin wrappers over these functions so that
the same behaviour is importable (and tested) without a subprocess. Everything that
would otherwise fail deep inside mmengine after minutes of set-up is checked here first
and raised as one domain error: an unreadable config, a component that needs compiled
ops this install lacks, a local checkpoint or pretrained file that does not exist,
mixed precision without a GPU, and the distributed launch on a machine without CUDA.
"""
from __future__ import annotations

import atexit
import logging
import os
import os.path as osp
from typing import Callable, Optional

from mmengine.config import Config
from mmengine.logging import print_log

from ..io.checkpoint_backend import ATOMIC_LOCAL_BACKEND
from ..utils.compiled_ops import HOW_TO_GET_OPS, has_compiled_ops, missing_ops
from ..utils.errors import CheckpointNotFoundError, ConfigError, InvalidArgumentError
from .tta import check_tta_config, lateral_flip_problem, training_flip_problem
from .weights import check_weights_exist


def read_config(path: str) -> Config:
    """``Config.fromfile`` with one-line errors for a missing or unreadable file.

    Raises:
        ConfigError: the file does not exist, has a syntax error, names a base that
            does not exist, or fails while it is evaluated.
    """
    if not osp.isfile(path):
        raise ConfigError(f'{path}: config file not found')
    try:
        return Config.fromfile(path)
    except SyntaxError as exc:
        where = f'line {exc.lineno}' if exc.lineno else 'syntax'
        name = exc.filename if exc.filename and not exc.filename.startswith('<') else path
        raise ConfigError(f'{name}: invalid Python in the config ({where}: {exc.msg})'
                          ) from None
    except Exception as exc:  # noqa: BLE001  (mmengine raises many kinds while parsing)
        text = str(exc).strip().splitlines()
        detail = text[0][:300] if text else ''
        raise ConfigError(f'{path}: cannot read the config ({type(exc).__name__}'
                          f'{": " + detail if detail else ""})') from None


def check_runner_path(path: Optional[str], argument: str) -> None:
    """Refuse an output path mmengine would write under that is not valid UTF-8.

    A name made of bytes that are not UTF-8 reaches Python with surrogate escapes
    (``'w\\udce9'``); mmengine writes such paths as text (``last_checkpoint``, the
    config dump, the logs) and fails with a ``UnicodeEncodeError`` after training,
    leaving an empty pointer behind. Checked before anything is written.

    Args:
        path: the work dir (or ``--out``, ``--show-dir``); None passes.
        argument: the parameter name for the message (``'work_dir'``).

    Raises:
        InvalidArgumentError: ``<argument>: b'w\\xe9' is not valid UTF-8 ...``.
    """
    if path is None:
        return
    try:
        os.fsdecode(os.fsencode(path)).encode('utf-8')
    except (UnicodeError, ValueError, TypeError):
        raise InvalidArgumentError(argument, f'{os.fsencode(path)!r} is not valid UTF-8 '
                                   '(mmengine writes the names of its outputs as UTF-8 '
                                   'text); choose a UTF-8 name') from None


def load_config(path: str, cfg_options: Optional[dict] = None,
                launcher: str = 'none', work_dir: Optional[str] = None) -> Config:
    """Read a config file, apply ``--cfg-options`` and pick the work dir.

    The work dir is, by priority: ``work_dir`` argument, ``work_dir`` in the file,
    ``./work_dirs/<config name>``. The model is checked for compiled ops this install
    lacks (:func:`check_compiled_ops`).
    """
    cfg = read_config(path)
    cfg.launcher = launcher
    if cfg_options:
        check_cfg_options(cfg, cfg_options, path)
        try:
            cfg.merge_from_dict(cfg_options)
        except Exception as exc:  # noqa: BLE001
            raise InvalidArgumentError('cfg_options', f'cannot apply {cfg_options} to '
                                       f'{path} ({exc})') from None
    check_run_settings(cfg, path, cfg_options or {})
    for problem in (lateral_flip_problem(cfg), training_flip_problem(cfg)):
        if problem:
            print_log(f'{path}: {problem}', logger='current', level=logging.WARNING)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(path))[0])
    check_runner_path(cfg.work_dir if isinstance(cfg.work_dir, str) else None, 'work_dir')
    check_compiled_ops(cfg, path)
    return cfg


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
      (``model.decode_head.num_clases=5``: one line naming the class and argument).

    Another new leaf in an existing dict is allowed (configs often leave optional keys
    unset) and logged as a warning, since a misspelt leaf (``train_cfg.max_iter``) would
    otherwise be ignored silently.

    Raises:
        InvalidArgumentError: of ``cfg_options``.
    """
    root = cfg.to_dict()
    for key, value in options.items():
        parts = key.split('.')
        old, depth = _lookup(root, parts)
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
    from mmseg.registry import DATASETS, HOOKS, METRICS, MODELS, TRANSFORMS
    with DefaultScope.overwrite_default_scope('mmseg'):
        for registry in (MODELS, DATASETS, TRANSFORMS, METRICS, HOOKS):
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


def enable_amp(cfg: Config) -> None:
    """Switch the optimizer wrapper to mmengine's ``AmpOptimWrapper`` (dynamic scaling).

    Raises:
        InvalidArgumentError: there is no CUDA device (mmengine's AMP needs one), or
            the config's optimizer wrapper is neither ``OptimWrapper`` nor AMP already.
    """
    import torch
    if not torch.cuda.is_available():
        raise InvalidArgumentError('amp', 'automatic mixed precision needs a CUDA GPU, and '
                                   'torch sees none on this machine')
    wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if wrapper == 'AmpOptimWrapper':
        print_log('AMP is already enabled in the config.', logger='current',
                  level=logging.WARNING)
        return
    if wrapper != 'OptimWrapper':
        raise InvalidArgumentError('amp', f'needs optim_wrapper.type OptimWrapper, got '
                                   f'{wrapper}')
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')


#: True while a ``gloo`` process group started by :func:`prepare_distributed` is open.
_STARTED_GLOO = False


def finish_distributed() -> bool:
    """Destroy the ``gloo`` process group that :func:`prepare_distributed` started.

    Call it once the runner is released (``del runner``): the model's DDP wrapper holds
    the group, so objects still alive in reference cycles are collected first. Destroying
    the group joins gloo's worker threads while the interpreter is fully alive; left to
    interpreter shutdown, a rank could abort at exit ("terminate called without an active
    exception", SIGABRT) after its work had finished.

    Returns:
        True when this process is such a CPU rank; the tool should then leave without
        interpreter finalization (:func:`mmseg_ext.utils.cli.exit_now`). False when no
        process group of ours exists (one process, or GPU ranks under mmengine).
    """
    import gc

    import torch.distributed as dist
    global _STARTED_GLOO
    if not _STARTED_GLOO:
        return False
    _STARTED_GLOO = False
    gc.collect()
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    gc.collect()
    return True


def prepare_distributed(cfg: Config, launcher: str) -> None:
    """Let ``--launcher pytorch`` run on a machine without CUDA.

    mmengine initialises NCCL and pins each rank to ``cuda:LOCAL_RANK``. Without CUDA
    this starts the ``gloo`` process group from torchrun's environment (mmengine then
    skips its own ``init_dist``) and wraps the model in
    :class:`~mmseg_ext.engine.CPUDistributedDataParallel`. With CUDA nothing changes.
    """
    import torch
    import torch.distributed as dist
    global _STARTED_GLOO
    if launcher == 'none' or torch.cuda.is_available():
        return
    if launcher != 'pytorch':
        raise InvalidArgumentError('launcher', f'{launcher!r} pins each rank to a GPU and '
                                   'this machine has none; use pytorch (torchrun) for '
                                   'CPU ranks')
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
        _STARTED_GLOO = True
        # the tools call finish_distributed() when done; this covers an early exit
        atexit.register(finish_distributed)
    wrapper = dict(cfg.get('model_wrapper_cfg') or {})
    if wrapper.get('type', 'MMDistributedDataParallel') == 'MMDistributedDataParallel':
        wrapper['type'] = 'CPUDistributedDataParallel'
    wrapper.setdefault('broadcast_buffers', False)
    wrapper.setdefault('find_unused_parameters', cfg.get('find_unused_parameters', False))
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper


def train_config(path: str, work_dir: Optional[str] = None, resume: bool = False,
                 amp: bool = False, cfg_options: Optional[dict] = None,
                 launcher: str = 'none',
                 edit: Optional[Callable[[Config], None]] = None) -> Config:
    """Config for ``Runner.from_cfg(cfg).train()`` (``tools/train.py``).

    ``edit`` changes the loaded config in place before the checks (e.g. the data sets
    of a cross-validation fold).

    Raises:
        CheckpointNotFoundError: a local ``load_from``, ``resume`` checkpoint or
            pretrained file named by the model does not exist.
    """
    cfg = load_config(path, cfg_options, launcher, work_dir)
    if edit is not None:
        edit(cfg)
    if amp:
        enable_amp(cfg)
    cfg.resume = resume
    load_from = cfg.get('load_from')
    if load_from and '://' not in str(load_from) and not osp.isfile(load_from):
        raise CheckpointNotFoundError(str(load_from))
    check_weights_exist(cfg.get('model', {}), path)
    from .evaluate import check_load_from, check_resume
    check_load_from(cfg, path)
    check_resume(cfg, path)
    write_checkpoints_atomically(cfg)
    prepare_distributed(cfg, launcher)
    return cfg


def write_checkpoints_atomically(cfg: Config) -> None:
    """Let the checkpoint hook write each checkpoint whole or not at all.

    Selects :class:`~mmseg_ext.io.checkpoint_backend.AtomicLocalBackend` for mmengine's
    ``CheckpointHook`` when the config names no backend of its own and the checkpoints
    go to a local folder; otherwise the config is left as it is.
    """
    hook = cfg.get('default_hooks', {}).get('checkpoint')
    if not hook or hook.get('type') not in ('CheckpointHook', 'mmengine.CheckpointHook'):
        return
    if hook.get('backend_args') is not None or hook.get('file_client_args') is not None:
        return
    if '://' in str(hook.get('out_dir') or ''):
        return
    hook['backend_args'] = dict(backend=ATOMIC_LOCAL_BACKEND)


def test_config(path: str, checkpoint: str, work_dir: Optional[str] = None,
                out: Optional[str] = None, show: bool = False,
                show_dir: Optional[str] = None, wait_time: float = 2.0,
                tta: bool = False, cfg_options: Optional[dict] = None,
                launcher: str = 'none') -> Config:
    """Config for ``Runner.from_cfg(cfg).test()`` (``tools/test.py``).

    ``load_from`` stays unset: the tool loads ``checkpoint`` itself, strictly
    (:func:`mmseg_ext.utils.checkpoint.load_model_weights`), so a checkpoint that does
    not fit the model is an error instead of a silently wrong metric. The model's
    pretrained/backbone weights are not needed (the checkpoint replaces them) and are
    switched off.
    """
    if '://' not in checkpoint and not osp.isfile(checkpoint):
        raise CheckpointNotFoundError(checkpoint)
    check_runner_path(out, 'out')
    check_runner_path(show_dir, 'show_dir')
    cfg = load_config(path, cfg_options, launcher, work_dir)
    cfg.load_from = None
    skip_pretrained(cfg.model)
    if show or show_dir:
        hooks = cfg.get('default_hooks', {})
        if 'visualization' not in hooks:
            raise ConfigError(f'{path}: showing predictions needs a "visualization" entry '
                              'in default_hooks')
        hooks['visualization']['draw'] = True
        if show:
            hooks['visualization']['show'] = True
            hooks['visualization']['wait_time'] = wait_time
        if show_dir:
            cfg.visualizer['save_dir'] = show_dir
    if tta:
        check_tta_config(cfg, path)
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        # mmengine's runner hands the config's top-level `data_preprocessor` (mmseg's
        # model bases define one) to the TTA wrapper, which then replaces the model's
        # own: another padding rule, size or normalisation than the plain test. An
        # explicit None keeps the model's preprocessor unless the config sets one.
        cfg.tta_model.setdefault('data_preprocessor', None)
        cfg.model = cfg.tta_model
    if out is not None:
        cfg.test_evaluator['output_dir'] = out
        cfg.test_evaluator['keep_results'] = True
    prepare_distributed(cfg, launcher)
    return cfg


def skip_pretrained(model_cfg: dict) -> None:
    """Switch off the pretrained weights of a model config (a checkpoint replaces them)."""
    if 'pretrained' in model_cfg:
        model_cfg['pretrained'] = None
    backbone = model_cfg.get('backbone')
    if isinstance(backbone, dict) and backbone.get('init_cfg') is not None:
        backbone['init_cfg'] = None


def set_local_rank(local_rank: int) -> None:
    """torch.distributed.launch passes ``--local-rank``; torchrun sets ``LOCAL_RANK``."""
    os.environ.setdefault('LOCAL_RANK', str(local_rank))


def config_hash(cfg: Config) -> str:
    """A short hash of a config's resolved settings: two runs of "the same" config file
    whose content (or ``--cfg-options``) changed in between are different runs."""
    import hashlib
    import json
    text = json.dumps(cfg.to_dict(), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
