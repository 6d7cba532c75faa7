"""Shared fixtures: repository paths, the tools' interpreter, tiny synthetic data."""
import contextlib
import gc
import importlib.util
import os
import os.path as osp
import signal
import subprocess
import sys
import tempfile

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


def pytest_configure(config):
    """The suite sends itself and its tools' processes SIGINT (Ctrl-C) on purpose. A
    run started in the background by a non-interactive shell (`nohup bash .ci/run &`)
    inherits SIGINT ignored, which Python then keeps (and passes on to every process
    it starts): the signal tests would see an ignored Ctrl-C instead of the one a user
    sends. Restore Python's own handling first."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_modifyitems(session, config, items):
    """Move the tests of :data:`RUN_LAST` after every other test, keeping their order."""
    last = [item for item in items if item.path.name in RUN_LAST]
    items[:] = [item for item in items if item.path.name not in RUN_LAST] + last


def pytest_collection_finish(session):
    """Exclude what collection loaded (torch, mmseg, every test module) from later
    garbage collections: mmengine's data sets call ``gc.collect()`` each time they are
    built, and a full collection over this process's objects costs about 0.2 s here."""
    gc.collect()
    gc.freeze()


def run_tool(*args, env=None, cwd=REPO, timeout=600, subprocess_run=False):
    """Run ``tools/<tool>.py args...`` (or another script) and return a ``CompletedProcess``.

    By default a tool's ``main(argv)`` runs in this process (:func:`call_tool`): the
    parser, the error handling and the exit status are the tool's own, without paying
    a new interpreter's imports of torch and mmseg (about 8 s a run here).
    ``subprocess_run=True`` starts ``python tools/...`` instead, for what only a new
    process shows: the environment check against a shadowed ``PYTHONPATH``, import
    costs, interpreter shutdown.
    """
    if not subprocess_run and osp.dirname(str(args[0])) == 'tools' and \
            str(args[0]).endswith('.py'):
        proc = call_tool(str(args[0]), *args[1:], env=env, cwd=cwd)
    else:
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


def call_tool(tool, *args, env=None, cwd=REPO):
    """``tools/<tool>.py``'s ``main(args)`` in this process, as a ``CompletedProcess``.

    Everything written to file descriptors 1 and 2 while it runs is captured (Python
    prints, progress bars, logging handlers the run creates); the working directory and
    the environment are set for the call and restored; mmengine's named singletons
    (visualizers, loggers, message hubs) of earlier tests are hidden from the run and
    those the run makes are dropped, as a new process has none."""
    module = load_tool(osp.join(REPO, tool))
    saved_env, saved_cwd, saved_argv = dict(os.environ), os.getcwd(), sys.argv
    before = _hide_singletons()
    code = 0
    try:
        os.environ.update(env or {})
        os.chdir(cwd)
        sys.argv = [osp.join(REPO, tool), *map(str, args)]  # argparse's prog
        with _captured_fds() as captured:
            try:
                module.main([str(a) for a in args])
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        os.chdir(saved_cwd)
        sys.argv = saved_argv
        os.environ.clear()
        os.environ.update(saved_env)
        _restore_singletons(before)
    return subprocess.CompletedProcess([tool, *args], code, captured['out'], captured['err'])


@contextlib.contextmanager
def _captured_fds():
    """Capture fds 1 and 2 (and ``sys.stdout``/``sys.stderr`` over them) into a dict
    ``{'out': str, 'err': str}`` filled on exit."""
    result = {}
    files = [tempfile.TemporaryFile(), tempfile.TemporaryFile()]
    streams = sys.stdout, sys.stderr
    for stream in streams:
        stream.flush()
    saved = [os.dup(1), os.dup(2)]
    os.dup2(files[0].fileno(), 1)
    os.dup2(files[1].fileno(), 2)
    sys.stdout = open(1, 'w', encoding='utf-8', errors='replace', closefd=False, buffering=1)
    sys.stderr = open(2, 'w', encoding='utf-8', errors='replace', closefd=False, buffering=1)
    try:
        yield result
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = streams
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)
        for key, f in zip(('out', 'err'), files):
            f.seek(0)
            result[key] = f.read().decode('utf-8', errors='replace')
            f.close()


def _singleton_classes():
    """Every mmengine ``ManagerMixin`` class but ``DefaultScope`` (tests set it on purpose)."""
    from mmengine.registry import DefaultScope
    from mmengine.utils import ManagerMixin
    found, todo = [], [ManagerMixin]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if not issubclass(cls, DefaultScope):
            found.append(cls)
    return found


def _hide_singletons():
    """Empty every singleton table; return what it held."""
    saved = {}
    for cls in _singleton_classes():
        table = cls.__dict__.get('_instance_dict')
        if table is not None:
            saved[cls] = dict(table)
            table.clear()
    return saved


def _restore_singletons(saved):
    """Drop what the run made and put back what :func:`_hide_singletons` hid."""
    for cls in _singleton_classes():
        table = cls.__dict__.get('_instance_dict')
        if table is not None:
            table.clear()
            table.update(saved.get(cls, {}))


@pytest.fixture
def shapes_root(tmp_path):
    """A tiny image/label-folder data set (6 train, 3 val, 32x40)."""
    from mmseg_ext.datasets.synthetic import make_shapes_dataset
    return make_shapes_dataset(str(tmp_path / 'shapes'), num_train=6, num_val=3,
                               size=(32, 40), seed=1)


def require_timm():
    """``timm``; skip the test where it is not installed (the default environment on a
    CPU-only torch has no torchvision for it), unless ``MMSEG_EXT_REQUIRE_TIMM=1`` (the
    CI environment made for these tests), where its absence is a failure."""
    try:
        import timm
    except ImportError as exc:
        if os.environ.get('MMSEG_EXT_REQUIRE_TIMM') == '1':
            pytest.fail(f'timm does not import ({exc}) in the environment made for it')
        pytest.skip(f'timm is not installed here ({exc}); see tools/install.sh step 3b')
    return timm


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


@contextlib.contextmanager
def logged_messages():
    """The messages mmengine's current logger emits inside the block, as a list of
    strings filled while it runs."""
    import logging

    from mmengine.logging import MMLogger
    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)


def data_options(root, iters):
    """``--cfg-options`` that point :data:`CONFIG` at ``root`` and train ``iters``."""
    opts = [f'train_dataloader.dataset.data_root={root}',
            f'val_dataloader.dataset.data_root={root}',
            f'test_dataloader.dataset.data_root={root}',
            'train_dataloader.batch_size=2',
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
