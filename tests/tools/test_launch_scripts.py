"""The launch scripts check what they are given before any rank starts, and a failing
rank's one line is what the user sees (torchrun's own report of it is filtered out)."""
import os
import os.path as osp
import socket
import subprocess
import sys

import pytest
from conftest import REPO

CONFIG = 'custom_configs/demo/fcn_r18-tiny_shapes-64x80.py'


def script(*args, env=None):
    full = {**os.environ, 'PYTHON': sys.executable, **(env or {})}
    return subprocess.run(['bash', *args], cwd=REPO, env=full, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize('ranks,message', [
    ('0', "RANKS must be a positive integer, got '0'"),
    ('-1', "RANKS must be a positive integer, got '-1'"),
    ('two', "RANKS must be a positive integer, got 'two'"),
    ('', "RANKS must be a positive integer, got ''"),
])
def test_bad_rank_counts(ranks, message):
    proc = script('tools/dist_train.sh', CONFIG, ranks)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f'error: {message}'


def test_more_ranks_than_cores_need_the_override():
    too_many = str((os.cpu_count() or 1) + 1)
    proc = script('tools/dist_train.sh', CONFIG, too_many)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith(f'error: {too_many} ranks on a machine with ')
    assert 'ALLOW_OVERSUBSCRIBE=1' in proc.stderr


def test_missing_files_and_a_busy_port():
    proc = script('tools/dist_train.sh', 'nope.py', '1')
    assert (proc.returncode, proc.stderr.strip()) == (2, 'error: nope.py: config not found')
    proc = script('tools/dist_test.sh', CONFIG, 'none.pth', '1')
    assert (proc.returncode, proc.stderr.strip()) == (
        2, 'error: none.pth: checkpoint not found')
    with socket.socket() as busy:
        busy.bind(('', 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = script('tools/dist_train.sh', CONFIG, '1', env={'PORT': str(port)})
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f'error: port {port} is in use on this machine; '
                                   'choose another with PORT=...')
    proc = script('tools/torchrun.sh', '1', 'train.py', env={'NODE_RANK': '3'})
    assert (proc.returncode, proc.stderr.strip()) == (
        2, "error: NODE_RANK must be in 0..0, got '3'")
    proc = script('tools/slurm_train.sh', 'part', 'job', 'nope.py')
    assert (proc.returncode, proc.stderr.strip()) == (2, 'error: nope.py: config not found')


# what torchrun 2.x writes to stderr when rank 0 exits 1 after its one error line
TORCHRUN_STDERR = """\
W1130 10:00:00.000000 1 site-packages/torch/distributed/run.py:800] Setting OMP_NUM_THREADS
error: /data/images/train: No such file or directory
error: /data/images/train: No such file or directory
E1130 10:00:01.000000 1 site-packages/torch/distributed/elastic/multiprocessing/api.py:900] failed (exitcode: 1) local_rank: 0 (pid: 11) of binary: /usr/bin/python
Traceback (most recent call last):
  File "<frozen runpy>", line 198, in _run_module_as_main
  File "/site-packages/torch/distributed/run.py", line 900, in main
    run(args)
torch.distributed.elastic.multiprocessing.errors.ChildFailedError:
============================================================
tools/train.py FAILED
------------------------------------------------------------
Failures:
  <NO_OTHER_FAILURES>
------------------------------------------------------------
Root Cause (first observed failure):
[0]:
  exitcode  : 1 (pid: 11)
============================================================
Traceback (most recent call last):
  File "tools/train.py", line 3, in <module>
ZeroDivisionError: division by zero
after
error: interrupted
Traceback (most recent call last):
  File "/site-packages/torch/distributed/elastic/multiprocessing/api.py", line 86, in _t
torch.distributed.elastic.multiprocessing.api.SignalException: Process 7 got signal: 15
end
"""


def test_filter_keeps_the_ranks_words_and_drops_torchruns_report():
    proc = subprocess.run([sys.executable, osp.join(REPO, 'tools', '_torchrun_filter.py')],
                          input=TORCHRUN_STDERR, capture_output=True, text=True)
    assert proc.stderr.splitlines() == [
        'W1130 10:00:00.000000 1 site-packages/torch/distributed/run.py:800] Setting '
        'OMP_NUM_THREADS',
        'error: /data/images/train: No such file or directory',
        # a rank's own traceback is a bug and is kept whole
        'Traceback (most recent call last):',
        '  File "tools/train.py", line 3, in <module>',
        'ZeroDivisionError: division by zero',
        'after', 'error: interrupted', 'end']


def test_the_interpreter_is_python_from_the_environment(tmp_path):
    """PYTHON names the interpreter that checks the port and starts torchrun (tools/cv.py
    passes its own); a PYTHON that does not exist is one line before anything starts."""
    log = tmp_path / 'calls.txt'
    fake = tmp_path / 'mypython'
    fake.write_text(f'#!/bin/sh\necho "$@" >> {log}\ncat > /dev/null\nexit 0\n')
    fake.chmod(0o755)
    proc = script('tools/dist_train.sh', CONFIG, '1', '--work-dir', str(tmp_path / 'w'),
                  env={'PYTHON': str(fake), 'PATH': '/usr/bin:/bin'})
    assert proc.returncode == 0, proc.stderr
    calls = log.read_text().splitlines()
    assert calls[0].startswith('- ')                    # the port check, on stdin
    # then torchrun and the filter of its stderr, at once
    (run,) = [c for c in calls[1:] if c.startswith('-m torch.distributed.run ')]
    assert run.endswith(f'tools/train.py {CONFIG} --launcher pytorch --work-dir '
                        f'{tmp_path}/w')
    assert [c for c in calls[1:] if c != run] == [f'{REPO}/tools/_torchrun_filter.py']
    proc = script('tools/dist_train.sh', CONFIG, '1', env={'PYTHON': str(tmp_path / 'no')})
    assert (proc.returncode, proc.stderr.strip()) == (
        2, f'error: PYTHON={tmp_path}/no: no such interpreter (name the python to run the '
        'ranks)')
