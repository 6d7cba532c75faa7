"""When the plugin plugs into mmengine and mmseg: on first use, never at import.

``import mmseg_ext`` (or any ``mmseg_ext.io`` / ``mmseg_ext.utils`` module) imports
neither torch nor mmseg. What the plugin changes in mmengine and mmseg happens when the
user's program first reaches the piece it changes:

=============================  ==========================================================
when this module is imported   the plugin
=============================  ==========================================================
``mmengine.config.utils``      points mmengine's ``mmseg`` scope at the installed
                               distribution, so ``mmseg::`` config bases resolve on both
                               stacks (:mod:`mmseg_ext.utils.config_bases`)
``mmengine.runner.checkpoint`` loads checkpoints with ``weights_only=True`` and exactly
                               mmengine's globals (:mod:`mmseg_ext.utils.checkpoint`)
``mmseg.registry``             adds :mod:`mmseg_ext.all_modules` to the import locations
                               of mmseg's registries: the first lookup in any of them
                               checks the environment and registers every dataset,
                               transform, model, loss, metric, hook and visualizer
``yapf_third_party...pygram``  (imported by mmengine's config module) runs under a lock
                               on yapf's grammar cache, a damaged cache written again,
                               so ranks starting together do not read a half-written
                               one (:mod:`mmseg_ext.utils.yapf_grammar`)
=============================  ==========================================================

A module that is already imported when ``mmseg_ext`` is gets the change at once (and a
registry already looked up gets the components at once). So ``custom_imports =
dict(imports=['mmseg_ext'])`` in a config keeps working whichever of the plugin's modules
were imported before it, and a tool that never builds a model never pays for torch.
:func:`register_all_modules` does everything now, as a tool that builds a model does at
its start (the environment check then fails with its one line before any work).
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.util
import io
import os
import sys
import types
import warnings
from typing import Callable, ContextManager, Dict

#: The module whose import registers every component (an mmseg registry location).
ALL_MODULES = 'mmseg_ext.all_modules'

#: Every module that registers a component or a file backend (``tests`` checks the list
#: against the code).
REGISTERING_MODULES = (
    'io.checkpoint_backend',
    'datasets.coco_semantic', 'datasets.hand_bone', 'datasets.port_structures',
    'datasets.samplers', 'datasets.unlabelled',
    'datasets.transforms.albumentations_bridge', 'datasets.transforms.coco_loading',
    'datasets.transforms.hand_bone_loading', 'datasets.transforms.loading',
    'datasets.transforms.multilabel_formatting', 'datasets.transforms.multilabel_geometry',
    'engine.cpu_distributed',
    'evaluation.dice_metric', 'evaluation.per_image_iou',
    'models.backbones.timm_encoder',
    'models.data_preprocessors.batch_augments', 'models.heads.mixin',
    'models.heads.multilabel_heads', 'models.heads.unet_head',
    'models.losses.multilabel_bce',
    'models.losses.multilabel_dice', 'models.segmentors.encoder_decoder',
    'models.segmentors.mean_teacher', 'models.segmentors.seg_tta',
    'models.segmentors.weak_strong',
    'visualization.visualizer',
)

_registered = False


def register_all_modules() -> None:
    """Check the environment and register every component in mmseg's registries now.

    Idempotent. Raises :class:`~mmseg_ext.utils.errors.EnvironmentCheckError` (one line
    naming the fix) when torch, mmcv or mmseg cannot work.
    """
    global _registered
    if _registered:
        return
    from .utils.env_check import check_environment
    check_environment()
    with _quiet_stack_imports():
        for module in REGISTERING_MODULES:
            importlib.import_module(f'{__package__}.{module}')
    _registered = True


@contextlib.contextmanager
def _quiet_stack_imports():
    """Keep two notices of the maintained stack's imports off the user's screen.

    Without compiled ops, mmcv warns at import that ``MultiScaleDeformableAttention`` is
    missing (the configs that need it are refused with a clear line by
    :mod:`mmseg_ext.utils.compiled_ops`), and mmseg prints "Could not import OneDL" for
    an optional integration. Everything else printed is passed through.
    """
    buffer = io.StringIO()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings('ignore', message='Fail to import ``MultiScaleDeformable')
            with contextlib.redirect_stdout(buffer):
                yield
    finally:
        for line in buffer.getvalue().splitlines(keepends=True):
            if line.strip() != 'Could not import OneDL':
                sys.stdout.write(line)


def _point_config_scope(module: types.ModuleType) -> None:
    from .utils.config_bases import register_mmseg_config_package
    register_mmseg_config_package()


def _allow_checkpoints(module: types.ModuleType) -> None:
    from .utils.checkpoint import allow_mmengine_checkpoints
    allow_mmengine_checkpoints()


def _add_registry_locations(module: types.ModuleType) -> None:
    """Make :data:`ALL_MODULES` an import location of every registry of ``mmseg.registry``."""
    from mmengine.registry import Registry
    looked_up = False
    for registry in vars(module).values():
        if isinstance(registry, Registry):
            if ALL_MODULES not in registry._locations:
                # first, so that mmseg's own imports are quieted too; a new list, since
                # registries made without locations share mmengine's default list
                registry._locations = [ALL_MODULES, *registry._locations]
            looked_up = looked_up or registry._imported
    if looked_up:  # a lookup already ran its locations: ours would never be imported
        register_all_modules()


#: module name -> what to do once it is imported.
AFTER_IMPORT: Dict[str, Callable[[types.ModuleType], None]] = {
    'mmengine.config.utils': _point_config_scope,
    'mmengine.runner.checkpoint': _allow_checkpoints,
    'mmseg.registry': _add_registry_locations,
}


def _grammar_cache_guard():
    from .utils.yapf_grammar import grammar_cache_guard
    return grammar_cache_guard()


#: module name -> a context manager factory its code runs inside.
AROUND_IMPORT: Dict[str, Callable[[], ContextManager]] = {
    # mmengine's config module imports yapf; processes starting together must not read
    # a grammar cache another one is writing (mmseg_ext.utils.yapf_grammar)
    'yapf_third_party._ylib2to3.pygram': _grammar_cache_guard,
}


def _no_action(module: types.ModuleType) -> None:
    pass


class _AfterExecLoader(importlib.abc.Loader):
    """Run a module's loader (inside the plugin's context for it), then its action."""

    def __init__(self, loader: importlib.abc.Loader, action: Callable,
                 around: Callable[[], ContextManager] = contextlib.nullcontext) -> None:
        self._loader = loader
        self._action = action
        self._around = around

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        with self._around():
            self._loader.exec_module(module)
        module.__loader__ = self._loader
        self._action(module)

    def __getattr__(self, name: str):
        return getattr(self._loader, name)


class _AfterImportFinder(importlib.abc.MetaPathFinder):
    """Find the modules of :data:`AFTER_IMPORT` and :data:`AROUND_IMPORT` as usual, with
    the action after their code and their code inside the context."""

    #: marks every instance, also one made by an earlier copy of this module (a reload)
    mmseg_ext_after_import = True

    def find_spec(self, fullname, path, target=None):
        action = AFTER_IMPORT.get(fullname)
        around = AROUND_IMPORT.get(fullname)
        if action is None and around is None:
            return None
        spec = None
        for finder in sys.meta_path:
            if getattr(finder, 'mmseg_ext_after_import', False) or \
                    not hasattr(finder, 'find_spec'):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _AfterExecLoader(spec.loader, action or _no_action,
                                       around or contextlib.nullcontext)
        return spec


def install() -> None:
    """Apply each action to its module now if imported, else when it is imported.

    Also switches off albumentations' update check, which otherwise asks PyPI for its
    latest version whenever albumentations is imported (mmseg imports it too): up to 2 s
    per process, and a warning on an offline machine. ``NO_ALBUMENTATIONS_UPDATE=0`` in
    the environment keeps the check.
    """
    os.environ.setdefault('NO_ALBUMENTATIONS_UPDATE', '1')
    if not any(getattr(f, 'mmseg_ext_after_import', False) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImportFinder())
    for name, action in AFTER_IMPORT.items():
        module = sys.modules.get(name)
        if module is not None:
            action(module)
