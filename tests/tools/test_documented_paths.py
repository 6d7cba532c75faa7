"""Documented commands that no other test ran: each runs here on tiny data, and its
output is checked against what is computed independently in the test.

tests/tools/test_documented_commands.py points its table at these tests.
"""
import glob
import os
import os.path as osp
import stat
import subprocess
import sys

import pytest
import torch
from conftest import CONFIG, REPO, data_options, run_tool

from mmseg_ext.utils.class_names import HAND_BONE_CLASSES


def _write_csv(path, special, image='i.png'):
    """A hand-bone submission CSV: one row per class, RLE from ``special`` or empty."""
    path.write_text('image_name,class,rle\n' + ''.join(
        f'{image},{c},{special.get(c, "")}\n' for c in HAND_BONE_CLASSES))
    return str(path)


def _votes(rles, length, min_votes):
    """The pixels (1-based) at least ``min_votes`` of the RLE strings cover, as RLE."""
    counts = [0] * (length + 1)
    for rle in rles:
        numbers = [int(v) for v in rle.split()]
        for start, run in zip(numbers[::2], numbers[1::2]):
            for pixel in range(start, start + run):
                counts[pixel] += 1
    kept = [p for p in range(1, length + 1) if counts[p] >= min_votes]
    runs = []
    for p in kept:
        if runs and runs[-1][0] + runs[-1][1] == p:
            runs[-1][1] += 1
        else:
            runs.append([p, 1])
    return ' '.join(f'{s} {n}' for s, n in runs)


def test_ensemble_csv_hard_vote(tmp_path):
    """docs/submission.md: ``tools/ensemble.py --csv a.csv b.csv c.csv --out vote.csv
    --min-votes 2`` (and ``--force`` to replace the vote)."""
    finger = {'a': '1 4 8 2', 'b': '3 4', 'c': '4 5'}
    paths = [_write_csv(tmp_path / f'{n}.csv', {'finger-1': r, 'Ulna': '20 3'})
             for n, r in finger.items()]
    out = tmp_path / 'vote.csv'
    proc = run_tool('tools/ensemble.py', '--csv', *paths, '--out', str(out),
                    '--min-votes', '2', '--no-progress')
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {tuple(line.split(',')[:2]): line.split(',')[2]
            for line in out.read_text().splitlines()[1:]}
    assert len(rows) == len(HAND_BONE_CLASSES)
    assert rows['i.png', 'finger-1'] == _votes(finger.values(), 30, 2) == '3 4 8 1'
    assert rows['i.png', 'Ulna'] == '20 3'
    assert all(v == '' for (_, c), v in rows.items() if c not in ('finger-1', 'Ulna'))
    # a second run onto the vote is refused; --force replaces it with the new count
    again = run_tool('tools/ensemble.py', '--csv', *paths, '--out', str(out),
                     '--min-votes', '3', '--no-progress')
    assert again.returncode == 1 and 'already exists' in again.stderr
    forced = run_tool('tools/ensemble.py', '--csv', *paths, '--out', str(out),
                      '--min-votes', '3', '--force', '--no-progress')
    assert forced.returncode == 0, forced.stderr[-2000:]
    line = next(x for x in out.read_text().splitlines() if ',finger-1,' in x)
    assert line == f'i.png,finger-1,{_votes(finger.values(), 30, 3)}' == 'i.png,finger-1,4 1'


def test_test_py_show_dir_out_and_tta(tmp_path, shapes_root, fast_cpu):
    """docs/training.md: ``tools/test.py CONFIG CKPT --work-dir DIR --show-dir DIR --tta
    --out DIR``: metrics, one painted picture per test image, the predictions as files."""
    from mmseg_ext.config.loading import load_config
    from mmseg_ext.config.model import build_bare_model
    torch.manual_seed(0)
    ckpt = str(tmp_path / 'm.pth')
    torch.save({'state_dict': build_bare_model(load_config(CONFIG)).state_dict()}, ckpt)
    show, out = tmp_path / 'show', tmp_path / 'out'
    proc = run_tool('tools/test.py', CONFIG, ckpt, '--work-dir', str(tmp_path / 'w'),
                    '--show-dir', str(show), '--tta', '--out', str(out),
                    *data_options(shapes_root, 2), env={'OMP_NUM_THREADS': '1'})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert any(line.startswith('test metrics:') for line in proc.stdout.splitlines())
    images = sorted(osp.basename(p) for p in glob.glob(f'{shapes_root}/images/val/*.png'))
    # mmseg names the painted pictures after the images ('test_0000.png_1.png')
    painted = [osp.basename(p) for p in glob.glob(f'{show}/**/*.png', recursive=True)]
    assert len(painted) == len(images)
    assert all(sum(name in p for p in painted) == 1 for name in images), painted
    written = [osp.basename(p) for p in glob.glob(f'{out}/**/*', recursive=True)
               if osp.isfile(p) and osp.basename(p) != 'test_predictions.txt']
    assert len(written) == len(images), written  # and the record naming the run
    assert open(out / 'test_predictions.txt').read() == (f'config: {CONFIG}\n'
                                                         f'checkpoint: {ckpt}\n')
    assert all(sum(name[:-4] in w for w in written) == 1 for name in images), written


# --- tools/install.sh and tools/quickstart.sh with pip faked ----------------------------

_FAKE_PYTHON = '''#!/usr/bin/env bash
# pip and the demo are logged, not run; everything else is the real interpreter
if [ "$1" = -m ] && [ "$2" = pip ]; then
    echo "pip ${{*:3}}" >> {log}
    [ "$3" = show ] && exit 1   # no distribution of the other stack is installed
    exit 0
fi
case "$1" in tools/demo.py) echo "demo ${{*:2}}" >> {log}; exit 0 ;; esac
exec {python} "$@"
'''


def _fake_python(path, log):
    """An interpreter at ``path`` that logs pip and demo calls into ``log``."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(_FAKE_PYTHON.format(log=log, python=sys.executable))
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
    return path


def _bash(script, env, tmp_path):
    full = {**os.environ, 'MMCV_CACHE': str(tmp_path / 'mmcv'), **env}
    return subprocess.run(['bash', script], cwd=REPO, env=full, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.slow
def test_install_keeps_the_torch_of_the_active_environment(tmp_path):
    """README.md / docs/install.md: ``TORCH=keep VENV=none bash tools/install.sh``
    installs into the interpreter given (``$PYTHON``) as is: no virtual environment,
    no torch; requirements, the default stack and mmseg_ext itself; then the check."""
    log = tmp_path / 'pip.log'
    python = _fake_python(str(tmp_path / 'bin' / 'python'), log)
    proc = _bash('tools/install.sh', {'TORCH': 'keep', 'VENV': 'none', 'PYTHON': python},
                 tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    calls = log.read_text().splitlines()
    installs = [c for c in calls if c.startswith('pip install')]
    assert not any('torch==' in c or c.split()[-1] == 'torch' for c in installs)
    assert any('-r requirements/runtime.txt -r requirements/tests.txt '
               '-r requirements/onedl.txt' in c for c in installs)
    assert installs[-1].endswith('-e .')
    assert f'python: {sys.version.split()[0]}' in proc.stdout
    assert '[install] ok: mmseg_ext' in proc.stdout
    assert not osp.exists(osp.join(REPO, 'none'))            # VENV=none made no venv


@pytest.mark.slow
def test_quickstart_installs_then_runs_the_demo(tmp_path):
    """README.md: ``bash tools/quickstart.sh`` is ``bash tools/install.sh`` into the
    virtual environment, then the demo with that environment's interpreter."""
    log = tmp_path / 'pip.log'
    venv = tmp_path / 'venv'
    _fake_python(str(venv / 'bin' / 'python'), log)
    proc = _bash('tools/quickstart.sh', {'VENV': str(venv), 'TORCH': 'keep'}, tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    calls = log.read_text().splitlines()
    assert calls[-1] == 'demo '                                # the demo, last
    assert calls[-2].startswith('pip install') and calls[-2].endswith('-e .')
    assert '[install] ok: mmseg_ext' in proc.stdout


@pytest.mark.slow
def test_quickstart_with_venv_none_runs_the_demo_with_python(tmp_path):
    """``VENV=none`` (install.sh's "use $PYTHON as is") ran ``none/bin/python`` and
    ended in a shell error after a good install (round H): the demo runs with
    ``$PYTHON`` too."""
    log = tmp_path / 'pip.log'
    python = _fake_python(str(tmp_path / 'bin' / 'python'), log)
    proc = _bash('tools/quickstart.sh', {'VENV': 'none', 'PYTHON': python, 'TORCH': 'keep'},
                 tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert log.read_text().splitlines()[-1] == 'demo '
    assert not osp.exists(osp.join(REPO, 'none'))


def test_inference_img_list_tta_and_out_size(tmp_path, shapes_root, fast_cpu):
    """docs/submission.md: ``tools/inference.py CONFIG CKPT --img-dir DIR --img-list FILE
    --out-dir PROBS --tta`` (and ``--out-size H,W``): only the listed images, stored at
    the size asked for, each a probability map over the classes."""
    import json

    from mmseg_ext.config.loading import load_config
    from mmseg_ext.config.model import build_bare_model
    from mmseg_ext.io.probs import ProbFolder
    torch.manual_seed(0)
    ckpt = str(tmp_path / 'm.pth')
    torch.save({'state_dict': build_bare_model(load_config(CONFIG)).state_dict()}, ckpt)
    img_dir = f'{shapes_root}/images/val'
    stems = sorted(osp.basename(p)[:-4] for p in glob.glob(f'{img_dir}/*.png'))[:2]
    (tmp_path / 'list.txt').write_text(''.join(f'{s}\n' for s in stems))
    out = tmp_path / 'probs'
    proc = run_tool('tools/inference.py', CONFIG, ckpt, '--img-dir', img_dir, '--img-list',
                    str(tmp_path / 'list.txt'), '--out-dir', str(out), '--tta',
                    '--out-size', '16,20', '--no-progress', '--cfg-options',
                    f'test_dataloader.dataset.data_root={shapes_root}',
                    env={'OMP_NUM_THREADS': '1'})
    assert proc.returncode == 0, proc.stderr[-3000:]
    index = json.load(open(out / 'index.json'))
    assert sorted(e['key'] for e in index['images']) == stems
    folder = ProbFolder(str(out))
    for key in stems:
        probs, _ = folder.read(key)
        assert probs.shape[1:] == (16, 20)
