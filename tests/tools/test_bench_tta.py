"""tools/benchmark/bench_tta.py (the README's plain-vs-TTA table) on tiny data: it
prints one row per mode, and the plain row equals tools/test.py's own metrics."""
import os.path as osp

import pytest
import torch
from conftest import REPO, call_tool, run_tool

pytestmark = pytest.mark.slow
CONFIG = osp.join(REPO, 'custom_configs', 'demo', 'fcn_r18-tiny_shapes-64x80.py')


def test_bench_tta_prints_plain_tta_and_stock_rows(tmp_path, shapes_root):
    from mmseg_ext.config.loading import load_config
    from mmseg_ext.config.model import build_bare_model
    torch.manual_seed(0)
    ckpt = str(tmp_path / 'm.pth')
    torch.save({'state_dict': build_bare_model(load_config(CONFIG)).state_dict()}, ckpt)
    opts = ['--cfg-options', f'val_dataloader.dataset.data_root={shapes_root}',
            f'test_dataloader.dataset.data_root={shapes_root}']
    proc = call_tool('tools/benchmark/bench_tta.py', CONFIG, ckpt, *opts, '--stock-views',
                     '--work-dir', str(tmp_path / 'w'))
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = [line for line in proc.stdout.splitlines() if line.startswith('| ')]
    assert table[0].startswith('| mode | views | images | s/image | aAcc | mIoU |')
    modes = [row.split(' | ')[0][2:] for row in table[1:]]
    assert modes == ['plain', 'TTA', 'TTA, stock views (ratios of the original image)']
    assert [row.split(' | ')[1] for row in table[1:]] == ['1', '6', '6']
    test = run_tool('tools/test.py', CONFIG, ckpt, '--work-dir', str(tmp_path / 't'), *opts)
    assert test.returncode == 0, test.stderr[-2000:]
    line = [x for x in test.stdout.splitlines() if x.startswith('test metrics:')][-1]
    miou = float(dict(kv.split('=') for kv in line[14:].split(', '))['mIoU'])
    assert float(table[1].split(' | ')[5]) == pytest.approx(miou, abs=5e-5)
