"""The ownership record of one output file, so ``force`` replaces only the tool's own file.

An output folder carries a manifest (:mod:`mmseg_ext.io.folder_manifest`); a single file
the user names (a submission CSV, a thresholds JSON, a chart, a downloaded checkpoint)
cannot hold one, so its record lies beside it: the hidden JSON file
:func:`record_path` (``.<name>.mmseg_ext_owner.json``, shortened like every derived name
when the output's name is long), written in the same signal-deferred commit as the file::

    {"tool": "make_submission", "file": "submission.csv", "size": 1234, "mtime_ns": ...}

With ``force``, an existing file is replaced only when :func:`check_replaceable_file`
finds its record: the same tool, the same file name, and the file unchanged since
(size and ``st_mtime_ns``, not following links). A file without a record (the user's,
or an output of an older version), a record of another tool, or a file edited since is
refused, naming the file. A record whose file is gone is stale and is simply rewritten;
a file in the record's place that is not a record (the user's) is never written over.
"""
from __future__ import annotations

import json
import os
import os.path as osp

from ..utils.errors import OutputError
from ..utils.readers import read_json
from .manifest_records import file_identity
from .staging import hidden_name

#: the tail of a record's name: ``.<output name>`` + this
RECORD_TAIL = '.mmseg_ext_owner.json'


def record_path(path: str) -> str:
    """The hidden record beside the output file ``path`` (within the name limit)."""
    folder, base = osp.split(osp.abspath(path))
    return osp.join(osp.dirname(path), hidden_name(base, RECORD_TAIL, folder))


def read_record(path: str) -> dict:
    """The record of ``path`` as stored, or ``{}`` when there is none or it does not
    parse as one (a record that is not a regular file counts as none)."""
    record = record_path(path)
    if not osp.isfile(record) or osp.islink(record):
        return {}
    try:
        data = read_json(record, 'ownership record')
    except (OSError, ValueError):
        return {}
    keys = ('tool', 'file', 'size', 'mtime_ns')
    if not isinstance(data, dict) or any(k not in data for k in keys):
        return {}
    return data


def replace_problem(path: str, tool: str) -> str:
    """Why ``tool`` may not replace the existing ``path`` (``''`` when it may)."""
    if osp.isdir(path) and not osp.islink(path):
        return 'is a folder, expected a file name'
    if osp.exists(path) and not osp.isfile(path):
        from ..utils.readers import file_kind
        return f'is {file_kind(os.stat(path).st_mode)}, not a file this tool can replace'
    record = read_record(path)
    if not record or record['file'] != osp.basename(path):
        return 'was not written by this tool (no ownership record beside it)'
    if record['tool'] != tool:
        return f'was written by {record["tool"]}, not by {tool}'
    identity = file_identity(path)
    if (identity['size'], identity['mtime_ns']) != (record['size'], record['mtime_ns']):
        return 'changed since this tool wrote it'
    return ''


def check_replaceable_file(path: str, tool: str) -> None:
    """Refuse to replace an existing ``path`` that is not ``tool``'s own unchanged
    output (see the module doc); nothing to check when ``path`` does not exist. A record
    path taken by something other than a regular file (a folder, a link) is refused
    too, before anything is written.

    Raises:
        OutputError: naming ``path`` (or its record) and why.
    """
    check_record_slot(path)
    if not osp.lexists(path):
        return
    problem = replace_problem(path, tool)
    if problem:
        raise OutputError(f'{path}: {problem}; not replacing it (move it away, or write '
                          'the output elsewhere)')


def check_record_slot(path: str) -> None:
    """Refuse when the name of ``path``'s record is taken by anything but a record: a
    folder, a link, or a file of the user's that does not parse as one (it would be
    written over).

    Raises:
        OutputError: naming the record's path.
    """
    record = record_path(path)
    if not osp.lexists(record):
        return
    if osp.islink(record) or not osp.isfile(record):
        raise OutputError(f'{record}: the ownership record of {path} is not a regular '
                          'file; move it away')
    if not read_record(path):
        raise OutputError(f'{record}: a file with the name of the ownership record of '
                          f'{path} that is not such a record; not replacing it (move it '
                          'away)')


def stage_record(tmp: str, path: str, tool: str) -> str:
    """Write the record that the finished temporary file ``tmp`` will have once
    published as ``path`` (a rename or hard link keeps its size and ``st_mtime_ns``),
    under a temporary name; return that name for :func:`commit_record`.

    Raises:
        OSError: the record cannot be written (nothing is left behind).
    """
    from .staging import file_mode
    identity = file_identity(tmp)
    data = dict(tool=tool, file=osp.basename(path), size=identity['size'],
                mtime_ns=identity['mtime_ns'])
    folder, base = osp.split(osp.abspath(path))
    staged = osp.join(folder, hidden_name(base, f'{RECORD_TAIL}.{os.getpid()}.tmp', folder))
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, file_mode())
    try:
        with open(fd, 'w', encoding='utf-8') as f:
            json.dump(data, f)
            f.write('\n')
    except BaseException:
        discard_record(staged)
        raise
    return staged


def commit_record(staged: str, path: str) -> None:
    """Put the record staged by :func:`stage_record` in place beside ``path``."""
    os.replace(staged, record_path(path))


def discard_record(staged: str) -> None:
    """Remove a staged record that was not committed."""
    try:
        os.remove(staged)
    except OSError:
        pass
