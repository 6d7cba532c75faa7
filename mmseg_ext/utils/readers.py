"""The error boundary for data files: every read of a file the user gives goes through here.

One reader per kind of content, each turning *any* failure into one
:class:`~mmseg_ext.utils.errors.DataFileError` that names the file:

* :func:`check_regular_file` -- the file exists and is a regular file (a FIFO, socket,
  device or folder is refused before it is opened, so a FIFO never blocks a tool; a
  symbolic link that loops or points nowhere is named as such);
* :func:`read_bytes`, :func:`read_text`, :func:`read_lines` -- bytes; UTF-8 text (a
  leading byte-order mark is dropped, bytes that are not UTF-8 are refused);
  stripped non-empty lines with their line numbers;
* :func:`read_json` / :func:`loads_json` -- strict JSON: duplicate keys, ``NaN`` and
  ``Infinity``, numbers that overflow to infinity and integers beyond int64 are refused
  (Python's ``json`` takes them all, the last duplicate silently winning);
  :func:`dumps_json` writes what they read back (a non-finite float as ``null``);
* :func:`reading` -- a context manager for third-party readers (numpy, torch, PIL): an
  exception that is not already a domain error becomes a ``DataFileError`` naming the file;
* :func:`max_pixels` / :func:`check_pixels` -- the cap on decoded image pixels
  (``2**28`` by default; the environment variable ``MMSEG_EXT_MAX_PIXELS`` raises it),
  checked from the image header before anything is decoded.

Ranges that depend on the field (a threshold in [0, 1], a positive size) are checked by
the caller, once, where the value enters.
"""
from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import stat
from typing import Any, Iterator, List, Tuple

from ..utils.errors import DataFileError, MmsegExtError

#: The environment variable that sets the pixel cap.
MAX_PIXELS_ENV = 'MMSEG_EXT_MAX_PIXELS'
#: Decoded pixels (H * W) an image may have unless :data:`MAX_PIXELS_ENV` says otherwise.
DEFAULT_MAX_PIXELS = 2 ** 28
#: The largest integer a data file may hold (int64).
INT64_MAX = 2 ** 63 - 1

_KINDS = ((stat.S_ISDIR, 'a folder'), (stat.S_ISFIFO, 'a FIFO (named pipe)'),
          (stat.S_ISSOCK, 'a socket'), (stat.S_ISCHR, 'a character device'),
          (stat.S_ISBLK, 'a block device'))


def file_kind(mode: int) -> str:
    """``'a FIFO (named pipe)'``, ``'a folder'``, ... for an ``st_mode`` that is not a
    regular file (``'a special file'`` for anything else)."""
    return next((name for test, name in _KINDS if test(mode)), 'a special file')


def stat_problem(path: str) -> str:
    """Why ``path`` is not a readable regular file, in words (``''`` when it is one).

    Never opens the file, so a FIFO does not block.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return ('a symbolic link to nothing' if os.path.islink(path) else 'file not found')
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return 'a symbolic link that loops'
        return f'cannot read ({exc.strerror})'
    except ValueError as exc:  # an embedded NUL byte
        return f'not a usable path ({exc})'
    if not stat.S_ISREG(st.st_mode):
        return f'not a regular file ({file_kind(st.st_mode)})'
    return ''


def check_regular_file(path: str, what: str = 'file') -> None:
    """Raise :class:`DataFileError` unless ``path`` is an existing regular file.

    Args:
        what: the kind of file in the message (``'split file'``).
    """
    problem = stat_problem(path)
    if problem == 'file not found':
        raise DataFileError(f'{path}: {what} not found')
    if problem:
        raise DataFileError(f'{path}: {problem}')


def check_folder(path: str, what: str = 'folder', error: type = DataFileError) -> None:
    """Raise ``error`` unless ``path`` is an existing folder; a file, FIFO or dangling
    link there is named as what it is (never "not found").

    Args:
        what: the kind of folder in the message (``'image folder'``).
        error: the :class:`~mmseg_ext.utils.errors.DataError` subclass to raise (the
            caller's domain error, such as a data set's).
    """
    if os.path.isdir(path):
        return
    problem = stat_problem(path)
    if problem == 'file not found':
        raise error(f'{path}: {what} not found')
    if not problem:
        problem = 'a regular file'
    elif problem.startswith('not a regular file ('):
        problem = problem[len('not a regular file ('):-1]
    raise error(f'{path}: not a folder ({problem}); expected the {what}')


def read_bytes(path: str, what: str = 'file') -> bytes:
    """The content of a regular file.

    The file is opened non-blocking and checked again on the open descriptor, so a FIFO
    put in place between the check and the open cannot block either.
    """
    return read_head(path, -1, what)


def read_head(path: str, size: int, what: str = 'file') -> bytes:
    """The first ``size`` bytes of a regular file (all of it for ``size=-1``), read as
    :func:`read_bytes` reads."""
    check_regular_file(path, what)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, 'O_NONBLOCK', 0))
    except OSError as exc:
        raise DataFileError(f'{path}: cannot read the {what} ({exc.strerror})') from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise DataFileError(f'{path}: not a regular file ({file_kind(st.st_mode)})')
        with os.fdopen(fd, 'rb', closefd=False) as f:
            return f.read(size)
    except OSError as exc:
        raise DataFileError(f'{path}: cannot read the {what} ({exc.strerror})') from None
    finally:
        os.close(fd)


def decode_text(data: bytes, where: str) -> str:
    """UTF-8 bytes as text, without a leading byte-order mark."""
    try:
        text = data.decode('utf-8')
    except UnicodeDecodeError as exc:
        raise DataFileError(f'{where}: not UTF-8 text ({exc.reason} at byte {exc.start})'
                            ) from None
    return text[1:] if text.startswith('\ufeff') else text


def read_text(path: str, what: str = 'text file') -> str:
    """A UTF-8 text file (a leading BOM dropped, as spreadsheet programs write one)."""
    return decode_text(read_bytes(path, what), path)


def read_lines(path: str, what: str = 'text file', comments: bool = False
               ) -> List[Tuple[int, str]]:
    """``(line number, stripped text)`` of the non-empty lines of a text file; with
    ``comments``, lines starting with ``#`` are left out too."""
    out = []
    for lineno, line in enumerate(read_text(path, what).splitlines(), 1):
        line = line.strip()
        if line and not (comments and line.startswith('#')):
            out.append((lineno, line))
    return out


def list_entry_problem(name: str) -> str:
    """Why ``name`` cannot be one line of a list file that :func:`read_lines` (with
    ``comments``) reads back as the same name; ``''`` when it can."""
    if not name:
        return 'is empty'
    if name.splitlines() != [name]:
        return 'holds a line break'
    if name != name.strip():
        return 'begins or ends with white space (list readers strip it)'
    if name.startswith('#'):
        return 'begins with # (list readers take the line for a comment)'
    return ''


# ------------------------------------------------------------------ strict JSON
class _JsonValueError(ValueError):
    """A value strict JSON refuses (raised inside the decoder's hooks)."""


def _pairs(pairs: List[Tuple[str, Any]]) -> dict:
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise _JsonValueError(f'duplicate key {key!r} (a JSON object names each key '
                                  'once)')
        out[key] = value
    return out


def _int(text: str) -> int:
    # 19 digits hold int64; longer texts are refused before int() builds them
    if len(text.lstrip('-')) > 19 or abs(int(text)) > INT64_MAX:
        shown = text if len(text) <= 30 else text[:12] + '...' + text[-6:]
        raise _JsonValueError(f'integer {shown} is beyond int64')
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _JsonValueError(f'number {text[:30]} overflows to infinity')
    return value


def _constant(name: str) -> Any:
    raise _JsonValueError(f'{name} is not a JSON number')


_DECODER = json.JSONDecoder(object_pairs_hook=_pairs, parse_int=_int, parse_float=_float,
                            parse_constant=_constant)


def loads_json(text: str, where: str) -> Any:
    """Strict JSON from text (see the module docstring); ``where`` starts the message."""
    try:
        return _DECODER.decode(text)
    except _JsonValueError as exc:
        raise DataFileError(f'{where}: {exc}') from None
    except (json.JSONDecodeError, ValueError, RecursionError) as exc:
        detail = 'nested too deeply' if isinstance(exc, RecursionError) else str(exc)
        raise DataFileError(f'{where}: malformed JSON ({detail})') from None


def read_json(path: str, what: str = 'JSON file') -> Any:
    """A strict JSON file (UTF-8, a BOM allowed)."""
    return loads_json(read_text(path, what), path)


def dumps_json(value: Any, **kwargs) -> str:
    """JSON text that :func:`loads_json` reads back: a float that is not finite (a score
    that was not measured) becomes ``null``, since ``NaN`` and ``Infinity`` are not JSON.
    ``kwargs`` go to :func:`json.dumps` (``indent``, ``default``...)."""
    return json.dumps(_finite_or_null(value), allow_nan=False, **kwargs)


def _finite_or_null(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite_or_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_null(v) for v in value]
    if type(value).__module__ == 'numpy' and hasattr(value, 'tolist'):
        return _finite_or_null(value.tolist())  # a numpy scalar or array
    return value


# ------------------------------------------------------------------ other readers
@contextlib.contextmanager
def reading(path: str, what: str = 'file') -> Iterator[None]:
    """Turn any exception of the block that is not a domain error (or a memory error)
    into a :class:`DataFileError` naming ``path``: for third-party readers whose
    failures are not documented (numpy's zip reader, PIL, torch's unpickler)."""
    try:
        yield
    except (MmsegExtError, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001  (the boundary: any failure is the file's)
        text = str(exc).strip().splitlines()
        detail = f'{type(exc).__name__}: {text[0][:200]}' if text else type(exc).__name__
        raise DataFileError(f'{path}: not a readable {what} ({detail})') from None


def max_pixels() -> int:
    """The pixel cap: :data:`MAX_PIXELS_ENV` when set to a positive integer, else
    :data:`DEFAULT_MAX_PIXELS`."""
    text = os.environ.get(MAX_PIXELS_ENV, '').strip()
    if not text:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise DataFileError(f'{MAX_PIXELS_ENV}={text!r}: expected a positive whole number '
                            'of pixels')
    return value


def check_pixels(path: str, height: int, width: int) -> None:
    """Refuse an image whose header gives a side of 0 or more pixels than the cap."""
    if height <= 0 or width <= 0:
        raise DataFileError(f'{path}: the image is {height}x{width} (H x W): no pixels')
    cap = max_pixels()
    if height * width > cap:
        raise DataFileError(f'{path}: the image is {height}x{width} (H x W), '
                            f'{height * width} pixels, more than the limit of {cap} '
                            f'(set {MAX_PIXELS_ENV} to raise it)')
