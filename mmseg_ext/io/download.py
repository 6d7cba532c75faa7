"""Downloads that end: a minimum rate, an overall deadline and socket timeouts.

A socket timeout alone does not bound a download: a server that sends one byte every
few seconds never lets a read time out, and ``response.read(1 MiB)`` waits for the whole
MiB. :func:`download_to` therefore

* reads with ``read1`` (whatever has arrived, at most one socket read), so the loop
  sees every byte as it comes;
* runs a :class:`Watchdog` thread beside the transfer (connecting, the headers and the
  body) that stops the connection when fewer than ``min_bytes`` arrived in the last
  ``stall_s`` seconds or when the whole download passes ``deadline_s``: it shuts the
  socket down, which ends a read blocked inside ``http.client`` at once;
* sets the socket timeout (each connect or read) to at most ``stall_s``.

The limits (:class:`DownloadLimits`) have defaults sized for multi-hundred-MB weights on
slow links (at least 64 KiB per minute, at most 6 hours in all), and can be set per call
or with the environment variables ``MMSEG_EXT_DOWNLOAD_STALL`` (seconds),
``MMSEG_EXT_DOWNLOAD_MIN_KIB`` (KiB per stall window) and ``MMSEG_EXT_DOWNLOAD_DEADLINE``
(seconds, 0 for none). A download that breaks them is a
:class:`~mmseg_ext.utils.errors.DownloadError` naming the URL; an error writing the file
is an :class:`~mmseg_ext.utils.errors.OutputError` naming the output.
"""
from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import socket
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, List, Mapping, Optional, Tuple

from ..utils.errors import DownloadError, EnvironmentCheckError, OutputError
from ..utils.readers import stat_problem
from .output_errors import output_error

#: environment variables that set :class:`DownloadLimits` (see the module doc)
ENV_STALL = 'MMSEG_EXT_DOWNLOAD_STALL'
ENV_MIN_KIB = 'MMSEG_EXT_DOWNLOAD_MIN_KIB'
ENV_DEADLINE = 'MMSEG_EXT_DOWNLOAD_DEADLINE'

#: bytes asked of one read (``read1`` returns what has arrived, up to this)
CHUNK = 1 << 20

Opener = Callable[[str], Any]


@dataclass(frozen=True)
class DownloadLimits:
    """When a download is given up.

    Attributes:
        stall_s: the rate window in seconds; also the longest wait of one socket
            operation (connect, read).
        min_bytes: bytes that must arrive in every ``stall_s`` window (64 KiB per
            minute: about 1 KiB/s, far below any link a 300 MB file is fetched over).
        deadline_s: seconds for the whole download, connecting included; None: none.
    """

    stall_s: float = 60.0
    min_bytes: int = 64 * 1024
    deadline_s: Optional[float] = 6 * 3600.0

    def __post_init__(self) -> None:
        if not self.stall_s > 0 or self.min_bytes < 0 or \
                (self.deadline_s is not None and not self.deadline_s > 0):
            raise ValueError(f'invalid download limits {self}')

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None) -> DownloadLimits:
        """The defaults, with what :data:`ENV_STALL`, :data:`ENV_MIN_KIB` and
        :data:`ENV_DEADLINE` set.

        Raises:
            EnvironmentCheckError: a variable that is not a number in its range.
        """
        env = os.environ if environ is None else environ
        default = cls()
        stall = _env_number(env, ENV_STALL, default.stall_s, 'seconds > 0', lo_open=True)
        min_kib = _env_number(env, ENV_MIN_KIB, default.min_bytes / 1024, 'KiB >= 0')
        deadline = _env_number(env, ENV_DEADLINE, default.deadline_s or 0.0,
                               'seconds >= 0 (0: no deadline)')
        return cls(stall_s=stall, min_bytes=int(min_kib * 1024),
                   deadline_s=deadline or None)


def _env_number(env: Mapping[str, str], name: str, default: float, what: str,
                lo_open: bool = False) -> float:
    text = env.get(name, '').strip()
    if not text:
        return float(default)
    try:
        value = float(text)
    except ValueError:
        value = float('nan')
    if not (value > 0 if lo_open else value >= 0) or value == float('inf'):
        raise EnvironmentCheckError(f'{name}={text!r}: expected {what}')
    return value


class Watchdog:
    """Watches one download's progress; stops it when it stalls or runs past its
    deadline (see the module doc).

    Use as a context manager around the whole transfer; sockets opened for it are
    :meth:`attach`-ed (the opener of :func:`watched_opener` does it), the reader calls
    :meth:`add` with every block and :meth:`check` after it.
    """

    def __init__(self, url: str, limits: DownloadLimits,
                 clock: Callable[[], float] = time.monotonic):
        self.url = url
        self.limits = limits
        self.clock = clock
        self.start = self.window_start = clock()
        self.window_bytes = 0
        self.total = 0
        self.reason: Optional[str] = None
        self._sockets: List[socket.socket] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    # ---------------------------------------------------------------- progress
    def attach(self, sock: socket.socket) -> None:
        """A socket of this download: shut down if the download is stopped."""
        with self._lock:
            self._sockets.append(sock)
            fired = self.reason is not None
        if fired:
            self._shutdown(sock)

    def add(self, nbytes: int) -> None:
        """``nbytes`` more arrived."""
        with self._lock:
            self.total += nbytes
            self.window_bytes += nbytes

    def problem(self) -> Optional[str]:
        """Why the download must stop now, or None (advances the rate window)."""
        lim = self.limits
        with self._lock:
            now = self.clock()
            if lim.deadline_s is not None and now - self.start > lim.deadline_s:
                return (f'not finished within {lim.deadline_s:g} s ({self.total} bytes '
                        f'received; {ENV_DEADLINE} sets the deadline)')
            if now - self.window_start >= lim.stall_s:
                if self.window_bytes < lim.min_bytes:
                    return (f'stalled: {self.window_bytes} bytes in {lim.stall_s:g} s, '
                            f'fewer than the {lim.min_bytes} required ({self.total} bytes '
                            f'received; {ENV_STALL} and {ENV_MIN_KIB} set the limit)')
                self.window_start, self.window_bytes = now, 0
        return None

    def check(self) -> None:
        """Raise the :class:`DownloadError` when the download must stop."""
        if self.reason is None:
            why = self.problem()
            if why is not None:
                self.fire(why)
        if self.reason is not None:
            raise self.error()

    def fire(self, reason: str) -> None:
        """Stop the download: record ``reason`` and shut its sockets down."""
        with self._lock:
            if self.reason is None:
                self.reason = reason
            sockets = list(self._sockets)
        for sock in sockets:
            self._shutdown(sock)

    def error(self) -> DownloadError:
        return DownloadError(f'{self.url}: {self.reason}')

    @staticmethod
    def _shutdown(sock: socket.socket) -> None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except (OSError, ValueError):  # already closed
            pass

    # ---------------------------------------------------------------- thread
    def _run(self) -> None:
        interval = min(1.0, self.limits.stall_s / 10)
        while not self._stop.wait(interval):
            why = self.problem()
            if why is not None:
                self.fire(why)
                return

    def __enter__(self) -> Watchdog:
        self._thread = threading.Thread(target=self._run, name='download-watchdog',
                                        daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def _socket_timeout(limits: DownloadLimits) -> float:
    """Seconds one socket operation (connect, read) may wait."""
    return min(30.0, limits.stall_s)


def _is_timeout(exc: BaseException) -> bool:
    """A socket timeout, also as urllib wraps it (``URLError(reason=timeout)``)."""
    return isinstance(exc, TimeoutError) or \
        isinstance(getattr(exc, 'reason', None), TimeoutError)


def watched_opener(watch: Watchdog) -> Opener:
    """``urlopen`` whose HTTP(S) connections are attached to ``watch`` and whose
    socket operations time out after ``watch.limits.stall_s`` (at most)."""

    class _HTTPConnection(http.client.HTTPConnection):
        def connect(self) -> None:
            super().connect()
            watch.attach(self.sock)

    class _HTTPSConnection(http.client.HTTPSConnection):
        def connect(self) -> None:
            super().connect()
            watch.attach(self.sock)

    class _HTTPHandler(urllib.request.HTTPHandler):
        def http_open(self, req):
            return self.do_open(_HTTPConnection, req)

    class _HTTPSHandler(urllib.request.HTTPSHandler):
        def https_open(self, req):
            extra = {'check_hostname': self._check_hostname} \
                if hasattr(self, '_check_hostname') else {}
            return self.do_open(_HTTPSConnection, req, context=self._context, **extra)

    opener = urllib.request.build_opener(_HTTPHandler, _HTTPSHandler)
    timeout = _socket_timeout(watch.limits)

    def open_url(url: str):
        request = urllib.request.Request(url, headers={'User-Agent': 'mmseg_ext'})
        return opener.open(request, timeout=timeout)  # noqa: S310 (registry URLs)

    return open_url


def file_url_problem(url: str) -> str:
    """Why the ``file://`` URL ``url`` names no readable regular file, in words (``''``
    when it does, or when ``url`` is not a ``file://`` URL). Checked without opening the
    file: a FIFO, socket, device or folder is refused (:func:`stat_problem`)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() != 'file':
        return ''
    if parts.netloc not in ('', 'localhost'):
        return f'a file:// URL names a file of this machine, not of {parts.netloc!r}'
    path = urllib.request.url2pathname(parts.path)
    if not path:
        return 'the file:// URL names no file'
    return stat_problem(path)


def download_to(url: str, dst: str, output: str,
                limits: Optional[DownloadLimits] = None,
                opener: Optional[Callable[[str], Any]] = None,
                progress: bool = False) -> Tuple[str, Any]:
    """Stream ``url`` into the (hidden, temporary) file ``dst`` within ``limits``.

    Args:
        url: what to download (``http(s)://``, ``file://``: a regular file only,
            :func:`file_url_problem`).
        dst: the file written (created or truncated).
        output: the output ``dst`` becomes, named when writing fails.
        limits: default :meth:`DownloadLimits.from_env`.
        opener: opens a URL and returns a file-like response (tests); default: urllib
            with the watchdog attached (:func:`watched_opener`). With another opener the
            limits are checked after every block only (a blocked read is not cut).
        progress: show a tqdm bar of the bytes.

    Returns:
        ``(SHA-256 hex of the bytes, the response headers or None)``.

    Raises:
        DownloadError: the download stalled or passed its deadline, or a ``file://``
            URL names no regular file.
        OutputError: writing ``dst`` failed (disk full, ``EFBIG``...), named as ``output``.
        urllib.error.URLError, http.client.HTTPException, OSError: the transfer failed.
    """
    from tqdm import tqdm
    problem = file_url_problem(url)
    if problem:  # before anything is opened: a FIFO would block the read for ever
        raise DownloadError(f'{url}: {problem}')
    limits = limits or DownloadLimits.from_env()
    digest = hashlib.sha256()
    try:
        out = open(dst, 'wb')
    except OSError as exc:
        raise output_error(output, exc) from None
    with Watchdog(url, limits) as watch:
        try:
            with (opener or watched_opener(watch))(url) as response:
                headers = getattr(response, 'headers', None)
                total = headers.get('Content-Length') if headers is not None else None
                read = getattr(response, 'read1', None) or response.read
                with tqdm(total=int(total) if total and total.isdigit() else None,
                          unit='B', unit_scale=True, unit_divisor=1024,
                          desc=os.path.basename(url)[:40], disable=not progress) as bar:
                    while True:
                        block = read(CHUNK)
                        if not block:
                            break
                        _write(out, block, output)
                        digest.update(block)
                        bar.update(len(block))
                        watch.add(len(block))
                        watch.check()
            _close(out, output)
        except (OSError, http.client.HTTPException) as exc:
            if isinstance(exc, OutputError):
                raise
            if watch.reason is None and _is_timeout(exc):
                watch.fire(f'stalled: nothing received for {_socket_timeout(limits):g} s '
                           f'({watch.total} bytes received; {ENV_STALL} sets the limit)')
            if watch.reason is not None:
                raise watch.error() from None
            raise
        finally:
            if not out.closed:
                with contextlib.suppress(OSError):
                    out.close()
        if watch.reason is not None:  # a shut socket reads as the end of the data
            raise watch.error()
    return digest.hexdigest(), headers


def _write(out: BinaryIO, block: bytes, output: str) -> None:
    try:
        out.write(block)
    except OSError as exc:
        raise output_error(output, exc) from None


def _close(out: BinaryIO, output: str) -> None:
    try:
        out.close()  # flushes: a full disk can show only here
    except OSError as exc:
        raise output_error(output, exc) from None
