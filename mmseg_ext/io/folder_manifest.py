"""The record of what a published output folder holds, so ``force`` replaces only that.

A folder published by :class:`~mmseg_ext.io.staged_dir.StagedDir` (a probability folder,
pseudo-labels, drawings, masks) carries a hidden manifest
(:data:`~mmseg_ext.io.manifest_records.MANIFEST`): every file and subfolder the tool
staged, each file with the identity it had when published (size and ``st_mtime_ns``, not
following links). It has the name and the JSON format of the work-directory manifest of
:mod:`mmseg_ext.io.ownership` (:mod:`mmseg_ext.io.manifest_records`), so either module
recognises the other's folders as not its own.

With ``force``, an existing folder is replaced only when :func:`check_replaceable_folder`
finds it entirely the tool's: its manifest is the same tool's and every file and folder
in it is listed and unchanged (listed files since deleted do not matter). A file the user
dropped in, a listed file edited since, a folder without a manifest (someone else's,
or an output of an older version that wrote none), or a manifest that does not parse,
is refused, naming the first such path.
"""
from __future__ import annotations

import json
import os
import os.path as osp
import stat
from typing import Dict, Iterator, Optional, Tuple

from ..utils.errors import MmsegExtError, OutputError
from ..utils.readers import read_json
from .manifest_records import MANIFEST, Entry, file_identity, manifest_fields


def _items(root: str, rel: str = '') -> Iterator[Tuple[str, str]]:
    """``(relative path with '/', full path)`` of everything under ``root`` (not ``root``
    itself, not its top-level :data:`MANIFEST`), depth first in name order, a folder
    before its content; symbolic links are items, never followed."""
    folder = osp.join(root, *rel.split('/')) if rel else root
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if not rel and entry.name == MANIFEST:
            continue
        sub = f'{rel}/{entry.name}' if rel else entry.name
        yield sub, entry.path
        if entry.is_dir(follow_symlinks=False):
            yield from _items(root, sub)


def _entry(path: str) -> Entry:
    st = os.lstat(path)
    if stat.S_ISDIR(st.st_mode):
        return {'type': 'dir'}
    return file_identity(path)


def folder_entries(root: str) -> Dict[str, Entry]:
    """Relative path -> entry of everything under ``root`` as it is now."""
    return {rel: _entry(full) for rel, full in _items(root)}


def manifests_above(path: str, include_self: bool = True
                    ) -> Iterator[Tuple[str, str, Optional[dict]]]:
    """``(how, folder, data)`` for each folder at or above ``path`` that holds a
    manifest (work dir or published folder), nearest first: first up the path as given
    (``how`` ``'lies inside'``), then up where it leads through symbolic links
    (``'leads into'``). ``data`` is the parsed manifest, None when it cannot be read.

    Args:
        include_self: ``path`` itself is one of the folders (else only those above).
    """
    for start, how in ((osp.abspath(path), 'lies inside'), (osp.realpath(path), 'leads into')):
        current = start if include_self else osp.dirname(start)
        while True:
            record = osp.join(current, MANIFEST)
            if osp.lexists(record):
                try:
                    data = read_json(record, 'manifest')
                except (OSError, ValueError):
                    data = None
                yield how, current, data if isinstance(data, dict) else None
            parent = osp.dirname(current)
            if parent == current:
                break
            current = parent


def published_folder_of(tool) -> str:
    """``'a published output folder of <tool>'`` for messages; a library caller's
    default tool name (``mmseg_ext output folder (index.json)``) is not repeated."""
    if not isinstance(tool, str) or tool.startswith('mmseg_ext output folder'):
        return 'a published output folder of mmseg_ext'
    return f'a published output folder of {tool}'


def published_above(folder: str) -> str:
    """``'lies inside <f>, a published output folder of <tool>...'`` when ``folder`` or
    a folder above it (as given, or where a symbolic link leads) is a published output
    folder, or holds a manifest that cannot be read: such a folder holds only what its
    tool wrote, so no other output goes inside it; ``''`` otherwise."""
    for how, current, data in manifests_above(folder):
        if data is None:  # damaged: whose it is cannot be told
            return (f'{how} {current}, whose {MANIFEST} cannot be read (a tool\'s output '
                    'folder); choose another place')
        if data.get('published'):
            return (f'{how} {current}, {published_folder_of(data.get("tool"))}, '
                    'which holds only what that tool wrote; choose another place')
    return ''


def write_folder_manifest(root: str, tool: str) -> str:
    """Record everything under ``root`` (a staging folder, complete) as ``tool``'s, in
    ``root/MANIFEST``; return the manifest's path.

    Raises:
        OSError: the manifest cannot be written (the caller names the output).
    """
    path = osp.join(root, MANIFEST)
    # `published`: a finished output folder, never a work dir a tool may claim
    text = json.dumps(dict(tool=tool, entries=folder_entries(root), published=True),
                      indent=0, sort_keys=True) + '\n'
    with open(path, 'w', encoding='utf-8') as f:
        f.write(text)
    return path


def read_folder_manifest(root: str, shown: str) -> Optional[Tuple[str, Dict[str, Entry]]]:
    """``(tool, entries)`` of ``root``'s manifest; None when it has none.

    Raises:
        OutputError: a manifest that is not one (not a regular file, not JSON, not the
            format): what in the folder is the tool's cannot be told.
    """
    path = osp.join(root, MANIFEST)
    if not osp.lexists(path):
        return None
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            raise ValueError
        tool, entries = manifest_fields(read_json(path, 'manifest'))
    except (MmsegExtError, OSError, ValueError, KeyError, TypeError):
        raise OutputError(f'{osp.join(shown, MANIFEST)}: not a manifest of mmseg_ext '
                          f'(unreadable or malformed), so what in {shown} is this tool\'s '
                          'cannot be told; not replacing it: remove it or choose another '
                          'output folder') from None
    return tool, entries


def _changed(listed: Entry, now: Entry) -> bool:
    if listed.get('type') == 'dir' or now['type'] == 'dir':
        return listed.get('type') != now['type']
    return (listed.get('size'), listed.get('mtime_ns')) != (now['size'], now['mtime_ns'])


def check_replaceable_folder(root: str, shown: str, tool: str, marker: str) -> None:
    """Refuse to replace the existing, non-empty folder ``root`` unless all it holds is
    ``tool``'s (see the module doc).

    Args:
        root: the folder (a real folder, not a link).
        shown: ``root`` as the user gave it, for the messages.
        tool: the name the writer records in its manifests.
        marker: the file that names the tool's output (for the message about a folder
            without a manifest).

    Raises:
        OutputError: one line naming the first path that is not the tool's.
    """
    record = read_folder_manifest(root, shown)
    if record is None:
        if not any(True for _ in _items(root)):
            return  # an empty folder: nothing in it can be lost (taken without --force too)
        _refuse_unrecorded(root, shown, marker)
        return
    other, entries = record
    if other != tool:
        raise OutputError(f'{shown}: an output of another tool ({other}), not of this one '
                          f'({tool}); not replacing it: remove it or choose another output '
                          'folder')
    for rel, full in _items(root):
        listed = entries.get(rel)
        if listed is None:
            why = 'was not written by this tool'
        elif _changed(listed, _entry(full)):
            why = 'changed since this tool wrote it'
        else:
            continue
        raise OutputError(f'{osp.join(shown, rel)}: {why}; not replacing {shown} (move it '
                          'away, or choose another output folder)')


def _refuse_unrecorded(root: str, shown: str, marker: str) -> None:
    """Refuse a folder with content but no manifest, naming its first file (other than
    ``marker`` when there is one)."""
    names = [rel for rel, _ in _items(root)]
    others = [rel for rel in names if rel != marker]
    first = osp.join(shown, (others or names)[0])
    if marker not in names:
        raise OutputError(f'{shown}: exists and holds files this tool did not write (no '
                          f'{marker}, e.g. {first}); refusing to replace it')
    raise OutputError(f'{shown}: holds no record of the files this tool wrote (no '
                      f'{MANIFEST}: an output of an older version, or not this tool\'s; '
                      f'e.g. {first}); not replacing it: remove it or choose another '
                      'output folder')
