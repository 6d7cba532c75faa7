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
    assert calls[0].startswith('-c ') and 'find_spec("torch")' in calls[0]  # has torch
    assert calls[1].startswith('- ')                    # the port check, on stdin
    # then torchrun and the filter of its stderr, at once
    (run,) = [c for c in calls[2:] if c.startswith('-m torch.distributed.run ')]
    assert run.endswith(f'tools/train.py {CONFIG} --launcher pytorch --work-dir '
                        f'{tmp_path}/w')
    assert [c for c in calls[2:] if c != run] == [f'{REPO}/tools/_torchrun_filter.py']
    proc = script('tools/dist_train.sh', CONFIG, '1', env={'PYTHON': str(tmp_path / 'no')})
    assert (proc.returncode, proc.stderr.strip()) == (
        2, f'error: PYTHON={tmp_path}/no: no such interpreter (name the python to run the '
        'ranks)')


def test_the_stderr_filter_outlives_a_stop_signal_to_the_group():
    """Round AO (AO-1): a Ctrl-C to the launcher's process group killed the filter of
    torchrun's stderr first (a KeyboardInterrupt traceback), and the ranks' one line was
    lost. The filter ignores the stop signals and passes on what follows."""
    import signal
    import time
    proc = subprocess.Popen([sys.executable, osp.join(REPO, 'tools', '_torchrun_filter.py')],
                            stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdin.write('first\n')
    proc.stdin.flush()
    time.sleep(1)  # the filter runs (its handlers are set before it reads)
    for signum in (signal.SIGINT, signal.SIGTERM):
        proc.send_signal(signum)
    time.sleep(0.2)
    _, err = proc.communicate('error: interrupted\n', timeout=60)
    assert proc.returncode == 0, err
    assert err == 'first\nerror: interrupted\n'


def test_an_interpreter_without_torch_is_named_before_any_rank(tmp_path):
    """Round AO (AO-3): ``PYTHON`` naming an interpreter without torch passed the checks,
    and torchrun's module lookup failed with Python's own message and exit 1."""
    bare = tmp_path / 'python'
    bare.write_text(f'#!/bin/sh\nexec {sys.executable} -S "$@"\n')  # no site-packages
    bare.chmod(0o755)
    proc = script('tools/dist_train.sh', CONFIG, '1', env={'PYTHON': str(bare)})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == (f'error: PYTHON={bare}: has no torch (name the python of '
                                   'the environment mmseg_ext is installed in)')


CHAINED_SIGNALS = """error: interrupted
Traceback (most recent call last):
  File "/site-packages/torch/distributed/elastic/agent/server/api.py", line 9, in run
    time.sleep(monitor_interval)
  File "/site-packages/torch/distributed/elastic/multiprocessing/api.py", line 86, in _t
    raise SignalException(f"Process {os.getpid()} got signal: {sigval}", sigval=sigval)
torch.distributed.elastic.multiprocessing.api.SignalException: Process 7 got signal: 2

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/site-packages/torch/distributed/elastic/agent/server/api.py", line 12, in run
    self._shutdown(e.sigval)
  File "/site-packages/torch/distributed/elastic/multiprocessing/api.py", line 86, in _t
torch.distributed.elastic.multiprocessing.api.SignalException: Process 7 got signal: 2
after
Traceback (most recent call last):
  File "tools/train.py", line 3, in <module>
KeyError: 'x'

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "tools/train.py", line 5, in <module>
RuntimeError: a bug
end
"""


def test_filter_drops_torchruns_chained_signal_tracebacks_whole():
    """Round AO: a stop signal that reached torchrun twice (from the terminal's group and
    from the launcher passing it on) gave a chained traceback ("During handling of the
    above exception ..."), whose second half got through. A chain is one traceback:
    torchrun's own is dropped whole, a rank's own (a bug) is kept whole."""
    proc = subprocess.run([sys.executable, osp.join(REPO, 'tools', '_torchrun_filter.py')],
                          input=CHAINED_SIGNALS, capture_output=True, text=True)
    kept = CHAINED_SIGNALS.split('after\n')[1]
    assert proc.stderr == 'error: interrupted\nafter\n' + kept
