"""tools/train.py -> checkpoint -> tools/test.py on tiny data made in the test."""
import glob
import json
import os.path as osp

import pytest
from conftest import run_tool

CONFIG = 'custom_configs/demo/fcn_r18-tiny_shapes-64x80.py'


def data_options(root, iters):
    opts = [f'train_dataloader.dataset.data_root={root}',
            f'val_dataloader.dataset.data_root={root}',
            f'test_dataloader.dataset.data_root={root}',
            'train_dataloader.batch_size=2', 'crop_size=(32,40)',
            'model.data_preprocessor.size=(32,40)',
            f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
            f'default_hooks.checkpoint.interval={iters}',
            f'param_scheduler.0.end={iters}', 'default_hooks.logger.interval=1']
    return ['--cfg-options', *opts]


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
