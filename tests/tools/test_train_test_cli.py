"""tools/train.py -> checkpoint -> tools/test.py on tiny data made in the test."""
import glob
import json
import os
import os.path as osp

import pytest
import torch
from conftest import CONFIG, REPO, data_options, run_tool

pytestmark = pytest.mark.stacks



def error_lines(proc):
    """stderr's ``error:`` lines (mmseg's own warnings go to stderr too)."""
    return [line for line in proc.stderr.splitlines() if line.startswith('error')]


def last_val_metrics(work_dir):
    scalars = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    assert scalars, f'no scalars.json under {work_dir}'
    rows = [json.loads(line) for line in open(scalars[-1])]
    return [r for r in rows if 'mIoU' in r][-1]


@pytest.mark.slow
def test_train_save_test_resume(tmp_path, shapes_root):
    work = str(tmp_path / 'work')
    proc = run_tool('tools/train.py', CONFIG, '--work-dir', work,
                    *data_options(shapes_root, 4))
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = osp.join(work, 'iter_4.pth')
    assert osp.isfile(ckpt)
    val = last_val_metrics(work)
    # the runner's dumped config: checkpoints were written through the atomic backend
    dumped = glob.glob(osp.join(work, osp.basename(CONFIG)))
    assert dumped and "backend='atomic_local'" in open(dumped[0]).read().replace('"', "'")

    proc = run_tool('tools/test.py', CONFIG, ckpt, '--work-dir', str(tmp_path / 'test'),
                    *data_options(shapes_root, 4))
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [x for x in proc.stdout.splitlines() if x.startswith('test metrics:')][-1]
    tested = dict(kv.split('=') for kv in line[len('test metrics: '):].split(', '))
    # the reloaded checkpoint reproduces the trained model's validation exactly
    assert float(tested['mIoU']) == pytest.approx(val['mIoU'], abs=1e-6)
    assert float(tested['aAcc']) == pytest.approx(val['aAcc'], abs=1e-6)

    # --resume continues from iteration 4 (weights, optimizer and message hub reloaded)
    proc = run_tool('tools/train.py', CONFIG, '--work-dir', work, '--resume',
                    *data_options(shapes_root, 6))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'resumed epoch: 0, iter: 4' in proc.stdout + proc.stderr
    assert osp.isfile(osp.join(work, 'iter_6.pth'))


def test_missing_config_is_one_line(tmp_path):
    proc = run_tool('tools/train.py', str(tmp_path / 'nope.py'))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [f'error: {tmp_path}/nope.py: config file not found']


def test_missing_checkpoint_is_one_line(tmp_path):
    proc = run_tool('tools/test.py', CONFIG, str(tmp_path / 'none.pth'))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f'error: {tmp_path}/none.pth: checkpoint file not found']


class _RunsCommand:
    """Pickles as ``os.system(cmd)``: loading it would run the command."""

    def __init__(self, cmd):
        self.cmd = cmd

    def __reduce__(self):
        return (os.system, (self.cmd,))


def _evil_checkpoint(tmp_path):
    marker = tmp_path / 'pwned'
    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {}, 'meta': {'x': _RunsCommand(f'touch {marker}')}}, path)
    return path, marker


@pytest.mark.parametrize('tool', ['test', 'train-load_from'])
def test_foreign_global_checkpoint_is_refused_in_one_line(tmp_path, shapes_root, tool):
    """Both stacks: refuse, never fall back to weights_only=False, never run the code."""
    path, marker = _evil_checkpoint(tmp_path)
    if tool == 'test':
        args = ['tools/test.py', CONFIG, path, *data_options(shapes_root, 2)]
    else:
        args = ['tools/train.py', CONFIG, '--work-dir', str(tmp_path / 'w'),
                *data_options(shapes_root, 2), f'load_from={path}']
    proc = run_tool(*args, env={'OMP_NUM_THREADS': '1'})
    assert not marker.exists()
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert 'Traceback' not in proc.stderr
    assert error_lines(proc) == [
        f'error: {path}: refused to load: unsupported global posix.system (a checkpoint '
        'may only hold tensors, containers and what mmengine writes; loading anything '
        'else could run code)']


def test_config_needing_missing_ops_is_one_line(tmp_path, shapes_root):
    from mmseg_ext.utils.compiled_ops import has_compiled_ops
    if has_compiled_ops():
        pytest.skip('this install has mmcv compiled ops')
    config = tmp_path / 'psa.py'
    config.write_text(f"_base_ = ['{REPO}/{CONFIG}']\n"
                      "model = dict(decode_head=dict(_delete_=True, type='PSAHead', "
                      "in_channels=128, channels=32, mask_size=(8, 10), num_classes=4))\n")
    proc = run_tool('tools/train.py', str(config), *data_options(shapes_root, 2))
    assert proc.returncode == 1
    assert 'Traceback' not in proc.stderr
    lines = error_lines(proc)
    assert len(lines) == 1
    assert lines[0].startswith(
        f"error: {config}: model.decode_head (PSAHead) needs mmcv's compiled op PSAMask, "
        'which this install lacks (mmcv without mmcv._ext). Fix: install mmcv with '
        'compiled ops: STACK=openmmlab bash tools/install.sh')


def test_mmseg_bases_resolve_after_import(tmp_path):
    """`mmseg::` bases through plain mmengine, once mmseg_ext is imported."""
    from mmengine.config import Config

    import mmseg_ext  # noqa: F401
    config = tmp_path / 'c.py'
    config.write_text("_base_ = ['mmseg::_base_/models/fcn_r50-d8.py']\n")
    cfg = Config.fromfile(str(config))
    assert cfg.model.type == 'EncoderDecoder'
    assert cfg.model.decode_head.type == 'FCNHead'
