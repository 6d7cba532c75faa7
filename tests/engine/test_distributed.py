"""Two CPU ranks through the project's torchrun scripts: training runs, and the test
metric equals the single-process one, also for an odd number of images (the sampler pads
rank 1 with a duplicate that the metric must drop)."""
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
from conftest import REPO, run_tool

pytestmark = pytest.mark.stacks

CONFIG = 'custom_configs/demo/unet-s5-tiny_multilabel_1xb4-1500i_handbone-synth-128x128.py'


def _script(*args, env=None, timeout=600):
    full_env = dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS='1',
                    PORT=str(29500 + os.getpid() % 1000))
    full_env.update(env or {})
    return subprocess.run(['bash', *args], cwd=REPO, env=full_env, capture_output=True,
                          text=True, timeout=timeout)


def _tails(proc) -> str:
    """The end of both streams: mmengine logs to stdout, torchrun and aborts to stderr."""
    return f'stdout:\n{proc.stdout[-2500:]}\nstderr:\n{proc.stderr[-2500:]}'


def _metrics(stdout):
    """The ``test metrics: k=v, ...`` line of tools/test.py (rank 0 prints it first)."""
    line = next(line for line in stdout.splitlines() if line.startswith('test metrics: '))
    return dict(pair.split('=') for pair in line[len('test metrics: '):].split(', '))


@pytest.mark.slow
def test_two_cpu_ranks_train_and_test_like_one(tmp_path):
    data = str(tmp_path / 'data')
    proc = run_tool('tools/make_synthetic_handbone.py', '--out', data, '--patients', '4',
                    '--size', '128x128', '--test-patients', '1')
    assert proc.returncode == 0, proc.stderr
    roots = [f'{split}_dataloader.dataset.data_root={data}/train'
             for split in ('train', 'val', 'test')]
    work = str(tmp_path / 'work')
    proc = _script('tools/dist_train.sh', CONFIG, '2', '--work-dir', work,
                   '--cfg-options', *roots, 'train_cfg.max_iters=4', 'train_cfg.val_interval=4',
                   'default_hooks.checkpoint.interval=4', 'train_dataloader.batch_size=2')
    assert proc.returncode == 0, _tails(proc)
    log = proc.stdout + proc.stderr
    assert 'Iter(train) [4/4]' in log or osp.isfile(osp.join(work, 'iter_4.pth')), log[-2000:]
    # two ranks, each a batch of 2: the log shows the distributed world size
    assert re.search(r'world_size: 2|World size: 2|Distributed training: True', log), \
        log[-3000:]
    ckpt = osp.join(work, 'iter_4.pth')
    assert osp.isfile(ckpt)

    # 3 validation images: rank 0 gets 2, rank 1 gets 1 + a padded duplicate
    options = ['--cfg-options', *roots, 'test_dataloader.dataset.indices=3',
               'test_dataloader.dataset.fold=None']
    single = run_tool('tools/test.py', CONFIG, ckpt, '--work-dir', str(tmp_path / 't1'),
                      *options, env={'OMP_NUM_THREADS': '1'})
    assert single.returncode == 0, single.stderr[-3000:]
    double = _script('tools/dist_test.sh', CONFIG, ckpt, '2', '--work-dir',
                     str(tmp_path / 't2'), *options)
    assert double.returncode == 0, _tails(double)
    one, two = _metrics(single.stdout), _metrics(double.stdout)
    assert 'mDice' in one and len(one) > 29
    assert one == two
    # the padded duplicate would have counted: 4 images give another result
    four = run_tool('tools/test.py', CONFIG, ckpt, '--work-dir', str(tmp_path / 't4'),
                    '--cfg-options', *roots, 'test_dataloader.dataset.indices=4', 'test_dataloader.dataset.fold=None',
                    env={'OMP_NUM_THREADS': '1'})
    assert four.returncode == 0, four.stderr[-3000:]
    assert _metrics(four.stdout)['mDice'] != one['mDice']


_FINISH = r"""
import gc, json, os, sys
import torch
from mmengine.config import Config
from mmseg_ext.training.runner import finish_distributed, prepare_distributed
from mmseg_ext.engine import CPUDistributedDataParallel

cfg = Config(dict(model_wrapper_cfg=None))
prepare_distributed(cfg, 'pytorch')
import torch.distributed as dist
started = dist.is_initialized()
model = CPUDistributedDataParallel(module=torch.nn.Conv2d(3, 2, 1), device_ids=None)
holder = {'model': model}
holder['self'] = holder  # a reference cycle, as mmengine's runner has
model(torch.ones(1, 3, 4, 4)).sum().backward()
del model, holder
first = finish_distributed()
alive = sum(isinstance(obj, torch.nn.parallel.DistributedDataParallel)
            for obj in gc.get_objects())
print(json.dumps(dict(started=started, first=first, second=finish_distributed(),
                      initialized=dist.is_initialized(), wrapper=cfg.model_wrapper_cfg,
                      alive=alive)))
"""


def test_finish_distributed_releases_the_cpu_process_group(tmp_path):
    """A CPU rank's gloo group is destroyed, and the DDP wrapper that holds it collected,
    before the tool leaves: nothing of it is left to interpreter shutdown, where a
    finished rank used to abort now and then (SIGABRT)."""
    import json
    if __import__('torch').cuda.is_available():
        pytest.skip('with CUDA mmengine starts the process group itself')
    env = dict(os.environ, RANK='0', LOCAL_RANK='0', WORLD_SIZE='1', MASTER_ADDR='127.0.0.1',
               MASTER_PORT=str(30500 + os.getpid() % 1000), OMP_NUM_THREADS='1',
               PYTHONPATH=REPO)
    proc = subprocess.run([sys.executable, '-c', _FINISH], cwd=str(tmp_path), env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result['started'] is True
    assert result['wrapper']['type'] == 'CPUDistributedDataParallel'
    assert result['wrapper']['device_ids'] is None
    assert result['first'] is True and result['second'] is False
    assert result['initialized'] is False
    assert result['alive'] == 0


@pytest.mark.slow
@pytest.mark.parametrize('signame,group,status', [('SIGTERM', False, 143),
                                                  ('SIGINT', True, 130)])
def test_a_stop_signal_to_the_launcher_stops_every_rank(tmp_path, shapes_root, signame,
                                                        group, status):
    """Killing tools/dist_train.sh (as a user or a scheduler does: the script alone, or
    the whole process group as a terminal's Ctrl-C does) reaches torchrun and both
    ranks: the launcher exits with the status every tool gives for the signal (round AO:
    it was 1), the ranks' 'error: interrupted' gets through (the stderr filter outlives
    the signal; it died first with a KeyboardInterrupt traceback), and no process of
    the run is left."""
    import signal
    import time
    shapes = 'custom_configs/demo/fcn_r18-tiny_shapes-64x80.py'
    env = dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS='1',
               PORT=str(30500 + os.getpid() % 1000))
    log = open(tmp_path / 'out.txt', 'w')
    proc = subprocess.Popen(
        ['bash', 'tools/dist_train.sh', shapes, '2', '--work-dir', str(tmp_path / 'w'),
         '--cfg-options', f'train_dataloader.dataset.data_root={shapes_root}',
         f'val_dataloader.dataset.data_root={shapes_root}', 'train_cfg.max_iters=100000',
         'model.data_preprocessor.size=(32,40)', 'default_hooks.logger.interval=1'],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.PIPE, text=True,
        start_new_session=group)
    deadline = time.time() + 300
    while 'Iter(train)' not in open(tmp_path / 'out.txt').read():
        assert proc.poll() is None and time.time() < deadline, 'training never started'
        time.sleep(1)
    if group:
        os.killpg(proc.pid, getattr(signal, signame))
    else:
        proc.send_signal(getattr(signal, signame))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == status, err[-3000:]
    assert 'error: interrupted' in err
    assert 'SignalException' not in err and 'ChildFailedError' not in err
    assert 'Traceback' not in err, err[-3000:]
    left = subprocess.run(['pgrep', '-f', str(tmp_path / 'w')], capture_output=True, text=True)
    assert left.stdout.strip() == '', left.stdout
