"""Turn command-line options into a runner config, as mmseg's own tools do.

``tools/train.py`` and ``tools/test.py`` are thin wrappers over :func:`train_config`,
:func:`test_config` and :func:`test_checkpoint`, so that the same behaviour is
importable (and tested) without a subprocess. The checks of :mod:`mmseg_ext.config.checks`
run first; this module adds what only a run has: mixed precision (refused without a
GPU), the distributed launch (``gloo`` on CPU ranks), checkpoints written atomically,
and a checkpoint loaded strictly before testing (mmengine's ``load_from`` is
``strict=False``, so a checkpoint of another model would test partly loaded and report
a meaningless metric with exit 0).
"""
from __future__ import annotations

import atexit
import logging
import os
import os.path as osp
from typing import Callable, Dict, List, Optional, Tuple

from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.logging import print_log

from ..config.checks import (
    check_checkpoint_classes,
    check_fits_config,
    check_test_cfg_classes,
    check_weights_exist,
)
from ..config.loading import check_runner_path, load_config
from ..config.model import bare_segmentor, skip_pretrained
from ..config.tta import check_tta_config, config_classes
from ..io.checkpoint_backend import ATOMIC_LOCAL_BACKEND
from ..models.segmentors.postprocess import set_class_names
from ..utils.checkpoint import (
    check_checkpoint_file,
    checkpoint_class_names,
    read_fitting_checkpoint,
)
from ..utils.errors import ConfigError, InvalidArgumentError


def load_checkpoint_strictly(runner, checkpoint: str, config: str = 'the config') -> dict:
    """Load ``checkpoint`` into ``runner.model`` (through the runner, so its hooks see
    the checkpoint) only when every key and shape fits the segmentor (inside a DDP or
    TTA wrapper, which mmengine's loader also unwraps); same errors as
    :func:`read_fitting_checkpoint`."""
    read_fitting_checkpoint(bare_segmentor(runner.model), checkpoint, config)
    return runner.load_checkpoint(checkpoint, map_location='cpu', strict=True)


#: the record in a prediction folder written by :func:`test_checkpoint`
TEST_PREDICTIONS_MARKER = 'test_predictions.txt'
#: the record in a folder of painted predictions (``tools/test.py --show-dir``)
TEST_DRAWINGS_MARKER = 'test_drawings.txt'
#: the config key through which :func:`test_config` hands ``show_dir`` to
#: :func:`test_checkpoint` (mmengine's runner ignores it)
SHOW_DIR_KEY = 'show_dir'


def _output_folders(cfg: Config) -> List[Tuple[str, str, Callable[[str], None]]]:
    """``(folder, marker, point_at)`` for each folder the test writes files into: the
    metric's ``output_dir`` (``--out``) and the visualizer's ``save_dir``
    (``--show-dir``); ``point_at(path)`` makes the run write into ``path``."""
    from ..config.outputs import evaluator_metrics
    folders = []
    for _, metric in evaluator_metrics(cfg, 'test_evaluator'):
        if metric.get('output_dir'):
            folders.append((metric['output_dir'], TEST_PREDICTIONS_MARKER,
                            lambda p, metric=metric: metric.__setitem__('output_dir', p)))
    show_dir = cfg.get(SHOW_DIR_KEY)
    if show_dir:
        folders.append((show_dir, TEST_DRAWINGS_MARKER,
                        lambda p: cfg.visualizer.__setitem__('save_dir', p)))
    return folders


def test_checkpoint(cfg: Config, checkpoint: str, config: str = 'the config'
                    ) -> Dict[str, float]:
    """Build the runner of ``cfg`` (from :func:`~.runner_config.test_config`), load
    ``checkpoint`` strictly and run the test loop; return the metrics.

    The folders the test writes files into (the metric's ``output_dir``, set from
    ``out``, and the painted predictions of ``show_dir``) are outputs like any other:
    new or empty folders only (an existing one with files, or one inside a published
    output folder, is refused before the test runs, so no file of the user's is
    overwritten by a prediction of the same name), each built under a hidden name and
    published whole at the end (:class:`~mmseg_ext.io.staged_dir.StagedDir`), with a
    record naming the config and checkpoint. Under a distributed launcher every rank
    writes into the folders directly (still refused when not empty).
    """
    # before the runner makes its work dir
    loaded = check_fits_config(cfg, checkpoint, config)
    check_checkpoint_classes(cfg, loaded, config, checkpoint)
    folders = _output_folders(cfg)
    for folder, marker, _ in folders:
        check_new_folder(folder)
        if marker == TEST_PREDICTIONS_MARKER:
            check_unique_output_names(cfg, folder)
    from ..config.outputs import check_output_files_new
    check_output_files_new(cfg, ('test_evaluator',))
    if not folders or cfg.get('launcher', 'none') != 'none':
        return _run_test(cfg, checkpoint, config)
    import contextlib

    from ..io.staged_dir import StagedDir
    with contextlib.ExitStack() as stack:
        staged = [(stack.enter_context(StagedDir(folder, marker=marker)), marker, point_at,
                   folder) for folder, marker, point_at in folders]
        for stage, _, point_at, _ in staged:
            point_at(stage.tmp)
        try:
            metrics = _run_test(cfg, checkpoint, config)
        finally:
            for _, _, point_at, folder in staged:
                point_at(folder)
        for stage, marker, _, _ in staged:
            with open(stage.file(marker), 'w', encoding='utf-8') as f:
                f.write(f'config: {config}\ncheckpoint: {checkpoint}\n')
        for stage, _, _, _ in staged:
            stage.commit()
    return metrics


def check_unique_output_names(cfg: Config, out: str) -> None:
    """mmseg's metrics save each prediction as ``<out>/<image base name>.png``: refuse a
    test set where two images share a base name (``a/x.png``, ``b/x.png``), whose second
    prediction would replace the first.

    Raises:
        DataError: naming both images.
    """
    from ..datasets.build import loader_images
    from ..utils.errors import DataError
    seen: Dict[str, str] = {}
    for path in loader_images(cfg, 'test_dataloader'):
        stem = osp.splitext(osp.basename(path))[0]
        if stem in seen:
            raise DataError(f'{out}: the test images {seen[stem]} and {path} would be saved '
                            f'as one prediction {stem}.png (predictions are named by base '
                            'name): rename one, or test without --out')
        seen[stem] = path


def check_new_folder(path: str) -> None:
    """Refuse an existing ``path`` that is not an empty folder (a tool without a
    ``force``: nothing of the user's is ever replaced), and a ``path`` that is or lies
    inside a published output folder (which holds only what its tool wrote).

    Raises:
        OutputError: ``path`` holds files, or is a file or a link, or lies inside a
            published output folder.
    """
    from ..io.folder_manifest import published_above
    from ..utils.errors import OutputError
    problem = published_above(osp.dirname(osp.abspath(path)))
    if problem:  # the folder itself, when published, is refused below as not empty
        raise OutputError(f'{path}: {problem}')
    if not osp.lexists(path):
        return
    if osp.islink(path):
        raise OutputError(f'{path}: is a symbolic link (to {os.readlink(path)}), not a '
                          'folder; an output folder is not written through a link: remove '
                          'the link or choose another output folder')
    if not osp.isdir(path):
        raise OutputError(f'{path}: exists and is not a folder; choose a new output folder')
    if os.listdir(path):
        raise OutputError(f'{path}: exists and is not empty; the predictions go to a new '
                          'or empty folder (nothing in it is replaced)')


def _run_test(cfg: Config, checkpoint: str, config: str = 'the config') -> Dict[str, float]:
    from .tool_runner import TestToolRunner
    runner = TestToolRunner.from_cfg(cfg)
    loaded = runner.load_checkpoint(checkpoint, map_location='cpu', strict=True)
    named = checkpoint_class_names(loaded, checkpoint, bare_segmentor(runner.model))
    classes = named or config_classes(cfg, ('test_dataloader',))
    if classes:  # thresholds by class name need no test_cfg.classes
        set_class_names(bare_segmentor(runner.model), classes, config)
    hook = CheckpointClassesHook(named, _checkpoint_palette(loaded), config, checkpoint)
    runner.register_hook(hook, priority='VERY_HIGH')  # names a test set that has none
    return runner.test() or {}


def _checkpoint_palette(checkpoint: dict) -> list:
    """``meta.dataset_meta.palette`` of a checkpoint (``[]`` when it has none)."""
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    dataset_meta = meta.get('dataset_meta') if isinstance(meta, dict) else None
    palette = dataset_meta.get('palette') if isinstance(dataset_meta, dict) else None
    return list(palette) if isinstance(palette, (list, tuple)) else []


class CheckpointClassesHook(Hook):
    """Give the test's evaluator and visualizer the checkpoint's class names when the
    test set names none (a plain ``BaseSegDataset`` with ``metainfo=None``), as
    inference uses them: mmseg's ``IoUMetric`` would otherwise end the whole test in
    ``KeyError: 'classes'``. When neither names them, a metric that needs the names is
    refused before the first image.

    Raises:
        ConfigError: (``before_test``) no class names anywhere, and a metric needs them.
    """

    def __init__(self, classes, palette, config: str, checkpoint: str):
        self.classes = tuple(classes)
        self.palette = list(palette)
        self.config = config
        self.checkpoint = checkpoint

    def _palette(self, meta: dict) -> list:
        from ..utils.class_names import random_palette
        for palette in (meta.get('palette'), self.palette):
            if isinstance(palette, (list, tuple)) and len(palette) == len(self.classes) \
                    and all(isinstance(c, (list, tuple)) and len(c) == 3 for c in palette):
                return [list(c) for c in palette]
        return random_palette(len(self.classes))

    def before_test(self, runner) -> None:
        from mmseg.evaluation.metrics import IoUMetric

        from ..evaluation.per_image_iou import PerImageIoUMetric
        loop = runner.test_loop
        meta = getattr(loop.dataloader.dataset, 'metainfo', None)
        meta = dict(meta) if isinstance(meta, dict) else {}
        if meta.get('classes'):
            return
        if not self.classes:
            needs = next((type(m).__name__ for m in loop.evaluator.metrics
                          if isinstance(m, (IoUMetric, PerImageIoUMetric))), None)
            if needs:
                raise ConfigError(f'{self.config}: test_dataloader.dataset names no '
                                  f'classes, and {self.checkpoint} does not either '
                                  f'(meta.dataset_meta.classes), but {needs} needs them: '
                                  'set test_dataloader.dataset.metainfo.classes')
            return
        meta.update(classes=self.classes, palette=self._palette(meta))
        loop.evaluator.dataset_meta = meta
        runner.visualizer.dataset_meta = meta


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
    check_test_cfg_classes(cfg, path, ('val_dataloader', 'train_dataloader'), cfg_options)
    if amp:
        enable_amp(cfg)
    cfg.resume = resume
    load_from = cfg.get('load_from')
    if load_from:
        check_checkpoint_file(str(load_from))
    check_weights_exist(cfg.get('model', {}), path)
    from ..config.checks import check_load_from, check_resume
    check_load_from(cfg, path)
    check_resume(cfg, path)
    write_checkpoints_atomically(cfg)
    check_training_output_folders(cfg)
    prepare_distributed(cfg, launcher)
    return cfg


def write_checkpoints_atomically(cfg: Config) -> None:
    """Let the checkpoint hook write each checkpoint whole or not at all.

    Selects :class:`~mmseg_ext.io.checkpoint_backend.AtomicLocalBackend` for mmengine's
    ``CheckpointHook`` when the config names no backend of its own and the checkpoints
    go to a local folder; otherwise the config is left as it is. The backend is told
    the run's work dir (its real path), which each checkpoint's ownership record names.
    """
    hook = cfg.get('default_hooks', {}).get('checkpoint')
    if not hook or hook.get('type') not in ('CheckpointHook', 'mmengine.CheckpointHook'):
        return
    run = osp.realpath(str(cfg.work_dir))
    args = hook.get('backend_args')
    if isinstance(args, dict) and args.get('backend') == ATOMIC_LOCAL_BACKEND:
        args['run'] = run  # a dumped config of another work dir names that one
        return
    if args is not None or hook.get('file_client_args') is not None:
        return
    if '://' in str(hook.get('out_dir') or ''):
        return
    hook['backend_args'] = dict(backend=ATOMIC_LOCAL_BACKEND, run=run)


def check_display() -> None:
    """Refuse to show pictures where there is no display to show them on: on Linux and
    the other X11/Wayland systems, neither ``DISPLAY`` nor ``WAYLAND_DISPLAY`` is set
    (mmengine's window would never open, and a wait for a key press would never end).

    Raises:
        InvalidArgumentError: for the ``show`` argument.
    """
    import sys
    if sys.platform in ('win32', 'darwin'):
        return
    if not (os.environ.get('DISPLAY') or os.environ.get('WAYLAND_DISPLAY')):
        raise InvalidArgumentError('show', 'no display to show the predictions on '
                                   '(neither DISPLAY nor WAYLAND_DISPLAY is set); save '
                                   'the drawings to a folder instead')


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
    check_checkpoint_file(checkpoint)
    check_runner_path(out, 'out')
    check_runner_path(show_dir, 'show_dir')
    if show and show_dir:  # mmseg's hook then only shows, and the folder stays empty
        raise InvalidArgumentError('show_dir', "does not go with show: mmseg's "
                                   'visualization hook shows each picture or saves it, '
                                   'never both')
    if show:
        check_display()
    cfg = load_config(path, cfg_options, launcher, work_dir)
    check_test_cfg_classes(cfg, path, ('test_dataloader',), cfg_options)
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
        if show_dir:  # mmengine writes fixed names there (vis_data/config.py, ...)
            check_new_folder(show_dir)
            cfg.visualizer['save_dir'] = show_dir
            cfg[SHOW_DIR_KEY] = show_dir  # staged by test_checkpoint
            # mmengine keeps one visualizer per name and process: a new name, so that a
            # second test in one process draws into its own folder
            import uuid
            cfg.visualizer['name'] = f'{cfg.visualizer.get("name", "visualizer")}_' \
                                     f'{uuid.uuid4().hex[:8]}'
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
        _write_predictions_to(cfg, path, out)
    prepare_distributed(cfg, launcher)
    return cfg


def _write_predictions_to(cfg: Config, path: str, out: str) -> None:
    """Let the test metric write its predictions into ``out``: the one metric of
    ``test_evaluator`` (a dict, or the one entry of a list whose metric takes an
    ``output_dir``: mmseg's ``IoUMetric`` beside a per-image metric).

    Raises:
        InvalidArgumentError: for ``out``, when no metric or several take an
            ``output_dir`` (which of them writes is the config's to say).
    """
    from ..config.components import component_takes
    from ..config.outputs import evaluator_metrics
    metrics = evaluator_metrics(cfg, 'test_evaluator')
    if len(metrics) > 1:
        metrics = [m for m in metrics if component_takes(m[1], 'output_dir') is not False]
    if len(metrics) != 1:
        raise InvalidArgumentError('out', f'{path}: test_evaluator holds {len(metrics)} '
                                   'metrics that take an output_dir; which of them '
                                   "writes the predictions is the config's to say: set "
                                   'output_dir on that metric in the config (it is '
                                   'checked as this folder would be)')
    metrics[0][1]['output_dir'] = out
    metrics[0][1]['keep_results'] = True


def check_training_output_folders(cfg: Config) -> None:
    """Refuse a training whose config writes into a folder outside its work dir that
    holds files: a validation metric's ``output_dir`` (it writes one PNG per image,
    named like the images: over the data's own labels, when that is the folder) and the
    logger hook's ``out_dir`` target (``config.py``, ``scalars.json`` and logs). Those
    folders must be new or empty, as every output folder of the tools. (The
    checkpoint hook's target holds checkpoints with ownership records, checked by
    :func:`~mmseg_ext.training.tool_runner.check_checkpoint_folder`.)

    Raises:
        OutputError: naming the folder and the setting.
    """
    from ..config.outputs import check_output_files_new, evaluator_output_dirs, hook_out_folder
    from ..utils.errors import OutputError
    named = list(evaluator_output_dirs(cfg, 'val_evaluator'))
    logger = hook_out_folder(cfg, 'logger')
    if logger:
        named.append(logger)
    for setting, folder in named:
        try:
            check_new_folder(folder)
        except OutputError as exc:
            raise OutputError(f'{exc} ({setting} of the config)') from None
    check_output_files_new(cfg, ('val_evaluator',))


def set_local_rank(local_rank: int) -> None:
    """torch.distributed.launch passes ``--local-rank``; torchrun sets ``LOCAL_RANK``."""
    os.environ.setdefault('LOCAL_RANK', str(local_rank))
