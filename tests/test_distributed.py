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
    assert proc.returncode == 0, proc.stderr[-3000:]
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
    assert double.returncode == 0, double.stderr[-3000:]
    one, two = _metrics(single.stdout), _metrics(double.stdout)
    assert 'mDice' in one and len(one) > 29
    assert one == two
    # the padded duplicate would have counted: 4 images give another result
    four = run_tool('tools/test.py', CONFIG, ckpt, '--work-dir', str(tmp_path / 't4'),
                    '--cfg-options', *roots, 'test_dataloader.dataset.indices=4', 'test_dataloader.dataset.fold=None',
                    env={'OMP_NUM_THREADS': '1'})
    assert four.returncode == 0, four.stderr[-3000:]
    assert _metrics(four.stdout)['mDice'] != one['mDice']
