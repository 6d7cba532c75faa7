"""Shared plumbing for the command-line tools: one-line errors, safe output files."""
from __future__ import annotations

import functools
import os
import sys
from typing import Callable, TypeVar

from .env_check import EnvironmentCheckError

F = TypeVar('F', bound=Callable)


class UserError(Exception):
    """Bad input or an impossible request; the tool prints the message and exits 1.

    The message must name the offending file (and record) and the problem in one line.
    """


def cli_main(func: F) -> F:
    """Decorate a tool's ``main`` so expected failures become one line on stderr.

    :class:`UserError`, :class:`mmseg_ext.EnvironmentCheckError` and
    ``KeyboardInterrupt`` print ``error: <message>`` and exit non-zero; anything else is a
    bug and keeps its traceback. ``MMSEG_EXT_DEBUG=1`` re-raises everything.
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            code = func(*args, **kwargs)
        except KeyboardInterrupt:
            print('error: interrupted', file=sys.stderr)
            sys.exit(130)
        except Exception as exc:  # noqa: BLE001
            if os.environ.get('MMSEG_EXT_DEBUG') == '1' or not _is_expected(exc):
                raise
            print(f'error: {exc}', file=sys.stderr)
            sys.exit(2 if isinstance(exc, EnvironmentCheckError) else 1)
        sys.exit(code or 0)

    return wrapper  # type: ignore[return-value]


def _is_expected(exc: BaseException) -> bool:
    return isinstance(exc, (UserError, EnvironmentCheckError))

