"""Round T of bad inputs (issue 28): ``tools/test.py``'s drawings and the stop signals.

Each test names the finding of the round it closes (T-1 ... T-6; the report's
reproductions ran the real tools on tiny data).
"""
import os
import os.path as osp

import pytest

from mmseg_ext.utils.errors import InvalidArgumentError, OutputError

from .cv_fakes import SHAPES, shapes_world
from .test_bad_inputs import assert_refused, run_main
from .test_ownership import cli_options


@pytest.fixture(scope='module')
def shapes(tmp_path_factory):
    return shapes_world(tmp_path_factory, 'round_t')


def test_show_without_a_display_is_refused_before_the_test(shapes, tmp_path, monkeypatch):
    """T-2: ``--show --wait-time 0`` on a machine without a display waited forever for a
    key press in a window that never opened."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv('DISPLAY', raising=False)
    monkeypatch.delenv('WAYLAND_DISPLAY', raising=False)
    argv = [SHAPES, shapes['ckpt'], '--work-dir', 'wd', *cli_options(shapes['root'])]
    code, lines = run_main('test.py', [*argv, '--show', '--wait-time', '0'])
    assert_refused(code, lines, 2, 'error: --show: no display to show the predictions on '
                   '(neither DISPLAY nor WAYLAND_DISPLAY is set)')
    assert os.listdir(tmp_path) == []  # refused before the work dir was made
    # the same check for a library caller, and a display lets it through
    from mmseg_ext.training.runner import check_display
    with pytest.raises(InvalidArgumentError, match='^show: no display'):
        check_display()
    monkeypatch.setenv('WAYLAND_DISPLAY', 'wayland-0')
    check_display()


def test_show_and_show_dir_together_are_refused(shapes, tmp_path, monkeypatch):
    """T-3: with both, mmseg's hook only shows each picture, and the published folder
    of drawings held none (exit 0)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv('DISPLAY', ':0')
    argv = [SHAPES, shapes['ckpt'], '--work-dir', 'wd', *cli_options(shapes['root'])]
    code, lines = run_main('test.py', [*argv, '--show', '--show-dir', 'drawn'])
    assert_refused(code, lines, 2, 'error: --show: does not go with --show-dir')
    assert os.listdir(tmp_path) == []
    from mmseg_ext.training.runner import test_config
    with pytest.raises(InvalidArgumentError, match='^show_dir: does not go with show'):
        test_config(SHAPES, shapes['ckpt'], show=True, show_dir=str(tmp_path / 'd'))


def test_a_data_root_that_is_not_there_is_no_input(shapes, tmp_path, monkeypatch):
    """T-4: ``test.py --show-dir .`` in an empty folder was refused as "holding" the
    config's default training root, which the test does not read and which did not
    exist there. A root that exists is still an input."""
    from mmseg_ext.utils.path_roles import config_data_inputs
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'here').mkdir()
    options = {'train_dataloader.dataset.data_root': 'not_there',
               'val_dataloader.dataset.data_root': 'here',
               'test_dataloader.dataset.data_root': shapes['root']}
    assert config_data_inputs(SHAPES, options) == ['here', shapes['root']]
    # the report's command: only the test root given, the default training root absent
    empty = tmp_path / 'empty'
    empty.mkdir()
    monkeypatch.chdir(empty)
    code, lines = run_main('test.py', [
        SHAPES, shapes['ckpt'], '--work-dir', str(tmp_path / 'wd'), '--show-dir', '.',
        '--cfg-options', f'test_dataloader.dataset.data_root={shapes["root"]}',
        'model.data_preprocessor.size=(32,40)', 'log_level=WARNING'])
    assert code == 0, lines
    drawn = [p for p in empty.rglob('*.png')]
    assert len(drawn) == len(os.listdir(osp.join(shapes['root'], 'images', 'val')))


def test_the_force_hint_only_from_a_tool_that_has_force(tmp_path):
    """T-5: a folder that appeared at ``--show-dir`` during a test was refused with "use
    --force to replace it", an option test.py does not have."""
    import contextlib
    import io

    from mmseg_ext.utils.cli import ToolParser, cli_main
    from mmseg_ext.utils.errors import OutputExistsError

    def tool_with(*options):
        @cli_main
        def main(argv):
            parser = ToolParser()
            parser.add_argument('--out', role='output')
            for option in options:
                parser.add_argument(option, action='store_true')
            args = parser.parse_args(argv)
            raise OutputExistsError(args.out)
        return main

    for options, expected in (((), f'error: {tmp_path}/x: already exists; not replacing '
                                   'it (remove it, or choose another output)'),
                              (('--force',), f'error: {tmp_path}/x: already exists (use '
                                             '--force to replace it)')):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as stop:
            tool_with(*options)(['--out', str(tmp_path / 'x')])
        assert stop.value.code == 1
        assert err.getvalue().strip() == expected


def test_a_link_at_a_new_folder_output_is_named_as_one(tmp_path):
    """T-6: a ``--show-dir`` (or ``--out``) that is a link, to an empty folder or
    dangling, was refused as "exists and is not a folder"."""
    from mmseg_ext.training.runner import check_new_folder
    (tmp_path / 'empty').mkdir()
    for name, target in (('to_empty', tmp_path / 'empty'), ('dangling', tmp_path / 'gone')):
        os.symlink(target, tmp_path / name)
        with pytest.raises(OutputError, match=f'^{tmp_path / name}: is a symbolic link '
                           rf'\(to {target}\), not a folder'):
            check_new_folder(str(tmp_path / name))
    (tmp_path / 'file').write_text('mine\n')
    with pytest.raises(OutputError, match='exists and is not a folder'):
        check_new_folder(str(tmp_path / 'file'))
    assert (tmp_path / 'file').read_text() == 'mine\n'
