"""tools/analysis/val_history.py and mmseg_ext.evaluation.val_history: the validations of a
run read back from a scalars.json written here by hand."""
import json

import pytest
from conftest import run_tool

LINES = [
    {'lr': 0.003, 'loss': 1.2, 'step': 50},
    {'mDice': 0.4, 'Dice.lung': 0.8, 'Dice.clavicle': 0.0, 'step': 100},
    {'lr': 0.002, 'loss': 0.6, 'step': 150},
    {'mDice': 0.7, 'Dice.lung': 0.9, 'Dice.clavicle': 0.5, 'step': 200},
]


def _work_dir(tmp_path, lines=LINES, stamp='20261205_120000'):
    vis = tmp_path / 'w' / stamp / 'vis_data'
    vis.mkdir(parents=True)
    (vis / 'scalars.json').write_text(''.join(json.dumps(x) + '\n' for x in lines))
    return tmp_path / 'w'


def test_every_validation_in_order_with_its_step(tmp_path):
    from mmseg_ext.evaluation.val_history import validation_history
    work = _work_dir(tmp_path)
    _work_dir(tmp_path, LINES[:2], stamp='20261205_110000')  # an older run: not read
    history = validation_history(str(work))
    assert [(v.step, v.values) for v in history] == [
        (100, {'lung': 0.8, 'clavicle': 0.0}), (200, {'lung': 0.9, 'clavicle': 0.5})]


def test_the_table_has_a_row_per_validation(tmp_path):
    proc = run_tool('tools/analysis/val_history.py', str(_work_dir(tmp_path)))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        '| iteration | lung | clavicle |', '|---|---|---|',
        '| 100 | 0.800 | 0.000 |', '| 200 | 0.900 | 0.500 |']


@pytest.mark.parametrize('lines,words', [
    ([{'loss': 1.0, 'step': 10}], 'no validation with Dice.<class> values'),
    ([{'Dice.lung': 'high', 'step': 10}], "'Dice.lung' is 'high', not a number"),
    ([{'Dice.lung': 0.5}], 'without an integer step'),
    # the values a chart refuses (one rule, evaluation/metric_keys.py)
    ([{'Dice.lung': -40, 'step': 10}], "'Dice.lung' is -40: a metric is a percentage"),
    ([{'Dice.lung': 1e300, 'step': 10}], "'Dice.lung' is 1e+300: a metric is a percentage"),
    ([{'Dice.lung': True, 'step': 10}], "'Dice.lung' is True, not a number"),
    ([{'Dice.': 0.5, 'step': 10}], "the key 'Dice.' names no class"),
])
def test_bad_scalars_files_are_one_line(tmp_path, lines, words):
    proc = run_tool('tools/analysis/val_history.py', str(_work_dir(tmp_path, lines)))
    assert proc.returncode == 1
    errors = proc.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith('error: ') and words in errors[0]


def test_a_value_off_the_runs_scale_and_a_negative_step_are_refused(tmp_path):
    """Round U, U-11: a Dice of 5.0 among fractions, and a validation at step -98, were
    printed as table rows. The record's own mean tells a value off its scale; an early
    run of percentages (one class above 1) still reads as it is."""
    lines = [{'mDice': 0.3067, 'Dice.lung': 0.8, 'Dice.clavicle': 0.02, 'Dice.heart': 0.1,
              'step': 100},
             {'mDice': 0.7, 'Dice.lung': 0.9, 'Dice.clavicle': 5.0, 'Dice.heart': 0.3,
              'step': 200}]
    work = _work_dir(tmp_path, lines)
    scalars = work / '20261205_120000' / 'vis_data' / 'scalars.json'
    proc = run_tool('tools/analysis/val_history.py', str(work))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f'error: {scalars}:2: the 3 Dice values average 2.067, but the record logs mDice '
        '0.7: Dice.clavicle 5 is off the record\'s scale or edited']
    lines[1] = dict(lines[0], step=-98)
    proc = run_tool('tools/analysis/val_history.py', str(_work_dir(tmp_path / 'n', lines)))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'n' / 'w' / '20261205_120000' / 'vis_data' / 'scalars.json'}"
        ':2: a validation at step -98: a step is the training iteration it followed, >= 0']
    # an early percentage run (one class above 1 %, as mmseg's IoU logs it, rounded to
    # 2 decimals) and a run without means read as they are
    percent = [{'mIoU': 0.76, 'IoU.a': 0.01, 'IoU.b': 3.03, 'IoU.c': 0.0, 'IoU.d': 0.0,
                'step': 0},
               {'mIoU': 25.0, 'IoU.a': 40.0, 'IoU.b': 60.0, 'IoU.c': 0.0, 'IoU.d': 0.0,
                'step': 10}]
    proc = run_tool('tools/analysis/val_history.py', str(_work_dir(tmp_path / 'p', percent)),
                    '--metric', 'IoU')
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[2:] == ['| 0 | 0.010 | 3.030 | 0.000 | 0.000 |',
                                            '| 10 | 40.000 | 60.000 | 0.000 | 0.000 |']
    no_means = [{'Dice.a': 0.5, 'Dice.b': 5.0, 'step': 0}]
    proc = run_tool('tools/analysis/val_history.py', str(_work_dir(tmp_path / 'q', no_means)))
    assert proc.returncode == 0, proc.stderr


def test_a_folder_without_a_run_is_named(tmp_path):
    proc = run_tool('tools/analysis/val_history.py', str(tmp_path))
    assert proc.returncode == 1 and 'no <timestamp>/vis_data/scalars.json' in proc.stderr


@pytest.mark.parametrize('record', [{'Dice.lung': -40}, {'Dice.lung': 1e300},
                                    {'Dice. ': 0.3}])
def test_history_and_chart_refuse_the_same_values(tmp_path, record):
    """One rule for a per-class metric: what the chart refuses, the history refuses."""
    from mmseg_ext.evaluation.val_history import validation_history
    from mmseg_ext.utils.errors import DataError
    from mmseg_ext.visualization.charts import read_class_metrics
    work = _work_dir(tmp_path, [dict(record, step=10)])
    with pytest.raises(DataError):
        validation_history(str(work))
    with pytest.raises(DataError):
        read_class_metrics(str(next(work.glob('*/vis_data/scalars.json'))))


def test_a_class_missing_from_the_last_validation_keeps_its_column(tmp_path):
    lines = [{'Dice.a': 50, 'Dice.b': 60, 'step': 10}, {'Dice.a': 70, 'step': 20}]
    proc = run_tool('tools/analysis/val_history.py', str(_work_dir(tmp_path, lines)))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ['| iteration | a | b |', '|---|---|---|',
                                        '| 10 | 50.000 | 60.000 |', '| 20 | 70.000 | - |']


def test_a_missing_path_and_a_fifo_are_named_as_what_they_are(tmp_path):
    import os
    proc = run_tool('tools/analysis/val_history.py', str(tmp_path / 'nothing'))
    assert proc.returncode == 1 and 'nothing: not found' in proc.stderr
    os.mkfifo(tmp_path / 'pipe')
    proc = run_tool('tools/analysis/val_history.py', str(tmp_path / 'pipe'))
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1 and 'FIFO' in lines[0], proc.stderr
