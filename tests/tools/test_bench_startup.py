"""tools/benchmark/bench_startup.py (the README's start-up table): one row per command,
and the model-free tools' rows say they loaded neither torch nor mmseg while the torch
reference row says it did (read from each child's ``-X importtime`` output)."""
from conftest import call_tool


def test_bench_startup_rows_and_import_columns(tmp_path):
    proc = call_tool('tools/benchmark/bench_startup.py', '--repeat', '1', '--tools',
                     'make_submission', 'kfold', '--work-dir', str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {line[:42].strip(): line[42:].split() for line in proc.stdout.splitlines()[1:]}
    assert list(rows) == ['python -c "import numpy"', 'python -c "import torch"',
                          'make_submission.py --help', 'make_submission.py (tiny run)',
                          'kfold.py --help', 'kfold.py (tiny run)']
    assert rows['python -c "import torch"'][1:] == ['yes', 'no']
    for name, (cpu, torch_seen, mmseg_seen) in rows.items():
        assert float(cpu) > 0
        if name.startswith(('make_submission', 'kfold')):
            assert (torch_seen, mmseg_seen) == ('no', 'no'), name
