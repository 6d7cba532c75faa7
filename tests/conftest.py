"""Shared fixtures: repository paths, the tools' interpreter, tiny synthetic data."""
import importlib.util
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
SHARED_DATA = osp.normpath(osp.join(REPO, '..', 'shared', 'data'))


#: ``(tool, line)`` for every ``error:`` line a tool printed in this test session; the
#: last tests (tests/tools/test_zz_error_lines.py) check the flags they name exist
ERROR_LINES = []

#: Test files that read what the whole session collected: they run last.
RUN_LAST = ('test_zz_error_lines.py',)


def pytest_collection_modifyitems(session, config, items):
    """Move the tests of :data:`RUN_LAST` after every other test, keeping their order."""
    last = [item for item in items if item.path.name in RUN_LAST]
    items[:] = [item for item in items if item.path.name not in RUN_LAST] + last


def run_tool(*args, env=None, cwd=REPO, timeout=600):
    """Run ``python tools/<args>`` in a subprocess; return the CompletedProcess."""
    full_env = dict(os.environ)
    full_env.setdefault('PYTHONUNBUFFERED', '1')
    if env:
        full_env.update(env)
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
    tool = next((str(a) for a in args if str(a).endswith('.py')), '')
    ERROR_LINES.extend((tool, line) for line in (proc.stderr or '').splitlines()
                       + (proc.stdout or '').splitlines() if line.startswith('error:'))
    return proc


@pytest.fixture
def shapes_root(tmp_path):
    """A tiny image/label-folder data set (6 train, 3 val, 32x40)."""
    from mmseg_ext.datasets.synthetic import make_shapes_dataset
    return make_shapes_dataset(str(tmp_path / 'shapes'), num_train=6, num_val=3,
                               size=(32, 40), seed=1)


def shared_data(name):
    """Path of a folder in ../shared/data, or skip the test when it is absent."""
    path = osp.join(SHARED_DATA, name)
    if not osp.isdir(path):
        pytest.skip(f'{path} is absent (real data lives beside the project, not in it)')
    return path


@pytest.fixture
def fast_cpu(monkeypatch):
    """Tiny models on a shared 2-core machine: one thread avoids OpenMP waits (an op
    costs ~0.1 s instead of ~0.2 ms when the other core is busy), and the runner's
    yapf formatting of the config (7 calls, ~6 s per run; nothing here reads it) is
    replaced by the plain text."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setattr(Config, 'pretty_text', property(lambda self: self.text))
    yield
    torch.set_num_threads(threads)


#: The tiny multi-class config most tool tests train (shapes data, 64x80).
CONFIG = 'custom_configs/demo/fcn_r18-tiny_shapes-64x80.py'


def data_options(root, iters):
    """``--cfg-options`` that point :data:`CONFIG` at ``root`` and train ``iters``."""
    opts = [f'train_dataloader.dataset.data_root={root}',
            f'val_dataloader.dataset.data_root={root}',
            f'test_dataloader.dataset.data_root={root}',
            'train_dataloader.batch_size=2', 'crop_size=(32,40)',
            'model.data_preprocessor.size=(32,40)',
            f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
            f'default_hooks.checkpoint.interval={iters}',
            f'param_scheduler.0.end={iters}', 'default_hooks.logger.interval=1']
    return ['--cfg-options', *opts]


def load_tool(path):
    """Import a tool script as a module (its folder on sys.path for ``_bootstrap``)."""
    tools_dir = osp.dirname(path)
    if tools_dir not in sys.path:
        sys.path.insert(0, tools_dir)
    name = f'_tool_{osp.basename(path)[:-3]}'
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
