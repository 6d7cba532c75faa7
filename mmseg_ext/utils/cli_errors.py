"""How a tool's expected failure becomes one line and an exit code (the command-line layer).

:func:`format_error` renders a domain error (:mod:`mmseg_ext.utils.errors`, which never
mention flags) as the line a tool prints after ``error: ``: the argument of an
:class:`InvalidArgumentError` is shown as the tool's flag (``min_votes`` ->
``--min-votes``, :func:`flag_of`), and :class:`OutputExistsError` is completed with the
``--force`` hint; an ``OSError`` about a file is one line too. :func:`is_expected` tells
those failures from bugs (which keep their traceback) and :func:`exit_code` gives the
one exit convention of every tool. Used by :func:`mmseg_ext.utils.cli.cli_main` only.
"""
from __future__ import annotations

import errno
from typing import Dict, Optional

from .errors import (
    EnvironmentCheckError,
    Interrupted,
    InvalidArgumentError,
    MissingWeightsError,
    MmsegExtError,
    OutputExistsError,
    UsageError,
)

#: OSError numbers that mean "this output cannot be written/read here", not a bug.
_FILE_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT,
                errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENAMETOOLONG,
                errno.EXDEV, errno.EIO, errno.EFBIG}


def flag_of(argument: str, flags: Optional[Dict[str, str]] = None) -> str:
    """``'min_votes'`` -> ``'--min-votes'``, unless ``flags`` names it otherwise (a
    positional argument: ``{'prob_dirs': 'PROBS'}``)."""
    if flags and argument in flags:
        return flags[argument]
    return '--' + argument.replace('_', '-')


def format_error(exc: BaseException, flags: Optional[Dict[str, str]] = None,
                 force_offered: Optional[bool] = None) -> str:
    """The one-line text a tool prints for an expected failure (without ``error: ``).

    Args:
        force_offered: whether the tool has a ``--force`` option (None: not known, taken
            as yes); an existing output gets the ``--force`` hint only from a tool that
            has one.
    """
    if isinstance(exc, InvalidArgumentError):
        return f'{flag_of(exc.argument, flags)}: {exc.problem}'
    if isinstance(exc, OutputExistsError):
        if force_offered is False:
            return f'{exc}; not replacing it (remove it, or choose another output)'
        return f'{exc} (use --force to replace it)'
    if isinstance(exc, MissingWeightsError) and exc.weights:
        return (f'{exc.path} not found: python tools/get_weights.py {exc.weights} '
                f'(or --cfg-options {exc.override} to train from scratch)')
    if isinstance(exc, MmsegExtError):
        return str(exc)
    if isinstance(exc, OSError):
        where = exc.filename if exc.filename is not None else ''
        reason = exc.strerror or str(exc)
        return f'{where}: {reason}' if where else reason
    if isinstance(exc, MemoryError):
        return 'out of memory (try smaller sizes or fewer images at once)'
    return str(exc)


def is_expected(exc: BaseException) -> bool:
    """Expected failures are reported in one line; everything else is a bug."""
    if isinstance(exc, (MmsegExtError, MemoryError)):
        return True
    return isinstance(exc, OSError) and exc.errno in _FILE_ERRNOS


def exit_code(exc: BaseException) -> int:
    """The one convention of every tool: 2 for a command line that cannot run (an
    option out of its range or not fitting the others, found by argparse or by the
    library) and for a broken environment; 1 for bad data, files and refused requests;
    128 + the signal for an interruption (130 SIGINT, 143 SIGTERM)."""
    if isinstance(exc, Interrupted):
        return 128 + exc.signum
    if isinstance(exc, (EnvironmentCheckError, InvalidArgumentError, UsageError)):
        return 2
    return 1
