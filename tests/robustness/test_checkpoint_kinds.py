"""A checkpoint path that is not a regular file is named as what it is (before: "checkpoint
file not found" for a folder, a FIFO, a dangling link and a link loop alike)."""
import os

import pytest

from .cv_fakes import SHAPES
from .test_bad_inputs import assert_refused, run_main
from .test_ownership import cli_options

KINDS = {
    'folder': (lambda p: os.mkdir(p), 'not a regular file (a folder)'),
    'fifo': (lambda p: os.mkfifo(p), 'not a regular file (a FIFO'),
    'dangling link': (lambda p: os.symlink(p + '.gone', p), 'a symbolic link to nothing'),
    'link loop': (lambda p: os.symlink(p, p), 'a symbolic link that loops'),
}


@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('tool', ['test.py', 'train.py load_from', 'inference.py'])
def test_a_checkpoint_that_is_not_a_file_is_named(tmp_path, kind, tool, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make, problem = KINDS[kind]
    ckpt = str(tmp_path / 'model.pth')
    make(ckpt)
    options = cli_options(str(tmp_path / 'data'))
    if tool == 'test.py':
        argv = [SHAPES, ckpt, '--work-dir', 'wd', *options]
    elif tool == 'inference.py':
        os.makedirs('imgs')
        argv = [SHAPES, ckpt, '--img-dir', 'imgs', '--out-dir', 'out', '--no-progress']
    else:
        argv = [SHAPES, '--work-dir', 'wd', *options, f'load_from={ckpt}']
    code, lines = run_main(tool.split()[0], argv)
    assert_refused(code, lines, 1, f'error: {ckpt}: {problem}')
    assert sorted(os.listdir(tmp_path)) == sorted(['model.pth'] + (
        ['imgs'] if tool == 'inference.py' else []))  # no work dir or output made
