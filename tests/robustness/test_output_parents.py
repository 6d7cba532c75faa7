"""An output whose folder cannot be made because something on the way is not a folder
names that thing (before: ``<parent>: cannot write the output (File exists)``)."""
import os

import pytest

from .test_bad_inputs import assert_refused, run_main, world  # noqa: F401  (fixture)

BLOCKERS = {
    'regular file': (lambda p: open(p, 'w').close(), 'a regular file, not a folder'),
    'link loop': (lambda p: os.symlink(p, p), 'a symbolic link that loops, not a folder'),
    'fifo': (lambda p: os.mkfifo(p), 'a FIFO'),
}


@pytest.mark.parametrize('kind', BLOCKERS)
def test_a_file_on_the_way_to_the_output_is_named(world, tmp_path, kind):  # noqa: F811
    make, problem = BLOCKERS[kind]
    blocker = str(tmp_path / 'b')
    make(blocker)
    out = f'{blocker}/sub/x.csv'
    code, lines = run_main('make_submission.py', [
        world['probs'], '--format', 'handbone', '--out', out, '--no-progress'])
    assert_refused(code, lines, 1, f'error: {blocker}: {problem}')
    assert f'on the way to the output {out}' in lines[-1]
    assert os.listdir(tmp_path) == ['b']
