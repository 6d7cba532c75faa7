"""What a registered component takes: the registry a config dict is built from, the
arguments of its class, and whether a value fits an argument.

:func:`~mmseg_ext.config.checks.check_cfg_options` uses these to check a component
that ``--cfg-options`` changes or creates (``default_hooks.early_stopping.type=...``)
as strictly as one the config file holds: a type that the registry it is built from
does not have, an argument its class does not take, a required argument left out, or
text where the argument is a number are refused in one line, instead of a traceback
when the runner builds it (or, for a hook's argument, hours later when it is used).
"""
from __future__ import annotations

import functools
import inspect
import re
from typing import Any, Dict, Optional, Sequence, Tuple

#: registries by the name a message uses, in the order an unknown place tries them
_REGISTRY_NAMES = ('MODELS', 'DATASETS', 'TRANSFORMS', 'METRICS', 'HOOKS', 'LOOPS',
                   'OPTIMIZERS', 'TASK_UTILS', 'PARAM_SCHEDULERS', 'OPTIM_WRAPPERS',
                   'VISUALIZERS', 'VISBACKENDS', 'DATA_SAMPLERS', 'EVALUATOR',
                   'WEIGHT_INITIALIZERS', 'LOG_PROCESSORS')

#: what one of each registry's components is called in a message
_KIND = {'MODELS': 'model component', 'DATASETS': 'data set', 'TRANSFORMS': 'transform',
         'METRICS': 'metric', 'HOOKS': 'hook', 'LOOPS': 'loop', 'OPTIMIZERS': 'optimizer',
         'TASK_UTILS': 'task utility (pixel sampler)', 'PARAM_SCHEDULERS':
         'parameter scheduler', 'OPTIM_WRAPPERS': 'optimizer wrapper',
         'VISUALIZERS': 'visualizer', 'VISBACKENDS': 'visualisation backend',
         'DATA_SAMPLERS': 'data sampler', 'EVALUATOR': 'evaluator',
         'WEIGHT_INITIALIZERS': 'weight initialiser (init_cfg)',
         'LOG_PROCESSORS': 'log processor'}

#: arguments that a registry's builder passes itself, never the config (the runner
#: builds loops with itself and their loader, schedulers with the optimizer and, for
#: the learning-rate and momentum ones, the parameter name)
_BUILDER_GIVES = {'OPTIMIZERS': {'params'}, 'TASK_UTILS': {'context'},
                  'PARAM_SCHEDULERS': {'optimizer', 'param_name'},
                  'OPTIM_WRAPPERS': {'optimizer'}, 'VISBACKENDS': {'save_dir'},
                  'DATA_SAMPLERS': {'dataset'},
                  'LOOPS': {'runner', 'dataloader', 'evaluator'}}
#: keys a registry's builder takes out before it builds (mmengine's ``initialize``
#: applies an initialiser's ``override`` itself)
_BUILDER_TAKES = {'WEIGHT_INITIALIZERS': {'override'},
                  # the optimizer-wrapper builder reads these and builds the optimizer
                  'OPTIM_WRAPPERS': {'constructor', 'paramwise_cfg', 'optimizer'}}
#: arguments given by the runner to a top-level model wrapper (``tta_model``)
_WRAPPER_GIVES = {'tta_model': {'module'}}

#: dicts with a ``type`` that mmcv's layer builders read (``build_norm_layer`` adds
#: ``num_features`` and takes ``requires_grad`` out): their arguments are not the
#: class's own, so only the type is checked
LAYER_CONFIGS = ('norm_cfg', 'conv_cfg', 'act_cfg', 'upsample_cfg')
#: settings dicts, not built from a registry: a ``type`` there is a setting of its own
#: (``clip_grad.type='value'``)
SETTINGS_DICTS = frozenset({'metainfo', 'data_prefix', 'clip_grad', 'paramwise_cfg',
                            'custom_keys', 'override',
                            # the runner's own settings (a model wrapper's type has a
                            # default there)
                            'randomness', 'auto_scale_lr', 'env_cfg', 'mp_cfg',
                            'dist_cfg', 'model_wrapper_cfg'})


#: the keys mmengine's runner reads with ``dict.get`` from the settings dicts that no
#: function signature describes (``Runner.setup_env``, ``Runner.scale_lr``)
_READ_KEYS = {'auto_scale_lr': {'enable', 'base_batch_size'},
              'env_cfg': {'cudnn_benchmark', 'mp_cfg', 'dist_cfg', 'resource_limit'}}


@functools.cache
def settings_keys() -> Dict[str, frozenset]:
    """The keys mmengine reads from the runner's settings dicts, by dotted place
    (``'randomness'``, ``'env_cfg.mp_cfg'``, ...). Those passed on as keyword arguments
    come from the installed mmengine's signatures (``Runner.set_randomness``,
    ``set_multi_processing`` less the ``distributed`` the runner gives, the default
    ``LogProcessor``), so they follow the stack in use."""
    from mmengine.runner import LogProcessor, Runner
    from mmengine.utils.dl_utils import set_multi_processing

    def arguments(func, given=()) -> frozenset:
        names = [name for name, p in inspect.signature(func).parameters.items()
                 if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        return frozenset(set(names) - {'self'} - set(given))

    keys = {key: frozenset(known) for key, known in _READ_KEYS.items()}
    keys['randomness'] = arguments(Runner.set_randomness)
    keys['env_cfg.mp_cfg'] = arguments(set_multi_processing, given=('distributed',))
    keys['log_processor'] = arguments(LogProcessor.__init__) | {'type'}
    return keys


def place_kind(parts: Sequence[str]) -> str:
    """What the dict at the dotted key ``parts`` is: ``'settings'`` (a plain settings
    dict, or an entry of ``custom_keys``), ``'layer'`` (an mmcv layer config,
    :data:`LAYER_CONFIGS`) or ``'component'`` (built from a registry with its keys as
    arguments)."""
    if not parts:
        return 'settings'
    last = parts[-1]
    if last in SETTINGS_DICTS or (len(parts) >= 2 and parts[-2] == 'custom_keys'):
        return 'settings'
    if last.endswith(LAYER_CONFIGS):
        return 'layer'
    return 'component'


def _article(noun: str) -> str:
    return ('an ' if noun[0] in 'aeiou' else 'a ') + noun


def registry_of(parts: Sequence[str]) -> Optional[str]:
    """The registry (its name in ``mmseg.registry``) that builds the config dict at the
    dotted key ``parts``, or None where the place does not tell."""
    head = parts[0] if parts else ''
    last = parts[-1] if parts else ''
    if last == 'init_cfg' or (len(parts) >= 2 and parts[-2] == 'init_cfg'):
        return 'WEIGHT_INITIALIZERS'
    if head in ('default_hooks', 'custom_hooks'):
        return 'HOOKS'
    if head == 'param_scheduler':
        return 'PARAM_SCHEDULERS'
    if head == 'visualizer':
        return 'VISBACKENDS' if 'vis_backends' in parts else 'VISUALIZERS'
    if head == 'optim_wrapper':
        return 'OPTIMIZERS' if last == 'optimizer' else (
            'OPTIM_WRAPPERS' if len(parts) == 1 else None)
    if head in ('train_cfg', 'val_cfg', 'test_cfg') and len(parts) == 1:
        return 'LOOPS'
    if head == 'log_processor' and len(parts) == 1:
        return 'LOG_PROCESSORS'
    if head in ('val_evaluator', 'test_evaluator'):
        return 'METRICS'
    if any(p.endswith('pipeline') or p == 'transforms' for p in parts[:-1]) \
            and last.isdigit():
        return 'TRANSFORMS'
    if head.endswith('_dataloader'):
        if last in ('sampler',):
            return 'DATA_SAMPLERS'
        if last in ('dataset',) or (len(parts) >= 2 and parts[-2] == 'datasets'):
            return 'DATASETS'
        return None
    if head == 'model':
        return 'TASK_UTILS' if last == 'sampler' else 'MODELS'
    return None


def find_class(kind: str, registry: Optional[str] = None) -> Tuple[Any, Optional[str]]:
    """``(class or function, registry name)`` of the type name ``kind`` in mmseg's scope,
    looked up in ``registry`` only when given, else in every registry in turn;
    ``(None, None)`` when none has it."""
    import mmseg.registry as registries
    from mmengine.registry import DefaultScope
    names = (registry,) if registry else _REGISTRY_NAMES
    with DefaultScope.overwrite_default_scope('mmseg'):
        for name in names:
            try:
                found = getattr(registries, name).get(kind)
            except (KeyError, TypeError, AttributeError):
                found = None
            if found is not None:
                return found, name
    return None, None


def init_parameters(cls: Any) -> Tuple[Dict[str, inspect.Parameter], bool]:
    """The arguments ``cls(...)`` accepts: those of its ``__init__`` and, while an
    ``__init__`` passes ``**kwargs`` on, of its base classes'. The flag says whether the
    list is complete (False when ``**kwargs`` go where this cannot follow: into
    ``object``, a torch class, or a signature that cannot be read)."""
    params: Dict[str, inspect.Parameter] = {}
    if not inspect.isclass(cls):
        return params, False
    forwarded = _forwarded_keywords(cls)
    if forwarded is not None:
        own, _ = _own_parameters(cls)
        return {**own, **forwarded}, True
    for klass in cls.__mro__:
        init = klass.__dict__.get('__init__')
        if init is None:
            continue
        if klass is object:
            return params, False
        try:
            own = inspect.signature(init).parameters
        except (TypeError, ValueError):
            return params, False
        for name, p in own.items():
            if name != 'self' and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                params.setdefault(name, p)
        if not any(p.kind == p.VAR_KEYWORD for p in own.values()):
            return params, True
        if klass.__module__.startswith('torch.'):
            return params, False  # torch passes **kwargs where this cannot follow
    return params, False


def _own_parameters(cls: Any) -> Tuple[Dict[str, inspect.Parameter], bool]:
    """The named arguments of ``cls.__init__`` alone."""
    try:
        own = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return {}, False
    return {n: p for n, p in own.items() if n != 'self'
            and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}, True


def _forwarded_keywords(cls: Any) -> Optional[Dict[str, inspect.Parameter]]:
    """For a class whose ``**kwargs`` end in a call this can read: the arguments that
    call takes beyond those the class passes itself; None for any other class.

    mmengine's ``CheckpointHook`` keeps its ``**kwargs`` and passes them to
    ``Runner.save_checkpoint`` at every save, beside ``filename``, ``meta`` and its own
    arguments of the same names: a misspelt ``intervall`` would run the whole training
    and fail at the first save.
    """
    from mmengine.hooks import CheckpointHook
    if not issubclass(cls, CheckpointHook):
        return None
    from mmengine.runner import Runner
    takes, _ = _own_parameters(Runner.save_checkpoint)  # a function: its own names
    own, _ = _own_parameters(cls)
    return {n: p for n, p in takes.items() if n not in own and n not in
            ('filename', 'meta')}


def component_takes(node: dict, name: str) -> Optional[bool]:
    """Whether the registered component a config dict builds (``node['type']``) accepts
    the argument ``name``: its ``__init__`` names it, or passes ``**kwargs`` on to a
    base class that does. ``None`` when that cannot be told (no or unknown type, or a
    ``**kwargs`` that goes nowhere we can see)."""
    kind = node.get('type')
    if not isinstance(kind, str):
        return None
    # loops (train_cfg.max_iter) and optimizers (optim_wrapper.optimizer.lrr) too; not
    # optimizer wrappers or schedulers, whose builders take keys of their own
    # (paramwise_cfg, convert_to_iter_based)
    cls = None
    for registry in ('MODELS', 'DATASETS', 'TRANSFORMS', 'METRICS', 'HOOKS', 'LOOPS',
                     'OPTIMIZERS', 'TASK_UTILS', 'DATA_SAMPLERS', 'OPTIM_WRAPPERS'):
        cls, _ = find_class(kind, registry)
        if cls is not None:
            break
    if not inspect.isclass(cls):
        return None
    if name in _BUILDER_TAKES.get(registry, set()):
        return True  # read by the registry's builder (an optimizer wrapper's constructor)
    params, complete = init_parameters(cls)
    if name in params:
        return True
    return False if complete else None


def value_problem(cls: Any, name: str, value: Any) -> Optional[str]:
    """Why ``value`` cannot be the argument ``name`` of ``cls`` (None when it can, or
    when that cannot be told): text where the argument's default is a number or a flag
    (``patience=abc`` would fail only when the hook first compares it)."""
    params, _ = init_parameters(cls)
    p = params.get(name)
    if p is None:
        return None
    hint = p.annotation
    text = hint.__name__ if isinstance(hint, type) else str(hint).replace('typing.', '')
    if isinstance(value, float) and not value.is_integer() and \
            _WHOLE_NUMBER_ANNOTATION.match(text):
        return f'{name} is a whole number ({text}), got {value!r}'
    if not isinstance(value, str):
        return None
    if p.default is p.empty:
        p = p.replace(default=None)  # required: judged by its annotation only
    if isinstance(p.default, bool):
        return f'{name} is a flag (True or False), got the text {value!r}'
    if isinstance(p.default, (int, float)):
        return (f'{name} is a number (default {p.default!r}), got the text '
                f'{value[:80]!r}')
    if _NUMBER_ANNOTATION.match(text):
        return f'{name} is a number ({text}), got the text {value[:80]!r}'
    return None


#: an argument annotated as a whole number (``max_keep_ckpts: int``)
_WHOLE_NUMBER_ANNOTATION = re.compile(r'^(Optional\[)?int\]?$|^int \| None$')
#: an argument annotated as a number, or an optional one (``seed: Optional[int]``)
_NUMBER_ANNOTATION = re.compile(r'^(Optional\[)?(int|float)\]?$|^(int|float) \| None$')


def new_component_problem(key: str, node: dict, kept_from: Optional[str] = None,
                          kept: Sequence[str] = ()) -> Optional[str]:
    """Why the component dict ``node`` at the dotted ``key``, whose ``type`` the command
    line sets, cannot be built (None when it can, as far as can be told): its ``type`` is
    not in the registry the place builds from, it has an argument its class does not
    take, or it leaves out a required one. An mmcv layer config (:func:`place_kind`)
    has only its type checked.

    Args:
        kept_from: the type the config had there, when the options replace it.
        kept: the keys of ``node`` the config kept from ``kept_from``.
    """
    kind = node.get('type')
    if not isinstance(kind, str) or not kind:
        return f'{key}.type must be the name of a registered class, got {kind!r}'
    parts = key.split('.')
    registry = registry_of(parts)
    cls, _ = find_class(kind, registry)
    if cls is None:
        _, elsewhere = find_class(kind)
        what = _KIND.get(registry or '', 'registered component')
        also = f' (it is {_article(_KIND[elsewhere])})' if elsewhere else ''
        return f'{key}.type: {kind!r} is not {_article(what)} mmseg knows{also}'
    if not inspect.isclass(cls) or place_kind(parts) == 'layer':
        return None
    params, complete = init_parameters(cls)
    for name in sorted(set(node) - {'type', '_scope_'} - _BUILDER_TAKES.get(registry or '',
                                                                          set())):
        left = (f" (kept from the config's {kept_from}; add {key}._delete_=True to give "
                f'{kind} only the keys you set)') if name in kept else ''
        if complete and name not in params:
            return f'{key}: {kind} has no argument {name!r}{left}'
        problem = value_problem(cls, name, node[name])
        if problem:
            return f'{key}.{problem}{left}'
    given = _BUILDER_GIVES.get(registry or '', set()) | _WRAPPER_GIVES.get(key, set())
    missing = [name for name, p in params.items() if p.default is p.empty
               and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
               and name not in node and name not in given]
    if missing:
        return (f'{key}: {kind} needs {", ".join(repr(m) for m in missing)} (set '
                f'{key}.{missing[0]}=...)')
    return None
