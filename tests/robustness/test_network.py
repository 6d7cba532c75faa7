"""The bad-input harness, class "network without a deadline": servers that never finish.

A local HTTP server (127.0.0.1, a thread of this process) answers slowly in the ways a
socket timeout alone does not catch: one byte at a time in the body, one byte at a time
in the headers, or fast enough but without end. The downloader
(:mod:`mmseg_ext.io.download`, used by ``tools/get_weights.py``) must give up within its
limits (set small here) with a :class:`DownloadError` naming the URL, and leave no file.
"""
import os
import os.path as osp
import socket
import socketserver
import subprocess
import sys
import threading
import time

import pytest

from mmseg_ext.io.download import DownloadLimits, download_to
from mmseg_ext.models.weights_catalog import PretrainedWeights
from mmseg_ext.training.weights import fetch_weights
from mmseg_ext.utils.errors import DownloadError, EnvironmentCheckError

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
#: small limits: at least 1 KiB in every 0.5 s, 2 s in all
LIMITS = DownloadLimits(stall_s=0.5, min_bytes=1024, deadline_s=2.0)
#: the longest any refusal may take here (the limits plus the watchdog's tick)
WITHIN = 3.5

BODY = os.urandom(200_000)


def _trickle_body(wfile, stop):
    wfile.write(b'HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n')
    while not stop.is_set():
        wfile.write(b'x')
        stop.wait(0.05)


def _trickle_headers(wfile, stop):
    wfile.write(b'HTTP/1.1 200 OK\r\nX-Slow: ')
    while not stop.is_set():
        wfile.write(b'a')
        stop.wait(0.05)


def _endless(wfile, stop):  # 16 KiB every 0.05 s: the rate is fine, the end never comes
    wfile.write(b'HTTP/1.1 200 OK\r\n\r\n')
    while not stop.is_set():
        wfile.write(b'y' * 16384)
        stop.wait(0.05)


def _good(wfile, stop):
    wfile.write(b'HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n' % len(BODY) + BODY)


BEHAVIOURS = {'/trickle-body': _trickle_body, '/trickle-headers': _trickle_headers,
              '/endless': _endless, '/good': _good}


@pytest.fixture
def server():
    """``http://127.0.0.1:<port>``; each path behaves as :data:`BEHAVIOURS` says."""
    stop = threading.Event()

    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            path = self.rfile.readline().split()[1].decode()
            while self.rfile.readline() not in (b'\r\n', b'\n', b''):
                pass
            try:
                BEHAVIOURS[path](self.wfile, stop)
            except OSError:  # the client gave up
                pass

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    httpd = Server(('127.0.0.1', 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f'http://127.0.0.1:{httpd.server_address[1]}'
    stop.set()
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize('path, why', [('/trickle-body', 'stalled'),
                                       ('/trickle-headers', 'stalled'),
                                       ('/endless', 'not finished within 2 s')])
def test_a_server_that_never_finishes_is_given_up(server, tmp_path, path, why):
    url = server + path
    start = time.monotonic()
    with pytest.raises(DownloadError) as info:
        download_to(url, str(tmp_path / 'part'), str(tmp_path / 'out'), limits=LIMITS)
    assert time.monotonic() - start < WITHIN
    assert str(info.value).startswith(f'{url}: {why}'), str(info.value)


def test_a_good_server_is_downloaded_whole(server, tmp_path):
    import hashlib
    digest, _ = download_to(server + '/good', str(tmp_path / 'part'), str(tmp_path / 'o'),
                            limits=LIMITS)
    assert (tmp_path / 'part').read_bytes() == BODY
    assert digest == hashlib.sha256(BODY).hexdigest()


def _weights():
    return PretrainedWeights(name='fake', filename='fake.bin', urls=(), check_key='x',
                             override='model.pretrained=None', description='')


def test_fetch_weights_tries_every_url_then_names_them(server, tmp_path):
    urls = [server + '/trickle-body', server + '/trickle-headers']
    start = time.monotonic()
    with pytest.raises(DownloadError) as info:
        fetch_weights(_weights(), str(tmp_path / 'pretrain'), urls=urls, progress=False,
                      limits=LIMITS)
    assert time.monotonic() - start < 2 * WITHIN
    message = str(info.value)
    for url in urls:
        assert f'{url}: stalled' in message, message
    assert not (tmp_path / 'pretrain').exists()  # nothing left, the folder it made neither


def test_get_weights_takes_its_limits_from_the_environment(server, tmp_path):
    url = server + '/trickle-body'
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, 'tools/get_weights.py', 'hrnetv2-w18', '--url', url, '--out-dir',
         str(tmp_path), '--no-progress'], cwd=REPO, capture_output=True, text=True,
        timeout=60, env={**os.environ, 'MMSEG_EXT_DOWNLOAD_STALL': '0.5',
                         'MMSEG_EXT_DOWNLOAD_MIN_KIB': '1'})
    errors = [line for line in proc.stderr.splitlines() if line.startswith('error:')]
    assert proc.returncode == 1 and len(errors) == 1, proc.stderr
    assert 'Traceback' not in proc.stderr
    assert f'{url}: stalled' in errors[0]
    assert time.monotonic() - start < 30  # interpreter start, imports and 0.5 s
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize('env, message', [
    ({'MMSEG_EXT_DOWNLOAD_STALL': 'soon'}, "MMSEG_EXT_DOWNLOAD_STALL='soon'"),
    ({'MMSEG_EXT_DOWNLOAD_STALL': '0'}, 'seconds > 0'),
    ({'MMSEG_EXT_DOWNLOAD_MIN_KIB': '-1'}, 'KiB >= 0'),
    ({'MMSEG_EXT_DOWNLOAD_DEADLINE': 'inf'}, 'no deadline'),
])
def test_limits_from_the_environment_are_checked(env, message):
    with pytest.raises(EnvironmentCheckError, match=message):
        DownloadLimits.from_env(env)


def test_limits_from_the_environment():
    assert DownloadLimits.from_env({}) == DownloadLimits()
    limits = DownloadLimits.from_env({'MMSEG_EXT_DOWNLOAD_STALL': '5',
                                      'MMSEG_EXT_DOWNLOAD_MIN_KIB': '2',
                                      'MMSEG_EXT_DOWNLOAD_DEADLINE': '0'})
    assert limits == DownloadLimits(stall_s=5.0, min_bytes=2048, deadline_s=None)


def test_a_silent_server_times_out_too(tmp_path):
    """A server that accepts and says nothing: the socket timeout (at most the stall
    window) and the watchdog both end it."""
    listener = socket.socket()
    listener.bind(('127.0.0.1', 0))
    listener.listen(1)
    url = f'http://127.0.0.1:{listener.getsockname()[1]}/x'
    start = time.monotonic()
    try:
        with pytest.raises(DownloadError, match='stalled'):
            download_to(url, str(tmp_path / 'part'), str(tmp_path / 'o'), limits=LIMITS)
    finally:
        listener.close()
    assert time.monotonic() - start < WITHIN
