"""The bad-input harness, class "exceptions": interpreter flags that hide modules.

``python -S`` turns off site-packages, where the environment's numpy, torch and mmseg
are: a tool then says so in one line (exit 2) instead of a ``ModuleNotFoundError``
traceback (``tools/_bootstrap.py``). ``python -I`` keeps site-packages but leaves the
tool's own folder off ``sys.path``: every tool must still start.
"""
import glob
import os.path as osp
import re
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = sorted(osp.basename(p) for p in glob.glob(osp.join(REPO, 'tools', '*.py'))
               if not osp.basename(p).startswith('_'))
NO_SITE = re.compile(r'^error: [\w.]+: cannot be imported: python -S turns off '
                     r'site-packages \(run the tool without -S\)$')


def run(*argv):
    return subprocess.run([sys.executable, *map(str, argv)], cwd=REPO, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize('argv', [
    ['tools/make_submission.py', 'probs', '--format', 'handbone', '--out', 'x.csv'],
    ['tools/ensemble.py', 'a', 'b', '--out-dir', 'x'],
    ['tools/visualize.py', 'overlay', 'probs', '--img-dir', 'i', '--out-dir', 'x'],
    ['tools/inference.py', 'c.py', 'c.pth', '--img-dir', 'i', '--out-dir', 'x'],
    ['tools/train.py', 'c.py'],
], ids=lambda a: a[0][len('tools/'):])
def test_python_dash_S_names_the_missing_module_in_one_line(argv, tmp_path):
    proc = run('-S', *argv[:1], *[a if a.startswith('-') or a in ('overlay', 'handbone')
                                   else str(tmp_path / a) for a in argv[1:]])
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and NO_SITE.match(lines[0]), proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_debug_keeps_the_traceback_of_a_missing_module(tmp_path):
    proc = run('-S', 'tools/make_submission.py', tmp_path / 'p', '--format', 'handbone',
               '--out', tmp_path / 'x.csv', '--debug')
    assert proc.returncode == 1 and 'Traceback' in proc.stderr
    assert 'ModuleNotFoundError' in proc.stderr


@pytest.mark.parametrize('tool', TOOLS)
def test_python_dash_I_starts_every_tool(tool):
    proc = run('-I', osp.join('tools', tool), '--help')
    assert proc.returncode == 0, proc.stderr[-500:]
    assert proc.stdout.startswith('usage:')
