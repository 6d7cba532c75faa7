"""A tool's set of output files in a folder the user names, recorded in its manifest.

For tools whose output is a set of files in one folder (``tools/kfold.py``):
:func:`write_owned_files` publishes them as one commit
(:func:`~mmseg_ext.io.file_sets.atomic_write_files`) and lists them in the folder's
manifest (:class:`~mmseg_ext.io.ownership.Manifest`), so a later run replaces or removes
only what the tool wrote.
"""
from __future__ import annotations

import contextlib
import os
import os.path as osp
from typing import Dict, List

from ..utils.errors import OutputExistsError
from .file_sets import atomic_write_files
from .ownership import Manifest


def write_owned_files(out_dir: str, tool: str, texts: Dict[str, str],
                      force: bool = False) -> List[str]:
    """Write a tool's set of text files into ``out_dir`` as one commit, recording them
    in the folder's manifest (see the module doc), for tools whose output is a set of
    files in a folder the user names (``tools/kfold.py``).

    * a folder with content but no manifest (or another tool's) is refused;
    * a file to write that exists and is not the tool's (unlisted, or changed since
      the tool wrote it) is refused, with and without ``force``;
    * the tool's files of an earlier run that this run does not write (another number
      of folds, another format) are stale: ``force`` removes them in the same commit
      (refused when changed since); without ``force`` any file of an earlier run, or
      any existing target, is an :class:`OutputExistsError`;
    * files and manifest are published together
      (:func:`~mmseg_ext.io.file_sets.atomic_write_files`): all or none, signal-atomic;
      files in ``out_dir`` the tool never listed are kept.

    Args:
        texts: path (inside ``out_dir``) -> UTF-8 text.

    Returns:
        The paths written, in the order given.

    Raises:
        OutputError: the folder or a file in the way is not the tool's.
        OutputExistsError: an earlier output is there and ``force`` is off.
    """
    existed = osp.isdir(out_dir)
    manifest = Manifest.check_claimable(out_dir, tool) or Manifest(out_dir, tool)
    for path in texts:
        if osp.lexists(path):
            manifest.check_replaceable(path)
    targets = {osp.abspath(p) for p in texts}
    stale = [manifest.full_path(rel) for rel, entry in sorted(manifest.entries.items())
             if entry['type'] == 'file' and osp.lexists(manifest.full_path(rel))
             and osp.abspath(manifest.full_path(rel)) not in targets]
    for path in stale:
        manifest.check_replaceable(path)
    if not force:
        earlier = [p for p in texts if osp.lexists(p)] + stale
        if earlier:
            raise OutputExistsError(earlier[0])

    def save_manifest() -> None:
        for path in stale:
            manifest.entries.pop(manifest.rel(path), None)
        for path in texts:
            manifest.record(path, save=False)
        manifest.save()

    try:
        return atomic_write_files(texts, force, remove=stale, after_publish=save_manifest)
    except BaseException:
        if not existed:  # made by this run: leave no empty folder
            with contextlib.suppress(OSError):
                os.rmdir(out_dir)
        raise
