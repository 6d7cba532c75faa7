"""Error lines name flags that exist: every ``--flag`` in an ``error:`` line that a tool
printed during this test session (collected by ``conftest.run_tool``) is an option of
some tool's parser. Named ``zz`` so that it runs after the tests that produce the lines;
run alone it checks the lines of the tools it starts itself."""
import glob
import os.path as osp
import re

from conftest import ERROR_LINES, REPO, run_tool

FLAG = re.compile(r'(?<![\w-])(--[a-z][a-z0-9-]*)')
ADD_ARGUMENT = re.compile(r"add_argument\(\s*((?:'-[^']*',\s*)+)")


def tool_flags():
    """Every option string the tools' parsers define (read from their source, the
    benchmark and analysis scripts included: they print error lines too), with
    ``--help`` and ``--debug`` that every ToolParser has."""
    flags = {'--help', '--debug'}
    for path in glob.glob(osp.join(REPO, 'tools', '*.py')) + \
            glob.glob(osp.join(REPO, 'tools', '*', '*.py')) + \
            [osp.join(REPO, 'mmseg_ext', 'utils', 'cli.py')]:  # benchmarks, analysis too
        for group in ADD_ARGUMENT.findall(open(path).read()):
            flags.update(re.findall(r"'(--[^']+)'", group))
    return flags


#: a command the line suggests running (pip's flags are pip's, not a tool's)
SUGGESTED_COMMAND = re.compile(r'pip install .*$')


def unknown_flags(lines, known):
    return sorted({(tool, flag) for tool, line in lines
                   for flag in FLAG.findall(SUGGESTED_COMMAND.sub('', line))
                   if flag not in known})


def test_the_rule_catches_a_flag_no_parser_has():
    known = tool_flags()
    assert {'--force', '--out-size', '--cfg-options', '--thresholds'} <= known
    lines = [('tools/ensemble.py', 'error: --prob-dirs: ensembling needs two folders'),
             ('tools/x.py', 'error: a: exists (use --force to replace it)')]
    assert unknown_flags(lines, known) == [('tools/ensemble.py', '--prob-dirs')]
    fix = ('tools/train.py', 'error: x.py: needs ops. Fix: pip install --no-deps onedl-mmcv')
    assert unknown_flags([fix], known) == []


def test_error_lines_of_this_session_name_existing_flags(tmp_path):
    # a few lines of our own, so the check never runs on nothing
    run_tool('tools/ensemble.py', str(tmp_path / 'a'), '--out-dir', str(tmp_path / 'o'))
    run_tool('tools/make_submission.py', '--format', 'handbone', str(tmp_path),
             '--out', str(tmp_path / 's.csv'), '--threshold', '0.5')
    assert ERROR_LINES
    assert unknown_flags(ERROR_LINES, tool_flags()) == []
