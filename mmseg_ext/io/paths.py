"""One rule for paths that come from data, and one for where outputs may go.

Paths named *inside* input files (list and split files, COCO ``file_name``, the keys and
file names of a probability folder's ``index.json``) are relative to a declared root:
never empty, never absolute, never climbing out with ``..``, and (for files read under
the root) never leaving it through a symbolic link. :func:`data_relpath` checks the
text, :func:`resolve_under` the file it names. Both raise
:class:`~mmseg_ext.utils.errors.DataError` naming the file and line or entry and the
offending path, before anything is read or written.

Outputs: a tool writes inside its output folder only (every folder output goes through
:class:`~mmseg_ext.io.staged_dir.StagedDir`, whose :meth:`file` applies
:func:`data_relpath` to each name) and never over an input: :func:`check_output_apart`
refuses an output that is an input, lies inside an input folder, or holds one
(:func:`mmseg_ext.utils.path_roles.output_conflict`; every tool's command line applies
the same rule to its options by their declared roles, :class:`~mmseg_ext.utils.cli.ToolParser`).

An image's *key* (:func:`image_key`) is its relative path without extension: tools match
images across folders (probabilities, labels, drawings) by key.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import os.path as osp
import posixpath
import re
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from ..utils.errors import DataError, InvalidArgumentError
from ..utils.path_roles import conflict_text, output_conflict

_DRIVE = re.compile(r'^[A-Za-z]:[\\/]')


def image_key(img_path: str) -> str:
    """Key of an image: its relative path, ``/``-separated, without the extension
    (``ID040/image1661319116107``); tools match images across folders by key, never by
    order."""
    return osp.splitext(img_path.replace('\\', '/'))[0]


def data_relpath(entry, where: str, root: Optional[str] = None) -> str:
    """``entry`` as a normalised ``/``-separated relative path.

    Args:
        entry: the path text read from a data file.
        where: the file and line or entry it came from (``split.txt:3``), for errors.
        root: the folder it is relative to, for errors.

    Raises:
        DataError: empty, absolute, or leaving ``root`` with ``..``.
    """
    under = f' (paths there are relative to {root})' if root else ''
    if not isinstance(entry, str) or not entry.strip():
        raise DataError(f'{where}: empty path{under}')
    text = entry.replace('\\', '/')
    if text.startswith('/') or _DRIVE.match(entry) or osp.isabs(entry):
        raise DataError(f'{where}: {entry!r} is an absolute path{under}')
    norm = posixpath.normpath(text)
    if norm in ('.', '..') or norm.startswith('../'):
        raise DataError(f'{where}: {entry!r} leaves its folder{under}')
    return norm


def resolve_under(root: str, entry, where: str) -> str:
    """The file ``entry`` names under ``root`` (:func:`data_relpath`), refused when it
    reaches outside ``root`` through a symbolic link."""
    rel = data_relpath(entry, where, root)
    full = osp.join(root, rel)
    real_root = osp.realpath(root)
    real = osp.realpath(full)
    if real != real_root and not real.startswith(real_root.rstrip(os.sep) + os.sep):
        raise DataError(f'{where}: {entry!r} leads outside {root} through a symbolic link '
                        f'(to {real})')
    return full


def check_output_apart(out: str, inputs: Iterable[Optional[str]],
                       argument: str = 'out', holds_inputs: bool = False) -> None:
    """Refuse an output that is one of ``inputs``, lies inside an input folder, or
    contains an input (replacing it would delete the input). ``holds_inputs=True`` lets
    an output folder that is only ever added to (a training work dir) hold inputs.

    The rule is :func:`mmseg_ext.utils.path_roles.output_conflict`, the one the tools'
    command lines apply to every option by its declared role; this is its home for
    library callers.

    Raises:
        InvalidArgumentError: of ``argument``, naming the input.
    """
    for src in inputs:
        if not src:
            continue
        reason = output_conflict(out, src, holds_inputs)
        if reason:
            raise InvalidArgumentError(argument, conflict_text(out, src, reason))


#: suffixes that name the format of a file (lower case) -> that format
_FORMAT_OF_SUFFIX = {
    **{s: 'image' for s in ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp',
                            '.gif', '.svg', '.pdf')},
    '.npz': 'NumPy archive', '.npy': 'NumPy array', '.pth': 'checkpoint',
    '.pt': 'checkpoint', '.onnx': 'ONNX model', '.pkl': 'pickle', '.py': 'Python/config',
    '.zip': 'zip archive', '.gz': 'gzip archive', '.csv': 'CSV', '.json': 'JSON',
    '.txt': 'text', '.yaml': 'YAML', '.yml': 'YAML',
}


def file_identity(path: str):
    """What makes ``path`` one file however it is reached: ``(st_dev, st_ino)`` (a
    symbolic link, ``..``, another spelling and a hard link of one file are one
    identity); the real path when the file cannot be stat'ed (the reader names it)."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return osp.realpath(path)
    return st.st_dev, st.st_ino


def check_output_format(path: str, fmt: str, suffixes: Iterable[str]) -> None:
    """Refuse an output file name whose suffix says another format than the ``fmt``
    the tool writes (``submission.png`` would get CSV text). A name without a suffix,
    or with one no format is known by (``sub.v2``), is taken.

    Args:
        path: the output file.
        fmt: what is written (``'CSV'``).
        suffixes: the suffixes that fit ``fmt`` (``('.csv', '.txt')``).

    Raises:
        OutputError: naming the file, its suffix's format and the suffix to use.
    """
    from ..utils.errors import OutputError
    suffixes = tuple(s.lower() for s in suffixes)
    suffix = osp.splitext(path)[1].lower()
    other = _FORMAT_OF_SUFFIX.get(suffix)
    if other is not None and suffix not in suffixes:
        raise OutputError(f'{path}: would hold {fmt} under a name of another format '
                          f'({suffix}: {other}); name it with {" or ".join(suffixes)}')


def _content_files(path: str) -> List[str]:
    """The files of a folder whose content counts, in name order: hidden files (a
    tool's ownership manifest, which records when the files were written) do not."""
    found = []
    for folder, dirs, files in os.walk(path, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith('.'))
        found += [osp.join(folder, n) for n in sorted(files) if not n.startswith('.')]
    return found


def _content_digest(path: str) -> str:
    """SHA-256 of a file's bytes, or of a folder's files (relative names and bytes, in
    name order, hidden files aside); links are followed as the readers follow them."""
    digest = hashlib.sha256()
    if osp.isdir(path):
        for file in _content_files(path):
            digest.update(osp.relpath(file, path).encode('utf-8', 'surrogateescape'))
            digest.update(b'\0')
            _digest_file(file, digest)
    else:
        _digest_file(path, digest)
    return digest.hexdigest()


def file_sha256(path: str) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB blocks).

    Raises:
        DataError: the file cannot be read.
    """
    digest = hashlib.sha256()
    _digest_file(path, digest)
    return digest.hexdigest()


def same_content(paths: Sequence[str], others: Sequence[str]) -> List[Tuple[str, str]]:
    """``(path, other)`` for each file of ``paths`` whose content is that of a file of
    ``others`` (the same file by any path or link, or a byte-identical copy; the first
    such other). Sizes are compared first; only files of one size are hashed.

    Raises:
        DataError: a file that cannot be read.
    """
    by_size: Dict[int, List[str]] = {}
    for other in others:
        with contextlib.suppress(OSError):
            by_size.setdefault(os.stat(other).st_size, []).append(other)
    digests: Dict[str, str] = {}

    def digest(path: str) -> str:
        if path not in digests:
            digests[path] = file_sha256(path)
        return digests[path]

    by_digest: Dict[Tuple[int, str], str] = {}  # (size, sha) -> the first other
    hashed_sizes: set = set()
    found = []
    for path in paths:
        try:
            size = os.stat(path).st_size
        except OSError:
            continue
        if size not in by_size:
            continue
        if size not in hashed_sizes:  # each other file hashed once, only when needed
            hashed_sizes.add(size)
            for other in by_size[size]:
                by_digest.setdefault((size, digest(other)), other)
        match = by_digest.get((size, digest(path)))
        if match is not None:
            found.append((path, match))
    return found


def _digest_file(path: str, digest) -> None:
    try:
        with open(path, 'rb') as f:
            for block in iter(lambda: f.read(1 << 20), b''):
                digest.update(block)
    except OSError as exc:
        raise DataError(f'{path}: cannot be read ({exc.strerror or exc})') from None


def check_distinct_inputs(paths: Sequence[str], what: str, argument: str) -> None:
    """Refuse two entries of ``paths`` that are one input, however each is reached: the
    same file or folder (``a``, ``a/../a``, a symbolic link to it, a hard link) or a
    copy of it (the same bytes, file by file; a folder's hidden files, such as the
    manifest that records when it was written, aside: two runs that wrote the same
    probabilities are one input too). A vote that counts one input twice
    outweighs the others without a word.

    Raises:
        InvalidArgumentError: naming ``argument`` and both entries as given.
    """
    seen = {}
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            continue  # the reader names a missing input
        key = (st.st_dev, st.st_ino)
        if key in seen:
            raise InvalidArgumentError(argument, f'{seen[key]} and {path} are one {what} '
                                       '(the same path, reached twice); give each once')
        seen[key] = path
    by_sizes = {}  # names and sizes first: only inputs alike in those are read
    for path in seen.values():
        by_sizes.setdefault(_size_signature(path), []).append(path)
    for alike in by_sizes.values():
        groups = {}
        for path in alike if len(alike) > 1 else ():
            groups.setdefault(_content_digest(path), []).append(path)
        for same in groups.values():
            if len(same) > 1:
                raise InvalidArgumentError(argument, f'{same[0]} and {same[1]} hold the '
                                           f'same bytes: one {what} copied; give each once')


def _size_signature(path: str) -> tuple:
    """The relative names and sizes of a folder's files (a file: its size)."""
    def size(file: str) -> int:
        try:
            return os.stat(file).st_size
        except OSError:  # a dangling link: the reader names it
            return -1
    if not osp.isdir(path):
        return (size(path),)
    return tuple((osp.relpath(file, path), size(file)) for file in _content_files(path))
