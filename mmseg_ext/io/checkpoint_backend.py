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

from pathlib import Path
from typing import Union

from mmengine.fileio import LocalBackend, register_backend

from .atomic import atomic_open

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

    Raises:
        OutputError: the folder cannot be written (permission, read-only disk, disk
            full); the temporary file is removed and an earlier file of the same name
            is left as it was.
    """

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        with atomic_open(str(filepath), 'wb', force=True, owner=CHECKPOINT_OWNER) as f:
            f.write(obj)

    def put_text(self, obj: str, filepath: Union[str, Path],
                 encoding: str = 'utf-8') -> None:
        with atomic_open(str(filepath), 'w', force=True, encoding=encoding) as f:
            f.write(obj)


#: the owner recorded beside a checkpoint written through this backend
CHECKPOINT_OWNER = 'training checkpoint'

register_backend(ATOMIC_LOCAL_BACKEND, AtomicLocalBackend, force=True)
