"""tools/benchmark/gpu_check.py runs end to end in its CPU mode (--tiny): the four
hand-bone configs train and UperNet-BEiT slides over whole images; the table is written.
The tiny run calls the script's main in this process; its shell wrapper runs as a
command in the no-GPU test."""
import re
import subprocess

import pytest
from conftest import REPO, call_tool, load_tool

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
    gpu_check = load_tool(f'{REPO}/tools/benchmark/gpu_check.py')
    names = [f'| `custom_configs/{c}`' for c in gpu_check.CONFIGS]
    assert [r.split(' | ')[0] for r in rows] == names + [
        '| `custom_configs/upernet_beit.py`',
        '| `custom_configs/unet/unet_convnext-s_4xb2-20k_handbone-512x512.py`']
    try:
        import timm  # noqa: F401
        have_timm = True
    except ImportError:
        have_timm = False
    for name, row in zip(gpu_check.CONFIGS, rows):
        if '/unet_' in name and not have_timm:
            assert 'skipped: timm not installed' in row, row
        else:
            assert re.search(r'\| train 64x64, batch \d+, iterations 2-2 \| \d+\.\d\d it/s \| '
                             r'n/a \(CPU\) \|', row), row
    assert 'slide-window inference of 128x128 images (2)' in rows[-2]
    assert re.search(r'\| \d+\.\d\d img/s \|', rows[-2])
    assert ('skipped: timm not installed' in rows[-1]) != have_timm
    assert f'written to {tmp_path}/gpu_check.md' in proc.stdout


@pytest.mark.timm
def test_gpu_check_tiny_mode_trains_the_timm_configs(tmp_path, monkeypatch):
    """Where timm is installed: the U-Nets train in --tiny and the U-Net predicts whole
    images at full resolution."""
    from conftest import require_timm
    from mmengine.config import Config
    require_timm()
    monkeypatch.setattr(Config, 'pretty_text', property(lambda self: self.text))
    configs = ['unet/unet_convnext-s_4xb2-20k_handbone-1024x1024.py',
               'unet/unet_swin-t_4xb2-20k_handbone-512x512.py']
    proc = call_tool('tools/benchmark/gpu_check.py', '--tiny', '--out', str(tmp_path),
                     '--configs', *configs)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = (tmp_path / 'gpu_check.md').read_text().splitlines()[2:]
    assert [r.split(' | ')[0] for r in rows[:2]] == [f'| `custom_configs/{c}`'
                                                     for c in configs]
    for row in rows[:2]:
        assert re.search(r'\| \d+\.\d\d it/s \|', row), row
    assert re.search(r'whole-image inference of 128x128 images \(2\), full-resolution '
                     r'output \| \d+\.\d\d img/s', rows[-1]), rows[-1]


def test_gpu_check_without_a_gpu_says_so(tmp_path):
    import torch
    if torch.cuda.is_available():
        pytest.skip('this machine has a GPU')
    proc = subprocess.run(['bash', 'tools/benchmark/gpu_check.sh', '--out', str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2  # the request cannot run here (exit-code convention)
    assert proc.stderr.strip().splitlines()[-1] == (
        'error: no CUDA GPU: run on a GPU machine, or --tiny to check the script on the CPU')


def test_gpu_check_refuses_a_warmup_that_leaves_nothing_to_time(tmp_path):
    proc = call_tool('tools/benchmark/gpu_check.py', '--iters', '10', '--warmup', '10',
                     '--out', str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        'error: --warmup 10 leaves no iteration to time: it must be less than --iters 10')
    assert not any(tmp_path.iterdir())  # refused before any data was written
