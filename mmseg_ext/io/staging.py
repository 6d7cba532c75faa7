"""Hidden names beside an output, the modes its files get, and the map back to the output.

Every output is written under a hidden name in its own folder and renamed into place
(:mod:`mmseg_ext.io.atomic`, :mod:`mmseg_ext.io.staged_dir`). Two rules keep those
hidden names out of the user's way:

* a derived name never exceeds the file system's limit on one name (``NAME_MAX``,
  usually 255 bytes): :func:`hidden_name` shortens the visible part (and keeps a short
  hash of the whole name and a random tail), so any output name that is valid itself can
  be staged;
* a path inside a hidden staging folder is named as the output it becomes
  (:func:`user_path`): :func:`staging_folder` registers each staging folder with its
  output, :func:`release_staging` forgets it.

A published output has the mode a plain new file or folder gets under the umask
(:func:`file_mode`, :func:`folder_mode`), not the private mode of :mod:`tempfile`.
"""
from __future__ import annotations

import hashlib
import os
import os.path as osp
import tempfile
from typing import Dict, Optional

#: hidden staging folder (absolute) -> the output folder it becomes
_STAGING: Dict[str, str] = {}


def user_path(path: str) -> str:
    """``path`` as the user knows it: a path inside a hidden staging folder
    (:class:`~mmseg_ext.io.staged_dir.StagedDir`, :func:`staging_folder`) becomes the
    same path inside the output it will be published as; any other path is returned
    unchanged."""
    full = osp.abspath(path)
    for tmp, final in _STAGING.items():
        if full == tmp:
            return final
        if full.startswith(tmp + os.sep):
            return osp.join(final, full[len(tmp) + 1:])
    return path



_UMASK: Optional[int] = None


def _umask() -> int:
    global _UMASK
    if _UMASK is None:  # reading the umask means setting it: once, then cached
        _UMASK = os.umask(0o022)
        os.umask(_UMASK)
    return _UMASK


def file_mode() -> int:
    """The mode ``open()`` gives a new file under this process's umask (``0o644`` under
    umask 022). :func:`tempfile.mkstemp` creates files with ``0o600`` whatever the
    umask; published outputs get this mode instead, as if written directly."""
    return 0o666 & ~_umask()


def folder_mode() -> int:
    """The mode ``os.makedirs`` gives a new folder under the umask (``0o755``);
    :func:`tempfile.mkdtemp` gives ``0o700``."""
    return 0o777 & ~_umask()



def name_max(folder: str) -> int:
    """The longest file name (in bytes) the file system of ``folder`` takes (255 where
    it does not say)."""
    try:
        return int(os.pathconf(folder, 'PC_NAME_MAX'))
    except (OSError, ValueError, AttributeError):
        return 255


def hidden_name(base: str, tail: str, folder: str) -> str:
    """``.<base><tail>`` made to fit the file system's limit on one name.

    When it would be too long, the visible part ``base`` is cut (at a character
    boundary) and a short hash of the whole ``base`` keeps different long names apart:
    ``.<start of base>~<8 hex><tail>``; ``tail`` (the tag and random part) is kept.
    ``tail`` must itself be short (a few tens of bytes).
    """
    limit = name_max(folder)
    name = f'.{base}{tail}'
    if len(name.encode('utf-8', 'surrogateescape')) <= limit:
        return name
    digest = hashlib.sha1(base.encode('utf-8', 'surrogateescape')).hexdigest()[:8]
    room = limit - len(f'.~{digest}{tail}'.encode('utf-8', 'surrogateescape'))
    cut = base.encode('utf-8', 'surrogateescape')[:max(room, 0)]
    visible = cut.decode('utf-8', 'ignore')
    return f'.{visible}~{digest}{tail}'


#: characters :mod:`tempfile` adds for the random part of a name
_RANDOM_CHARS = 8


def temp_prefix(base: str, tag: str, suffix: str, folder: str) -> str:
    """The ``prefix`` to give :mod:`tempfile` for ``.<base>.<tag><random><suffix>`` so
    that the whole name fits (:func:`hidden_name`)."""
    tail = f'.{tag}' + 'X' * _RANDOM_CHARS + suffix
    return hidden_name(base, tail, folder)[:-(_RANDOM_CHARS + len(suffix))]


def staging_folder(path: str, tag: str = 'partial-') -> str:
    """Make a new hidden sibling folder of ``path`` (``.<name>.<tag><random>``, with the
    mode of a plain new folder) and register it as staging ``path``, spelled as given
    (:func:`user_path`); :func:`release_staging` forgets it.

    Raises:
        OSError: the folder cannot be made.
    """
    folder, base = osp.split(osp.abspath(path))
    tmp = tempfile.mkdtemp(prefix=temp_prefix(base, tag, '', folder), dir=folder)
    try:
        os.chmod(tmp, folder_mode())  # published as `path`: the mode of a plain folder
    except OSError:  # a file system without modes: keep what it gives
        pass
    _STAGING[tmp] = path
    return tmp


def release_staging(tmp: str) -> None:
    """Forget the staging folder ``tmp`` (:func:`staging_folder`)."""
    _STAGING.pop(osp.abspath(tmp), None)

