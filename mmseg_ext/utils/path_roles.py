"""The one rule of where an output may go relative to the inputs, and the inputs a
config names.

An output must not be an input, lie inside an input folder, or hold an input
(replacing or clearing it would delete the input). Paths are compared after
``realpath``: ``a/../a/t.json``, a symbolic link to a parent folder and a relative
spelling all name the same file. :func:`output_conflict` states the rule;
:class:`mmseg_ext.utils.cli.ToolParser` applies it to every tool's command line
(the roles its path options declare) and
:func:`mmseg_ext.io.paths.check_output_apart` to library calls.

:func:`config_data_inputs` lists the data a config reads (each data set's
``data_root``, or its ``data_prefix`` folders and ``ann_file`` where it has no root),
so the tools that take a config count those as inputs too.
"""
from __future__ import annotations

import os
import os.path as osp
from typing import Any, Iterator, List, Optional

from .dataset_configs import dataset_nodes

#: what a path option is (``ToolParser.add_argument(..., role=...)``):
#:
#: * ``input``: a file or folder the tool reads;
#: * ``config``: a config file; it and the data it names (:func:`config_data_inputs`,
#:   after the tool's ``--cfg-options``) are inputs;
#: * ``input-or-value``: a number or text, or a file read when it names an existing one
#:   (a value that reads as a number is that number, even where a file of that name
#:   exists: ``--min-area 5`` is 5 pixels)
#:   (per-class values: ``--thresholds 0.5`` or ``--thresholds th.json``);
#: * ``url``: a URL; a ``file://`` one names an input file;
#: * ``output``: a file or folder the tool writes or replaces: never an input, inside an
#:   input folder or holding an input;
#: * ``work-dir``: a folder the tool only adds to (a training run's logs and
#:   checkpoints): never an input nor inside an input folder, but it may hold inputs
#:   (the checkpoint a run resumes from, a config kept beside it);
#: * ``text``: not a path (a regex, a device, a suffix, names).
ROLES = ('input', 'config', 'input-or-value', 'url', 'output', 'work-dir', 'text')
INPUT_ROLES = ('input', 'config', 'input-or-value', 'url')
OUTPUT_ROLES = ('output', 'work-dir')


def output_place_problem(path: str) -> Optional[str]:
    """Why ``path`` cannot be an output place (``None`` when it can): ``-`` (which many
    tools read as standard output; these tools write files), or an existing device,
    FIFO or socket (an output is written beside and renamed over, which such a path
    cannot take)."""
    import stat

    from .readers import file_kind
    if path == '-':
        return "'-' (standard output) is not supported; give a file or folder name"
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return f'{path} is {file_kind(mode)}, not a file or folder to write'


def real(path: str) -> str:
    """``path`` with symbolic links, ``..`` and ``.`` resolved (it need not exist)."""
    return osp.realpath(osp.expanduser(path))


def inside(path: str, folder: str) -> bool:
    """``path`` is ``folder`` or lies under it (both already :func:`real`)."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def output_conflict(out: str, src: str, holds_inputs: bool = False) -> Optional[str]:
    """Why writing ``out`` would touch the input ``src``, or None when it would not.

    Args:
        out: the output path as the user gave it.
        src: an input path as the user gave it (or as read from a config).
        holds_inputs: ``out`` is a folder that is only added to, so it may hold
            ``src`` (but still not be it nor lie inside it).

    Returns:
        ``'also an input'``, ``'inside the input folder'`` or ``'holds the input'``.
    """
    real_out, real_in = real(out), real(src)
    if real_out == real_in:
        return 'also an input'
    if osp.isdir(real_in) and inside(real_out, real_in):
        return 'inside the input folder'
    if not holds_inputs and inside(real_in, real_out):
        return 'holds the input'
    return None


def outputs_conflict(first: str, second: str, first_holds: bool = False,
                     second_holds: bool = False) -> Optional[str]:
    """Why two outputs of one command would write over each other, or None.

    Args:
        first, second: the outputs as the user gave them.
        first_holds, second_holds: that output is a folder only added to (a work dir),
            which may hold the other output (but not be it).

    Returns:
        ``'the same path as'``, ``'inside'`` (``first`` in ``second``) or
        ``'a folder holding'`` (``second`` in ``first``).
    """
    a, b = real(first), real(second)
    if a == b:
        return 'the same path as'
    if inside(a, b) and not second_holds:
        return 'inside'
    if inside(b, a) and not first_holds:
        return 'a folder holding'
    return None


def conflict_text(out: str, src: str, reason: str, source: str = '') -> str:
    """The problem part of the one error line: ``out``, why, and the input.

    ``source`` says where the input came from: the option that named it (given when
    ``out`` is that very input, whose path then says nothing new) or the config whose
    data it is.
    """
    where = f' ({source})' if source else ''
    if reason == 'also an input':
        return f'{out} is also an input{where}; write outputs elsewhere'
    verb = '' if reason.startswith('holds') else 'is '
    return f'{out} {verb}{reason} {src}{where}; write outputs elsewhere'


def _datasets(node: Any) -> Iterator[dict]:
    """Every data set dict under a dataloader's ``dataset`` (wrappers included) that
    names data (a ``data_root``, ``data_prefix`` or ``ann_file``)."""
    for ds in dataset_nodes(node):
        if 'data_root' in ds or 'data_prefix' in ds or 'ann_file' in ds:
            yield ds


def dataset_inputs(dataset: dict) -> List[str]:
    """The folders and files a data set dict reads: its ``data_root`` when it has one,
    else its ``data_prefix`` folders and ``ann_file`` (relative to the working folder)."""
    root = dataset.get('data_root') or ''
    if isinstance(root, str) and root.strip():
        return [root]
    found = []
    prefix = dataset.get('data_prefix') or {}
    values = list(prefix.values()) if isinstance(prefix, dict) else []
    for value in values + [dataset.get('ann_file')]:
        if isinstance(value, str) and value.strip():
            found.append(value)
    return found


def config_data_inputs(config: str, cfg_options: Optional[dict] = None) -> List[str]:
    """The data roots (or data folders) of every dataloader of ``config`` after
    ``cfg_options`` that exist; ``[]`` when the file cannot be read (the tool that reads
    it later reports that in its own words). A root that does not exist holds nothing
    an output could write over (a test run does not read the config's default training
    root, which often is not there), so it is no input to compare outputs with."""
    if not osp.isfile(config):
        return []
    # reading a config imports mmengine: check first that this environment can (one
    # line naming the fix, instead of a mixed stack's traceback or import noise)
    from .env_check import check_environment
    check_environment()
    try:
        from mmengine.config import Config
        cfg = Config.fromfile(config, import_custom_modules=False)
        if cfg_options:
            cfg.merge_from_dict(cfg_options)
    except Exception:  # noqa: BLE001  (reported by the tool when it loads the config)
        return []
    found: List[str] = []
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(key, None)
        if isinstance(loader, dict):
            for dataset in _datasets(loader.get('dataset')):
                found += [p for p in dataset_inputs(dataset)
                          if p not in found and osp.lexists(p)]
    return found
