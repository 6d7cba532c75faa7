"""Checkpoints written whole or not at all: an mmengine file backend for local folders.

mmengine's ``LocalBackend.put`` opens the checkpoint's final name and writes into it, so
a run that stops during the write (disk full, SIGTERM from a scheduler, a killed job)
leaves a truncated ``iter_N.pth`` under a name that looks valid. :class:`AtomicLocalBackend`
writes through :func:`~mmseg_ext.io.atomic.atomic_open` instead: a hidden temporary file
beside the target, renamed onto it when complete. Everything else (paths, listing,
removing old checkpoints) is mmengine's ``LocalBackend``.

It is registered as ``'atomic_local'``. The training tools select it for the checkpoint
hook (``default_hooks.checkpoint.backend_args=dict(backend='atomic_local')``) when the
config names no backend of its own; a config may name it itself.
"""
from __future__ import annotations

import logging
import os
import os.path as osp
from pathlib import Path
from typing import Optional, Union

from mmengine.fileio import LocalBackend, register_backend

from .atomic import atomic_open
from .owned_file import read_record, record_path, replace_problem

#: every checkpoint file this process wrote or removed through the backend, in order
#: (absolute paths): what a run did to its work dir is the entries after the count it
#: noted at its start (:class:`~mmseg_ext.training.tool_runner.ToolRunner`)
CHANGED_BY_THIS_PROCESS: list = []

#: The name the backend is registered under in mmengine's file backends.
ATOMIC_LOCAL_BACKEND = 'atomic_local'


class AtomicLocalBackend(LocalBackend):
    """``LocalBackend`` whose writes publish a complete file or nothing.

    A write replaces an existing file of the same name, as mmengine's own backend does
    (a checkpoint hook rewrites ``best_*.pth`` and a rerun rewrites ``iter_N.pth``), but
    only a checkpoint a training run wrote and that is unchanged since: each one is
    published with an ownership record (:data:`CHECKPOINT_OWNER`,
    :mod:`mmseg_ext.io.owned_file`), and a file of the user's with that name (a copy of
    a checkpoint kept in the work dir, the run's own ``load_from``) is refused.

    Each record names the training run by its work dir (``run``, the real path the
    tools pass in ``backend_args``: :func:`checkpoint_owner`), so a run never replaces
    another run's checkpoint either: two work dirs of one base name that share a
    checkpoint ``out_dir`` write into one folder, and the second is refused instead of
    replacing the first's ``iter_N.pth``.

    Args:
        run: the real path of the work dir of the training writing through this
            backend; ``''`` for a backend built without one (a record then names no
            run).

    Raises:
        OutputError: the folder cannot be written (permission, read-only disk, disk
            full), or the name is taken by a file that is not this run's unchanged
            checkpoint; the temporary file is removed and an earlier file of the same
            name is left as it was.
    """

    def __init__(self, run: str = '') -> None:
        self.run = run

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        path = str(filepath)
        owner = checkpoint_owner(self.run)
        if osp.lexists(path) and read_record(path).get('tool') == CHECKPOINT_OWNER:
            owner = CHECKPOINT_OWNER  # a record of an older version names no run
        with atomic_open(path, 'wb', force=True, owner=owner) as f:
            f.write(obj)
        CHANGED_BY_THIS_PROCESS.append(osp.abspath(path))

    def remove(self, filepath: Union[str, Path]) -> None:
        """Remove a checkpoint (the hook's ``max_keep_ckpts``, a replaced ``best_*``)
        with its ownership record, only when this process saved it and it is unchanged
        since. Anything else is kept, with a warning: a resumed checkpoint names the
        kept and best checkpoints of the run that saved it, which may be another work
        dir's files, another run's, or a user's of the same name. (So after a resume,
        ``max_keep_ckpts`` trims only the checkpoints saved since.)"""
        path = osp.abspath(str(filepath))
        problem = training_checkpoint_problem(path) if osp.lexists(path) else ''
        if path not in CHANGED_BY_THIS_PROCESS or problem:
            _kept(path, problem or 'not saved by this training run')
            return
        super().remove(filepath)
        CHANGED_BY_THIS_PROCESS.append(path)
        record = record_path(path)
        if osp.isfile(record) and not osp.islink(record):
            os.remove(record)

    def rmtree(self, dir_path: Union[str, Path]) -> None:
        """The hook removes a checkpoint saved as a folder with ``rmtree``; this backend
        saves files, so a folder of that name is never the training's own: kept, with
        a warning."""
        _kept(osp.abspath(str(dir_path)), 'a folder this training did not save')

    def put_text(self, obj: str, filepath: Union[str, Path],
                 encoding: str = 'utf-8') -> None:
        with atomic_open(str(filepath), 'w', force=True, encoding=encoding) as f:
            f.write(obj)
        CHANGED_BY_THIS_PROCESS.append(osp.abspath(str(filepath)))


def _kept(path: str, why: str) -> None:
    from mmengine.logging import print_log
    print_log(f'{path}: kept ({why}); the checkpoint hook asked to remove it',
              logger='current', level=logging.WARNING)


#: the owner recorded beside a checkpoint written through this backend (followed by
#: ``' of <work dir>'``, :func:`checkpoint_owner`)
CHECKPOINT_OWNER = 'training checkpoint'


def checkpoint_owner(run: str) -> str:
    """The owner a checkpoint of the training run in work dir ``run`` records."""
    return f'{CHECKPOINT_OWNER} of {run}' if run else CHECKPOINT_OWNER


def checkpoint_run(path: str) -> Optional[str]:
    """The work dir of the training run whose checkpoint ``path`` is, by its record:
    ``''`` for a training checkpoint whose record names no run, None when ``path`` is
    not a training checkpoint (no record, another tool's)."""
    tool = read_record(path).get('tool')
    if tool == CHECKPOINT_OWNER:
        return ''
    prefix = checkpoint_owner('-')[:-1]
    if isinstance(tool, str) and tool.startswith(prefix) and len(tool) > len(prefix):
        return tool[len(prefix):]
    return None


def training_checkpoint_problem(path: str) -> str:
    """Why ``path`` is not a training run's unchanged checkpoint (``''`` when it is),
    whichever run saved it."""
    run = checkpoint_run(path)
    return replace_problem(path, checkpoint_owner(run or ''))

register_backend(ATOMIC_LOCAL_BACKEND, AtomicLocalBackend, force=True)
