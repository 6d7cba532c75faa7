"""The folders a config names for a run's files besides its work dir, found in one place.

mmengine and mmseg write files wherever a config says, without asking what is there:

* a metric's ``output_dir`` (``val_evaluator`` / ``test_evaluator``, one dict or a list
  of them): one PNG per image, named like the images;
* the visualizer's ``save_dir`` and each of its ``vis_backends``' ``save_dir``:
  ``config.py`` (the merged config) and ``scalars.json``, appended to;
* the logger hook's ``out_dir``: copies of the log folder's files under
  ``<out_dir>/<work dir name>``;
* the checkpoint hook's ``out_dir``: the checkpoints under ``<out_dir>/<work dir name>``
  (each with its ownership record, :mod:`mmseg_ext.io.checkpoint_backend`), named by
  its ``filename_tmpl``;
* files named by a metric or a hook (:data:`OUTPUT_FILE_KEYS`: mmengine's
  ``DumpResults.out_file_path``, ``ProfilerHook.json_trace_path``), written over
  whatever file has that name.

The tools check each of these before a run as they check their own output options
(``mmseg_ext.training.runner``). The visualizer's folders are the run's log folder, which
the runner sets: a config that names one is refused when it is loaded
(:func:`check_visualizer_folders`).
"""
from __future__ import annotations

import os.path as osp
from typing import List, Optional, Sequence, Tuple

from mmengine.config import Config

from ..utils.errors import ConfigError

#: the evaluators whose metrics may write prediction files
EVALUATORS = ('val_evaluator', 'test_evaluator')
#: arguments of metrics and hooks that name one file the component writes
OUTPUT_FILE_KEYS = ('out_file_path', 'json_trace_path')


def evaluator_metrics(cfg: Config, key: str) -> List[Tuple[str, dict]]:
    """``(where, metric)`` for each metric of the evaluator ``key``: ``(key, cfg[key])``
    for one dict, ``(f'{key}.{i}', entry)`` for each dict of a list."""
    evaluator = cfg.get(key)
    if isinstance(evaluator, dict):
        return [(key, evaluator)]
    if isinstance(evaluator, (list, tuple)):
        return [(f'{key}.{i}', e) for i, e in enumerate(evaluator) if isinstance(e, dict)]
    return []


def evaluator_output_dirs(cfg: Config, key: str) -> List[Tuple[str, str]]:
    """``(setting, folder)`` for each metric of the evaluator ``key`` that writes its
    predictions into a folder (``output_dir`` set)."""
    return [(f'{where}.output_dir', str(metric['output_dir']))
            for where, metric in evaluator_metrics(cfg, key) if metric.get('output_dir')]


def visualizer_folders(cfg: Config) -> List[Tuple[str, str]]:
    """``(setting, folder)`` for the visualizer's ``save_dir`` and each vis backend's."""
    visualizer = cfg.get('visualizer')
    if not isinstance(visualizer, dict):
        return []
    found = [('visualizer.save_dir', str(visualizer['save_dir']))] \
        if visualizer.get('save_dir') else []
    backends = visualizer.get('vis_backends') or []
    for i, backend in enumerate(backends if isinstance(backends, (list, tuple)) else []):
        if isinstance(backend, dict) and backend.get('save_dir'):
            found.append((f'visualizer.vis_backends.{i}.save_dir', str(backend['save_dir'])))
    return found


def hook_out_folder(cfg: Config, hook: str) -> Optional[Tuple[str, str]]:
    """``(setting, folder)`` where the hook ``default_hooks.<hook>`` (``'logger'``,
    ``'checkpoint'``) writes with its ``out_dir``: ``<out_dir>/<work dir name>``, as
    mmengine joins them; None without an ``out_dir`` or for a remote one."""
    entry = (cfg.get('default_hooks') or {}).get(hook)
    out_dir = entry.get('out_dir') if isinstance(entry, dict) else None
    if not out_dir or '://' in str(out_dir):
        return None
    name = osp.basename(str(cfg.get('work_dir') or '').rstrip(osp.sep))
    return f'default_hooks.{hook}.out_dir', osp.join(str(out_dir), name)


def hook_entries(cfg: Config) -> List[Tuple[str, dict]]:
    """``(where, hook)`` for each hook dict of ``default_hooks`` and ``custom_hooks``."""
    found = [(f'default_hooks.{name}', hook)
             for name, hook in (cfg.get('default_hooks') or {}).items()
             if isinstance(hook, dict)]
    custom = cfg.get('custom_hooks') or []
    found += [(f'custom_hooks.{i}', hook)
              for i, hook in enumerate(custom if isinstance(custom, (list, tuple)) else [])
              if isinstance(hook, dict)]
    return found


def output_files(cfg: Config, evaluators: Sequence[str] = EVALUATORS
                 ) -> List[Tuple[str, str]]:
    """``(setting, file)`` for each file a metric of ``evaluators`` or a hook names for
    its output (:data:`OUTPUT_FILE_KEYS`)."""
    found = []
    entries = [e for key in evaluators for e in evaluator_metrics(cfg, key)]
    for where, node in entries + hook_entries(cfg):
        for key in OUTPUT_FILE_KEYS:
            if node.get(key):
                found.append((f'{where}.{key}', str(node[key])))
    return found


def check_output_files_new(cfg: Config, evaluators: Sequence[str]) -> None:
    """Refuse a run whose metrics (of ``evaluators``) or hooks would write a file that
    exists: they write over it without asking (a user's results, the data's own label
    JSON).

    Raises:
        OutputError: naming the file and the setting.
    """
    from ..utils.errors import OutputError
    for setting, path in output_files(cfg, evaluators):
        if osp.lexists(path):
            raise OutputError(f'{path}: exists; {setting} of the config would write over '
                              'it: name a new file')


def check_checkpoint_names(cfg: Config, path: str) -> None:
    """Refuse a checkpoint hook ``filename_tmpl`` that is not a plain file name with
    one ``{}`` (the step): a path in it puts the checkpoints (and their ownership
    records) outside the checkpoint folder, among other files.

    Raises:
        ConfigError: naming the setting.
    """
    hook = (cfg.get('default_hooks') or {}).get('checkpoint')
    template = hook.get('filename_tmpl') if isinstance(hook, dict) else None
    if template is None:
        return
    if not isinstance(template, str) or template.count('{}') != 1 or '/' in template \
            or osp.sep in template or template.startswith('.') or '{' in template.replace(
                '{}', '', 1) or '}' in template.replace('{}', '', 1):
        raise ConfigError(f'{path}: default_hooks.checkpoint.filename_tmpl={template!r}: '
                          'must be a file name with one {} for the step (such as '
                          "'iter_{}.pth'), without a folder: the checkpoints stay in the "
                          'checkpoint folder')


def check_visualizer_folders(cfg: Config, path: str) -> None:
    """Refuse a config that names the visualizer's or a vis backend's ``save_dir``: the
    runner writes the run's ``config.py`` and ``scalars.json`` into the run's log folder,
    and a folder named instead gets them over whatever files of those names it holds
    (the config file itself, when it is ``.``). Drawings of a test go to a new folder of
    their own (``show_dir`` of ``mmseg_ext.training.runner.test_config``).

    Raises:
        ConfigError: naming the setting and the folder.
    """
    named = visualizer_folders(cfg)
    if named:
        setting, folder = named[0]
        raise ConfigError(f'{path}: {setting}={folder!r}: the run writes its logs, '
                          'scalars and config dump into its own log folder in the work '
                          'dir, and would write them over files of those names in this '
                          'folder; remove the setting (drawings of a test go to a new '
                          'folder of their own)')


def single_run_outputs(cfg: Config) -> List[Tuple[str, str]]:
    """``(setting, place)`` for every folder or file outside the work dir that a
    training run of ``cfg`` writes into: the validation metrics' ``output_dir``, the
    logger and checkpoint hooks' ``out_dir`` targets, and the files of
    :func:`output_files`. A workflow that trains several runs from one
    config (folds, a teacher and a student) would write them all into these."""
    found = list(evaluator_output_dirs(cfg, 'val_evaluator'))
    for hook in ('logger', 'checkpoint'):
        target = hook_out_folder(cfg, hook)
        if target:
            found.append((target[0], osp.dirname(target[1])))
    return found + output_files(cfg, ('val_evaluator',))


def check_no_shared_outputs(cfg: Config, path: str, runs: str) -> None:
    """Refuse a config that makes each of several runs (``runs``: "the K fold
    trainings") write into one folder outside the workflow's work dir.

    Raises:
        ConfigError: naming the setting and the folder.
    """
    shared = single_run_outputs(cfg)
    if shared:
        setting, folder = shared[0]
        raise ConfigError(f'{path}: {setting}={folder!r}: {runs} would each write into '
                          'this folder, outside the work dir the workflow owns, over '
                          "each other's files; remove the setting (each run's files stay "
                          'in its own folder of the work dir)')
