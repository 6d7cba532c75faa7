"""The hidden manifest a tool leaves beside its outputs: its name, its entries, who lists a path.

Both kinds of manifest share one name (:data:`MANIFEST`) and one JSON format::

    {"tool": ..., "entries": {relative path: {"type": "file", "size": ..., "mtime_ns": ...}
                                             | {"type": "dir"}}}

the work-directory manifest of a multi-stage tool (:mod:`mmseg_ext.io.ownership`) and the
record inside a published output folder (:mod:`mmseg_ext.io.folder_manifest`), so either
recognises the other's folders as not its own. A file is recorded with the identity it
had when written (:func:`file_identity`: size and ``st_mtime_ns``, not following links).
"""
from __future__ import annotations

import os
import os.path as osp
from typing import Dict, Optional, Tuple

#: the ownership record in a work directory or a published folder
MANIFEST = '.mmseg_ext_manifest.json'

Entry = Dict[str, object]


def file_identity(path: str) -> Entry:
    """``{'type': 'file', 'size': bytes, 'mtime_ns': int}`` of ``path`` (not followed
    through a symbolic link: a link is recorded as itself)."""
    st = os.lstat(path)
    return {'type': 'file', 'size': st.st_size, 'mtime_ns': st.st_mtime_ns}


def manifest_fields(data) -> Tuple[str, Dict[str, Entry]]:
    """``(tool, entries)`` of a parsed manifest, checked against the format (text tool,
    every entry an object of type ``file`` or ``dir``).

    Raises:
        KeyError, TypeError: ``data`` is not a manifest (the caller names the file).
    """
    tool, entries = data['tool'], data['entries']
    if not isinstance(tool, str) or not isinstance(entries, dict) or not all(
            isinstance(e, dict) and e.get('type') in ('file', 'dir')
            for e in entries.values()):
        raise TypeError
    return tool, entries


def owning_work_dir(path: str) -> Optional[str]:
    """The closest folder above ``path`` whose manifest lists ``path`` (a work dir of
    a multi-stage tool: cv's ``oof_probs``, a fold's ``val_probs``), or None."""
    from ..utils.readers import read_json
    full = osp.abspath(path)
    folder = osp.dirname(full)
    while True:
        record = osp.join(folder, MANIFEST)
        if osp.isfile(record) and not osp.islink(record):
            try:
                entries = read_json(record, 'manifest').get('entries') or {}
            except (OSError, ValueError, AttributeError):
                entries = {}
            if osp.relpath(full, folder).replace(os.sep, '/') in entries:
                return folder
        parent = osp.dirname(folder)
        if parent == folder:
            return None
        folder = parent

