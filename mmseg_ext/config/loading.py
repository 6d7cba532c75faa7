"""Read a config file as the tools do: one-line errors, ``--cfg-options``, the work dir.

:func:`load_config` is what every tool that takes a config calls first; it applies the
checks of :mod:`.checks` that need no checkpoint and warns about flips that swap lateral
classes. :func:`config_hash` is the content fingerprint that run records store.
"""
from __future__ import annotations

import logging
import os
import os.path as osp
from typing import Optional

from mmengine.config import Config
from mmengine.logging import print_log

from ..utils.errors import ConfigError, InvalidArgumentError
from .checks import (
    check_cfg_options,
    check_class_count,
    check_clip_grad,
    check_compiled_ops,
    check_dataset_metainfo,
    check_finite_settings,
    check_monitored_metrics,
    check_optimizer_values,
    check_paramwise_cfg,
    check_pipeline_sizes,
    check_pipeline_variable_options,
    check_run_settings,
    check_runner_settings,
    check_slide_settings,
    check_test_threshold,
    check_top_level_spelling,
)
from .label_loading import use_checked_label_loading
from .outputs import check_checkpoint_names, check_visualizer_folders
from .tta import lateral_flip_problem, training_flip_problem


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


def _open_unset_dicts(cfg: Config, options: dict) -> None:
    """Make an empty dict of each setting the config leaves ``None`` and the options set
    keys of (``optim_wrapper.clip_grad=None`` in a base, then
    ``--cfg-options optim_wrapper.clip_grad.max_norm=10``): mmengine's merge refuses to
    put a dict where its base has ``None``."""
    from mmengine.config import ConfigDict
    for key in options:
        parts = key.split('.')
        node = cfg._cfg_dict
        for part in parts[:-1]:
            if isinstance(node, dict) and part in node:
                if node[part] is None:
                    node[part] = ConfigDict()
                node = node[part]
            else:
                break


def load_config(path: str, cfg_options: Optional[dict] = None,
                launcher: str = 'none', work_dir: Optional[str] = None) -> Config:
    """Read a config file, apply ``--cfg-options`` and pick the work dir.

    The work dir is, by priority: ``work_dir`` argument, ``work_dir`` in the file,
    ``./work_dirs/<config name>``. The model is checked for compiled ops this install
    lacks (:func:`check_compiled_ops`). Label maps load through the checked loader
    (:func:`~mmseg_ext.config.label_loading.use_checked_label_loading`).
    """
    cfg = read_config(path)
    check_top_level_spelling(cfg, path)
    cfg.launcher = launcher
    if cfg_options:
        check_cfg_options(cfg, cfg_options, path)
        check_pipeline_variable_options(cfg, cfg_options)
        _open_unset_dicts(cfg, cfg_options)
        try:
            cfg.merge_from_dict(cfg_options)
        except Exception as exc:  # noqa: BLE001
            raise InvalidArgumentError('cfg_options', f'cannot apply {cfg_options} to '
                                       f'{path} ({exc})') from None
    check_run_settings(cfg, path, cfg_options or {})
    check_pipeline_sizes(cfg, path, cfg_options or {})
    check_dataset_metainfo(cfg, path, cfg_options or {})
    check_class_count(cfg, path, cfg_options or {})
    check_test_threshold(cfg, path, cfg_options or {})
    check_clip_grad(cfg, path, cfg_options or {})
    check_paramwise_cfg(cfg, path, cfg_options or {})
    check_optimizer_values(cfg, path, cfg_options or {})
    check_monitored_metrics(cfg, path, cfg_options or {})
    check_runner_settings(cfg, path, cfg_options or {})
    check_slide_settings(cfg, path, cfg_options or {})
    check_visualizer_folders(cfg, path)
    check_checkpoint_names(cfg, path)
    check_finite_settings(cfg, path, cfg_options or {})
    use_checked_label_loading(cfg)
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


def config_hash(cfg: Config) -> str:
    """A short hash of a config's resolved settings: two runs of "the same" config file
    whose content (or ``--cfg-options``) changed in between are different runs."""
    import hashlib
    import json
    text = json.dumps(cfg.to_dict(), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
