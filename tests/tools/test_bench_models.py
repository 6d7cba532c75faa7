"""tools/benchmark/bench_models.py (the README's model table): one row per config with
the output stride each architecture is known for."""
import pytest
from conftest import call_tool

pytestmark = pytest.mark.slow


def test_rows_give_the_known_output_strides():
    proc = call_tool('tools/benchmark/bench_models.py', 'deeplabv3_r101.py',
                     'recipes/unet-s5-d16_multilabel_1xb4-20k_xray-small-512x512.py',
                     '--size', '64', '--repeat', '1', '--markdown')
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line.split(' | ') for line in proc.stdout.splitlines() if line.startswith('| `')]
    assert [r[0] for r in rows] == [
        '| `deeplabv3_r101.py`', '| `recipes/unet-s5-d16_multilabel_1xb4-20k_xray-small-'
        '512x512.py`']
    # DeepLabV3 with a dilated ResNet predicts at 1/8; the UNet at full resolution
    assert [r[1] for r in rows] == ['8', '1']
    assert all(float(r[2]) > 1 and float(r[3].rstrip(' |')) > 0 for r in rows)
