"""tools/benchmark/gpu_check.py runs end to end in its CPU mode (--tiny): the four
hand-bone configs train and UperNet-BEiT slides over whole images; the table is written.
The tiny run calls the script's main in this process; its shell wrapper runs as a
command in the no-GPU test."""
import re
import subprocess

import pytest
from conftest import REPO, call_tool

pytestmark = pytest.mark.slow


def test_gpu_check_tiny_mode(tmp_path, monkeypatch):
    from mmengine.config import Config
    # the runner's yapf formatting of each config (~1.2 s a call, 16 calls) is for logs
    monkeypatch.setattr(Config, 'pretty_text', property(lambda self: self.text))
    proc = call_tool('tools/benchmark/gpu_check.py', '--tiny', '--out', str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = (tmp_path / 'gpu_check.md').read_text().splitlines()
    assert table[0] == '| config | what | speed | peak GPU memory | setting |'
    rows = table[2:]
    assert [r.split(' | ')[0] for r in rows] == [
        '| `custom_configs/upernet_beit.py`', '| `custom_configs/upernet_swin.py`',
        '| `custom_configs/ocrnet_hr18.py`', '| `custom_configs/deeplabv3_r101.py`',
        '| `custom_configs/upernet_beit.py`']
    for row in rows[:4]:
        assert re.search(r'\| \d+\.\d\d it/s \| n/a \(CPU\) \|', row), row
    assert 'slide-window inference of 128x128 images (2)' in rows[4]
    assert re.search(r'\| \d+\.\d\d img/s \|', rows[4])
    assert f'written to {tmp_path}/gpu_check.md' in proc.stdout


def test_gpu_check_without_a_gpu_says_so(tmp_path):
    import torch
    if torch.cuda.is_available():
        pytest.skip('this machine has a GPU')
    proc = subprocess.run(['bash', 'tools/benchmark/gpu_check.sh', '--out', str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2  # the request cannot run here (exit-code convention)
    assert proc.stderr.strip().splitlines()[-1] == (
        'error: no CUDA GPU: run on a GPU machine, or --tiny to check the script on the CPU')
