"""mmengine checkpoints load under torch>=2.6 with weights_only kept; foreign globals fail."""
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.runner.checkpoint import _load_checkpoint, save_checkpoint

import mmseg_ext  # noqa: F401  (installs the allow-list)
from mmseg_ext.utils.checkpoint import restricted_getattr
from mmseg_ext.utils.errors import CheckpointError

pytestmark = pytest.mark.stacks


def mmengine_like_checkpoint():
    """What mmengine's CheckpointHook writes: weights, meta and the message hub."""
    hub = MessageHub.get_instance('test_checkpoint')
    for i in range(3):
        hub.update_scalar('train/loss', 1.0 / (i + 1))
    hub.update_info('np_value', np.float32(0.5))
    return {
        'meta': {'epoch': 0, 'iter': 3, 'seed': 0, 'dataset_meta': {'classes': ('a', 'b')},
                 'hook_msgs': {'best': np.array([1.5, 2.5])}},
        'state_dict': {'conv.weight': torch.randn(2, 3, 1, 1)},
        'message_hub': hub.state_dict(),
    }


def test_stock_torch_refuses_and_allow_list_accepts(tmp_path):
    path = str(tmp_path / 'iter_3.pth')
    save_checkpoint(mmengine_like_checkpoint(), path)
    # without mmseg_ext (fresh interpreter) torch refuses the file ...
    code = ('import torch, sys\n'
            'try:\n    torch.load(sys.argv[1])\n'
            'except Exception as e:\n    print(type(e).__name__, e)\n')
    out = subprocess.run([sys.executable, '-c', code, path], capture_output=True,
                         text=True, cwd='/').stdout
    assert 'UnpicklingError' in out and 'was not an allowed global' in out
    # ... and with the plugin the same stock call loads it (weights_only stays on)
    ckpt = torch.load(path, weights_only=True)
    buf = ckpt['message_hub']['log_scalars']['train/loss']
    assert isinstance(buf, HistoryBuffer)
    assert buf.mean() == pytest.approx((1 + 1 / 2 + 1 / 3) / 3)
    assert buf.current() == pytest.approx(1 / 3)
    np.testing.assert_array_equal(ckpt['meta']['hook_msgs']['best'], [1.5, 2.5])
    # mmengine's own loader (load_from / tools/test.py) goes through the same path
    ckpt2 = _load_checkpoint(path, map_location='cpu')
    torch.testing.assert_close(ckpt2['state_dict']['conv.weight'],
                               ckpt['state_dict']['conv.weight'])


class _RunsCommand:
    """Pickles as ``os.system(cmd)``: loading it would run the command."""

    def __init__(self, cmd):
        self.cmd = cmd

    def __reduce__(self):
        return (os.system, (self.cmd,))


class _GetsAttribute:
    """Pickles as ``getattr(obj, name)`` (``builtins.getattr``)."""

    def __init__(self, obj, name):
        self.obj, self.name = obj, name

    def __reduce__(self):
        return (getattr, (self.obj, self.name))


def test_foreign_global_is_refused(tmp_path):
    marker = tmp_path / 'pwned'
    ckpt = mmengine_like_checkpoint()
    ckpt['meta']['payload'] = _RunsCommand(f'touch {marker}')
    path = str(tmp_path / 'evil.pth')
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError) as info:
        _load_checkpoint(path, map_location='cpu')
    assert not marker.exists()
    message = str(info.value)
    assert message.startswith(f'{path}: refused to load: unsupported global posix.system')
    assert 'weights_only' not in message and '\n' not in message


@pytest.mark.parametrize('obj, name', [
    (HistoryBuffer, '__init__'),
    (HistoryBuffer, '__class__'),
    (HistoryBuffer, 'register_statistics'),
])
def test_getattr_outside_history_buffer_statistics_is_refused(tmp_path, obj, name):
    ckpt = mmengine_like_checkpoint()
    ckpt['meta']['payload'] = _GetsAttribute(obj, name)
    path = str(tmp_path / 'evil.pth')
    torch.save(ckpt, path)
    with pytest.raises(pickle.UnpicklingError, match='does not allow-list'):
        torch.load(path, weights_only=True)


def test_restricted_getattr_answers_only_statistics():
    assert restricted_getattr(HistoryBuffer, 'mean') is HistoryBuffer.mean
    with pytest.raises(pickle.UnpicklingError):
        restricted_getattr(os, 'system')
    with pytest.raises(pickle.UnpicklingError):
        restricted_getattr(HistoryBuffer(), 'mean')  # instances are not allowed either


def test_missing_ops_are_found_anywhere_in_the_model():
    from mmseg_ext.utils.compiled_ops import missing_ops
    model = dict(type='EncoderDecoder',
                 backbone=dict(type='ResNetV1c', dcn=dict(type='DCN', deform_groups=1)),
                 decode_head=[dict(type='FCNHead'), dict(type='mmseg.PointHead')],
                 auxiliary_head=dict(type='CCHead'))
    assert missing_ops(model) == [
        ('model.backbone.dcn', 'DCN', 'DeformConv2d'),
        ('model.decode_head[1]', 'mmseg.PointHead', 'point_sample'),
        ('model.auxiliary_head', 'CCHead', 'CrissCrossAttention'),
    ]
    assert missing_ops(dict(type='EncoderDecoder', decode_head=dict(type='UPerHead'))) == []


class _DiskFullAfterHalf:
    """A file that takes half of what is written to it, then fails as a full disk."""

    def __init__(self, f):
        self._f = f

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()

    def write(self, data):
        self._f.write(data[:len(data) // 2])
        self._f.flush()
        raise OSError(28, 'No space left on device')


def _train_cfg_backend(tmp_path, options=None):
    from conftest import REPO

    from mmseg_ext.training.runner import train_config
    cfg = train_config(os.path.join(REPO, 'custom_configs/demo/fcn_r18-tiny_shapes-64x80.py'),
                       work_dir=str(tmp_path / 'work'), cfg_options=options)
    return cfg.default_hooks.checkpoint.get('backend_args')


def test_training_writes_checkpoints_whole_or_not_at_all(tmp_path, monkeypatch):
    """The trainer's checkpoints go through the atomic backend: a write that fails half
    way (disk full) leaves the earlier checkpoint of that name intact and no partial or
    temporary file; a complete write loads back exactly."""
    import mmseg_ext.io.atomic as atomic
    from mmseg_ext.io.checkpoint_backend import AtomicLocalBackend
    from mmseg_ext.utils.errors import OutputError
    backend_args = _train_cfg_backend(tmp_path)
    assert backend_args == {'backend': 'atomic_local',
                            'run': os.path.realpath(tmp_path / 'work')}

    folder = tmp_path / 'ckpts'
    path = str(folder / 'iter_4.pth')
    first = mmengine_like_checkpoint()
    save_checkpoint(first, path, backend_args=dict(backend_args))
    before = open(path, 'rb').read()
    assert torch.equal(_load_checkpoint(path)['state_dict']['conv.weight'],
                       first['state_dict']['conv.weight'])
    from mmengine.fileio import get_file_backend
    assert isinstance(get_file_backend(path, backend_args=dict(backend_args)),
                      AtomicLocalBackend)

    real_open = open
    monkeypatch.setattr(atomic, 'open',
                        lambda *a, **k: _DiskFullAfterHalf(real_open(*a, **k)), raising=False)
    with pytest.raises(OutputError, match='no space left'):
        save_checkpoint(mmengine_like_checkpoint(), path, backend_args=dict(backend_args))
    monkeypatch.undo()
    assert sorted(os.listdir(folder)) == [  # the checkpoint and its ownership record
        '.iter_4.pth.mmseg_ext_owner.json', 'iter_4.pth']
    assert open(path, 'rb').read() == before

    # mmengine's own backend under the same failure leaves a truncated file behind
    stock = str(folder / 'stock.pth')
    import mmengine.fileio.backends.local_backend as local_backend
    monkeypatch.setattr(local_backend, 'open',
                        lambda *a, **k: _DiskFullAfterHalf(real_open(*a, **k)), raising=False)
    with pytest.raises(OSError):
        save_checkpoint(mmengine_like_checkpoint(), stock)
    monkeypatch.undo()
    assert 0 < os.path.getsize(stock) < len(before)


def test_a_config_backend_of_its_own_is_kept(tmp_path):
    own = _train_cfg_backend(tmp_path, {'default_hooks.checkpoint.backend_args':
                                        {'backend': 'local'}})
    assert own == {'backend': 'local'}
    remote = _train_cfg_backend(tmp_path, {'default_hooks.checkpoint.out_dir':
                                           's3://bucket/run'})
    assert remote is None


def test_a_checkpoint_class_list_is_checked_when_it_is_read():
    """Round W-12: a checkpoint's own bad class list (duplicates, white space, numbers,
    another count than its weights) was blamed on the config, an image or the output
    folder; it names the checkpoint and ``meta.dataset_meta.classes`` now."""
    from torch import nn

    from mmseg_ext.utils.checkpoint import checkpoint_class_names

    def ckpt(classes):
        return {'meta': {'dataset_meta': {'classes': classes}}}

    # a meta that does not say: another writer's (nothing to check, nothing to trust)
    for said in ({}, {'meta': None}, {'meta': {'dataset_meta': 'x'}}, ckpt(None), ckpt(()),
                 ckpt('finger-1'), None):
        assert checkpoint_class_names(said, 'm.pth') == ()
    assert checkpoint_class_names(ckpt(['a', 'b']), 'm.pth') == ('a', 'b')
    for classes, problem in (
            (('a', 'a'), "class 'a' appears twice (class names must be distinct)"),
            (('a', 'b '), "class 1: 'b ' starts or ends with white space"),
            ((0, 1), 'class 0: 0 is not text'),
            (('a', None), 'class 1: None is not text'),
            ((['a'], ['b']), "class 0: ['a'] is not text"),
            (('a', ''), 'class 1: a class name is empty')):
        with pytest.raises(CheckpointError) as err:
            checkpoint_class_names(ckpt(classes), 'm.pth')
        assert str(err.value) == f'm.pth: meta.dataset_meta.classes: {problem}'
    model = nn.Module()
    model.num_classes = 3  # what its weights predict
    assert checkpoint_class_names(ckpt(('a', 'b', 'c')), 'm.pth', model) == ('a', 'b', 'c')
    with pytest.raises(CheckpointError) as err:
        checkpoint_class_names(ckpt(('a', 'b')), 'm.pth', model)
    assert str(err.value) == ('m.pth: meta.dataset_meta.classes names 2 classes (a, b), '
                              'but its weights predict 3')
