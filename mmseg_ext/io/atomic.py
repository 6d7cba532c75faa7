"""Outputs that appear whole or not at all, and never replace a file without ``force``.

:func:`atomic_open` writes a file under a temporary name in the same folder and renames
it over the target when the ``with`` block ends without error. :class:`StagedDir` does the
same for a whole output folder (one file per image plus an index): everything is written
into a hidden sibling folder that is renamed to the target on :meth:`StagedDir.commit`.
"""
from __future__ import annotations

import contextlib
import os
import os.path as osp
import shutil
from typing import Iterator, Optional

from ..utils.cli import UserError


def check_new_output(path: str, force: bool) -> None:
    """Raise :class:`UserError` when ``path`` exists and ``force`` is False."""
    if osp.lexists(path) and not force:
        raise UserError(f'{path}: already exists (use --force to overwrite it)')


def _tmp_name(path: str, tag: str) -> str:
    folder, base = osp.split(osp.abspath(path))
    return osp.join(folder, f'.{base}.{tag}-{os.getpid()}')


@contextlib.contextmanager
def atomic_open(path: str, mode: str = 'w', force: bool = False,
                **open_kwargs) -> Iterator:
    """Open a temporary file that is renamed to ``path`` when the block succeeds.

    Args:
        path: final file name; its folder is created when missing.
        mode: ``'w'`` (text) or ``'wb'``.
        force: replace an existing ``path``; otherwise that is a :class:`UserError`.
        open_kwargs: passed to :func:`open` (``newline``, ``encoding``...).
    """
    check_new_output(path, force)
    if osp.isdir(path):
        raise UserError(f'{path}: is a folder, expected a file name')
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = _tmp_name(path, 'tmp')
    try:
        with open(tmp, mode, **open_kwargs) as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file (no ``force`` check)."""
    tmp = path + f'.tmp-{os.getpid()}'
    try:
        with open(tmp, 'wb') as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


class StagedDir:
    """Build an output folder under a hidden temporary name; publish it whole.

    Args:
        path: the final folder.
        force: allow replacing an existing ``path``; it is replaced only when it is
            empty or holds ``marker`` (so a folder this project wrote), never a folder of
            unrelated files.
        marker: file name that identifies a folder this tool family wrote.

    Use as a context manager: an exception removes the temporary folder; call
    :meth:`commit` at the end of the block to publish.
    """

    def __init__(self, path: str, force: bool = False, marker: str = 'index.json'):
        self.path = osp.abspath(path)
        self.force = force
        self.marker = marker
        self._check_target()
        self.tmp = _tmp_name(path, 'partial')
        if osp.exists(self.tmp):
            shutil.rmtree(self.tmp)
        os.makedirs(self.tmp)
        self._made = {self.tmp}
        self.committed = False

    def _check_target(self) -> None:
        path = self.path
        if not osp.lexists(path):
            return
        if not osp.isdir(path) or osp.islink(path):
            raise UserError(f'{path}: exists and is not a folder')
        if not os.listdir(path):
            return
        if not self.force:
            raise UserError(f'{path}: already exists (use --force to replace it)')
        if not osp.isfile(osp.join(path, self.marker)):
            raise UserError(f'{path}: exists and holds files this tool did not write '
                            f'(no {self.marker}); refusing to replace it even with --force')

    def file(self, relpath: str) -> str:
        """Path inside the temporary folder for ``relpath`` (parent folders created)."""
        full = osp.join(self.tmp, relpath)
        folder = osp.dirname(full)
        if folder not in self._made:
            os.makedirs(folder, exist_ok=True)
            self._made.add(folder)
        return full

    def commit(self) -> str:
        """Rename the temporary folder to the final name; return the final path."""
        self._check_target()
        old: Optional[str] = None
        if osp.exists(self.path):
            old = _tmp_name(self.path, 'old')
            os.rename(self.path, old)
        os.makedirs(osp.dirname(self.path), exist_ok=True)
        os.rename(self.tmp, self.path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        self.committed = True
        return self.path

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> StagedDir:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self.committed:
            self.abort()
