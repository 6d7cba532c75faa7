"""tools/benchmark/bench_export.py (the table of docs/export.md): an exported config
gets its parity figures and both backends' times, a config that cannot be exported its
reason, and configs sharing a model share one measurement."""
import pytest
from conftest import call_tool

pytestmark = pytest.mark.slow


def test_rows_give_parity_times_and_reasons():
    pytest.importorskip('onnxruntime')
    pytest.importorskip('onnxscript')
    proc = call_tool('tools/benchmark/bench_export.py', 'demo/fcn_r18-tiny_shapes-64x80.py',
                     'upernet_beit.py', '--images', '1', '--size', '48', '64',
                     '--threads', '1', '--markdown')
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line.split(' | ') for line in proc.stdout.splitlines() if line.startswith('| `')]
    assert [r[0] for r in rows] == ['| `demo/fcn_r18-tiny_shapes-64x80.py`',
                                    '| `upernet_beit.py`']
    fcn, beit = rows
    assert fcn[1] == 'yes' and float(fcn[2]) <= 1e-4 and float(fcn[3]) == 1.0
    torch_ms, onnx_ms, ratio = float(fcn[4]), float(fcn[5]), float(fcn[6].rstrip(' |'))
    assert torch_ms > 0 and onnx_ms > 0 and ratio == pytest.approx(onnx_ms / torch_ms, abs=0.02)
    assert beit[1].startswith('no: ') and "test_cfg.mode='slide'" in beit[1]
