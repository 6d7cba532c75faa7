"""Every command README.md and docs/*.md advertise is run by a named test.

The fenced code blocks of the README and of every page under docs/ are read for command
lines that run a project script (``python tools/...``, ``bash tools/...``, an
environment-prefixed form, ``.venv/bin/python -m pytest``); backslash continuations are
joined. Each command is reduced to a key: the page, its environment settings, the
script, its subcommand and the set of its flags (placeholder values such as CONFIG,
CKPT, DIR, N and the brackets around optional parts do not count). :data:`COVERAGE`
names, for every key, the tests that run that script with those flags; this file checks,
without importing or running them, that each test exists and that its source (the test
function, its decorators, and the module-level helpers, fixtures and constants it refers
to, followed by name) mentions the script and every flag and environment variable of
the command. A few commands cannot run in CI at all: :data:`EXEMPT` says why.

Also here: docs/README.md links every page of docs/, and each page opens with a title
and a paragraph that says what it is for.
"""
import ast
import functools
import glob
import os.path as osp
import re
import shlex
from dataclasses import dataclass

import pytest
from conftest import REPO

#: The pages whose fenced code blocks are read.
DOC_PAGES = ('README.md', *sorted(
    osp.relpath(p, REPO) for p in glob.glob(osp.join(REPO, 'docs', '*.md'))))

#: Environment variables that change nothing a test could observe; left out of keys.
IGNORED_ENV = {
    'OMP_NUM_THREADS': 'the thread count of a benchmark run; no behaviour of the tool',
}

_FENCE = re.compile(r'^\s*(```|~~~)')
_ASSIGNMENT = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*=')
_PYTHON = re.compile(r'^(?:\S*/)?python[0-9.]*$')
_SEPARATORS = {'&&', '||', ';', '|'}
_SCRIPT = re.compile(r'^(?:tools/\S+\.(?:py|sh)|\.ci/\w+)$')
_PROGRAM = re.compile(r'^[\w./+-]+$')  # a command's first word; not 'error:' or prose


@dataclass(frozen=True)
class DocCommand:
    """One command line of a page: where it is, its text, and what it reduces to."""
    doc: str
    line: int
    text: str
    env: tuple      # ('NAME=value', ...) as written, values with '/' replaced by '...'
    script: str     # 'tools/cv.py', 'tools/install.sh', '.ci/run' or 'pytest'
    subcommand: str  # the tool's subcommand ('' when it has none)
    flags: tuple    # sorted, without values

    @property
    def key(self):
        """``'<page>: [ENV=value ...] <script> [subcommand] [flags...]'``."""
        return f'{self.doc}: ' + ' '.join(
            [*self.env, self.script, *([self.subcommand] if self.subcommand else []),
             *self.flags])

    @property
    def env_names(self):
        return tuple(a.split('=', 1)[0] for a in self.env)

    @property
    def where(self):
        return f'{self.doc}:{self.line}: {self.text}'


def command_lines(text):
    """``(line number, command text)`` for every line of the fenced code blocks in
    ``text``, with backslash-continued lines joined onto the first one."""
    lines = text.splitlines()
    inside, i = False, 0
    while i < len(lines):
        if _FENCE.match(lines[i]):
            inside = not inside
            i += 1
            continue
        if inside:
            start, line = i, lines[i]
            while line.rstrip().endswith('\\') and i + 1 < len(lines):
                i += 1
                line = line.rstrip()[:-1] + ' ' + lines[i].strip()
            yield start + 1, line.strip()
        i += 1


@functools.cache
def subcommands(script):
    """The subcommand names a ``tools/*.py`` script's parser accepts (its
    ``add_parser('name', ...)`` calls), read with ast."""
    path = osp.join(REPO, script)
    if not script.endswith('.py') or not osp.isfile(path):
        return frozenset()
    with open(path, encoding='utf-8') as f:
        tree = ast.parse(f.read())
    return frozenset(
        node.args[0].value for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        and node.func.attr == 'add_parser' and node.args
        and isinstance(node.args[0], ast.Constant))


def _split_commands(line):
    """The shell words of ``line`` (comments dropped), split at ``&&``/``;``/``|``."""
    text = line[2:] if line.startswith('$ ') else line
    try:
        words = shlex.split(text, comments=True)
    except ValueError:  # an unbalanced quote: prose, not a command
        return []
    first = next((w for w in words if not _ASSIGNMENT.match(w)), '')
    if not _PROGRAM.match(first):  # an output line such as 'error: ... Fix: bash ...'
        return []
    commands, current = [], []
    for word in words:
        if word in _SEPARATORS:
            commands.append(current)
            current = []
        else:
            current.append(word)
    return [c for c in commands + [current] if c]


def _script_and_args(words):
    """``(script, arguments)`` when ``words`` (environment stripped) runs a project
    script or the test suite, else ``None``."""
    if not words:
        return None
    program, rest = words[0], words[1:]
    if program in ('bash', 'sh') or _PYTHON.match(program):
        if _PYTHON.match(program) and rest[:2] == ['-m', 'pytest']:
            return 'pytest', rest[2:]
        if rest and not rest[0].startswith('-'):
            program, rest = rest[0], rest[1:]
        else:
            return None
    elif program == 'torchrun':
        scripts = [i for i, w in enumerate(rest) if w.endswith('.py')]
        if not scripts:
            return None
        program, rest = rest[scripts[0]], rest[scripts[0] + 1:]
    program = program[2:] if program.startswith('./') else program
    if _SCRIPT.match(program):
        return program, rest
    return None


def parse_command(doc, line, text):
    """The :class:`DocCommand`\\ s of one command line (several where ``&&`` joins them)."""
    found = []
    for words in _split_commands(text):
        env = []
        while words and _ASSIGNMENT.match(words[0]):
            name, value = words.pop(0).split('=', 1)
            if name not in IGNORED_ENV:
                env.append(f'{name}={"..." if "/" in value else value}')
        target = _script_and_args(words)
        if target is None:
            continue
        script, args = target
        args = [a.strip('[]') for a in args]
        flags = sorted({a.split('=', 1)[0] for a in args
                        if re.match(r'^--?[A-Za-z]', a)})
        positional = [a for a in args if a and not a.startswith('-')]
        subs = subcommands(script)
        subcommand = positional[0] if positional and positional[0] in subs else ''
        found.append(DocCommand(doc, line, text, tuple(sorted(env)), script, subcommand,
                                tuple(flags)))
    return found


@functools.cache
def documented_commands():
    """Every project command of :data:`DOC_PAGES`, in page and line order."""
    commands = []
    for doc in DOC_PAGES:
        with open(osp.join(REPO, doc), encoding='utf-8') as f:
            text = f.read()
        for line, command in command_lines(text):
            commands.extend(parse_command(doc, line, command))
    return tuple(commands)


# --- the test sources -----------------------------------------------------------------

@functools.cache
def _module(path):
    """``(source, tree, {top-level name: node})`` of a test file."""
    with open(osp.join(REPO, path), encoding='utf-8') as f:
        source = f.read()
    tree = ast.parse(source)
    names = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names[node.name] = node
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            helper = _helper_module(path, node.module)
            if helper is not None:  # conftest, probs_helpers, ...: follow the name there
                for alias in node.names:
                    names[alias.asname or alias.name] = (helper, alias.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        names[name.id] = node
    return source, tree, names


def _helper_module(path, module):
    """The file under tests/ that ``from <module> import ...`` in test file ``path``
    reads (the test's own folder first, as pytest's rootdir-relative imports do)."""
    relative = module.replace('.', '/') + '.py'
    for folder in (osp.dirname(path), 'tests'):
        candidate = osp.join(folder, relative)
        if osp.isfile(osp.join(REPO, candidate)):
            return candidate
    return None


def _segment(source, node):
    """The source of ``node`` including its decorators."""
    first = min([node.lineno] + [d.lineno for d in getattr(node, 'decorator_list', [])])
    lines = source.splitlines()
    return '\n'.join(lines[first - 1:node.end_lineno])


def _find_test(tree, parts):
    """The function node a node id's ``Class::function`` parts name, or ``None``."""
    body, node = tree.body, None
    for part in parts:
        node = next((n for n in body if isinstance(
            n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.name == part),
            None)
        if node is None:
            return None
        body = node.body
    return node if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else None


def source_of_test(node_id):
    """The source that runs for test ``node_id`` (``path::[Class::]name[params]``):
    the test with its decorators plus, followed by name references, the module-level
    functions, classes, fixtures and constants of its file; ``None`` when the file or the
    test does not exist. ``.ci/run`` stands for CI itself: its whole text."""
    path, _, rest = node_id.partition('::')
    if not osp.isfile(osp.join(REPO, path)):
        return None
    if not rest:
        if path.endswith('.py'):
            return None
        with open(osp.join(REPO, path), encoding='utf-8') as f:
            return f.read()
    source, tree, names = _module(path)
    parts = re.sub(r'\[.*\]$', '', rest).split('::')
    node = _find_test(tree, parts)
    if node is None:
        return None
    todo = [(path, node)]
    if len(parts) > 1:  # a method: its class (fixtures, helpers) comes with it
        todo.append((path, _find_test(tree, parts[:1]) or next(
            n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == parts[0])))
    seen, pieces = set(), []
    while todo:
        file, current = todo.pop()
        if (file, id(current)) in seen:
            continue
        seen.add((file, id(current)))
        source, _, names = _module(file)
        pieces.append(_segment(source, current))
        for ref in ast.walk(current):
            name = ref.id if isinstance(ref, ast.Name) else (
                ref.arg if isinstance(ref, ast.arg) else None)
            target = names.get(name)
            if isinstance(target, tuple):  # imported from a helper module of tests/
                target = _module(target[0])[2].get(target[1]) and target
                if target:
                    todo.append((target[0], _module(target[0])[2][target[1]]))
            elif target is not None:
                todo.append((file, target))
    return '\n'.join(pieces)


def mentions(source, word):
    """Whether ``word`` (a flag, a script name, a variable) appears in ``source`` as a
    whole word: ``--tta`` not inside ``--tta-views``, ``cv.py`` not inside
    ``bench_cv.py``."""
    return re.search(rf'(?<![\w.-]){re.escape(word)}(?![\w-])', source) is not None


# --- the table ------------------------------------------------------------------------

_CV = 'tests/workflows/test_cross_validation.py'
_PATHS = 'tests/tools/test_documented_paths.py'
_CI = '.ci/run'
_FLAGS = 'tests/tools/test_documented_flags.py'
_W2S = 'tests/workflows/test_weak_to_strong_self_training.py'
_TINY = 'tiny configs and data, 2-4 iterations'
_EXPORT = 'tests/export/test_export.py'
_EXPORT_TUNED = f'{_EXPORT}::test_tuned_postprocessing_goes_into_the_sidecar'

#: documented command key -> the tests that run it: ``tests`` (node ids; ``.ci/run`` for
#: what CI runs itself), ``note`` (how the test run is reduced), ``untested_flags``
#: ({flag: why no test passes it}).
COVERAGE = {
    'README.md: tools/quickstart.sh': dict(
        tests=[f'{_PATHS}::test_quickstart_installs_then_runs_the_demo'],
        note='pip and the demo faked; the demo itself: tests/tools/test_demo.py'),
    'README.md: pytest': dict(tests=[_CI]),
    'README.md: tools/install.sh': dict(tests=[_CI]),
    'README.md: TORCH=keep VENV=none tools/install.sh': dict(
        tests=[f'{_PATHS}::test_install_keeps_the_torch_of_the_active_environment'],
        note='pip faked (no network)'),
    'README.md: STACK=openmmlab tools/install.sh': dict(tests=[_CI]),
    'README.md: tools/get_weights.py': dict(
        tests=['tests/training/test_get_weights.py::'
               'test_beit_is_converted_and_loads_into_a_small_beit'],
        note='a small BEiT file served from a file:// URL'),
    'README.md: tools/train.py --cfg-options': dict(
        tests=['tests/tools/test_train_test_cli.py::test_train_save_test_resume',
               'tests/inference/test_inference.py::test_multilabel_segmentor_full_workflow'],
        note=_TINY),
    'README.md: tools/test.py --tta': dict(
        tests=['tests/inference/test_tta.py::test_tools_test_tta_runs_upernet_beit'],
        note='custom_configs/upernet_beit.py on tiny images'),
    'README.md: tools/cv.py --cfg-options --test-dir --tta --work-dir -k': dict(
        tests=[f'{_CV}::test_submission_of_the_fold_ensemble_is_checked_and_complete'],
        note='3 folds x 2 iterations on 64x64 synthetic hand bones'),
    'README.md: tools/export.py --out --thresholds': dict(tests=[_EXPORT_TUNED]),
    'README.md: tools/make_submission.py --format --img-dir --out --thresholds': dict(
        tests=[f'{_CV}::test_scores_agree_with_the_submission_writer_and_scorer']),
    'README.md: tools/inference.py --img-dir --out-dir --tta': dict(
        tests=[f'{_PATHS}::test_inference_img_list_tta_and_out_size'],
        note='a tiny untrained model'),
    'README.md: tools/make_submission.py --format --img-dir --out': dict(
        tests=['tests/submission/test_submission.py::test_cli_write_then_check']),
    'README.md: tools/make_submission.py --check --format --img-dir': dict(
        tests=['tests/submission/test_submission.py::test_cli_write_then_check']),
    'README.md: tools/cv.py --cfg-options --work-dir -k': dict(
        tests=[f'{_CV}::test_multiclass_folder_data_set_is_scored_by_iou'],
        note='2 folds x 2 iterations on tiny shapes instead of JSRT'),
    'docs/benchmarks.md: tools/benchmark/bench_models.py --markdown --repeat --size': dict(
        tests=['tests/tools/test_bench_models.py::test_rows_give_the_known_output_strides']),
    'docs/benchmarks.md: tools/benchmark/gpu_check.sh --tiny': dict(
        tests=['tests/tools/test_gpu_check.py::test_gpu_check_without_a_gpu_says_so',
               f'{_FLAGS}::test_gpu_check_sh_passes_tiny_to_the_script_from_the_repository'],
        note='the .sh wrapper runs without a GPU (its refusal names --tiny) and with --tiny '
             'under a recording $PYTHON (the real interpreter then prints the help); the '
             '--tiny run itself (about a minute here) calls gpu_check.py in process in '
             'tests/tools/test_gpu_check.py::test_gpu_check_tiny_mode'),
    'docs/coco_and_folders.md: tools/coco_to_masks.py --classes --draw-order --force '
    '--img-root --iscrowd --skip-bad': dict(
        tests=['tests/preparation/test_coco_to_masks.py::'
               'test_tool_writes_reference_masks_refuses_overwrite_and_is_idempotent',
               f'{_FLAGS}::test_coco_to_masks_draw_order_decides_which_class_wins_an_overlap',
               f'{_FLAGS}::test_coco_to_masks_iscrowd_paints_ignores_or_skips_crowd_regions',
               f'{_FLAGS}::test_coco_to_masks_skip_bad_skips_and_reports_the_bad_annotation',
               f'{_FLAGS}::test_coco_to_masks_img_root_reads_and_checks_the_images_there'],
        note='a hand-made 3-image COCO file; masks against pycocotools'),
    'docs/coco_and_folders.md: tools/kfold.py coco --force --group-regex --lists --out '
    '--seed -k': dict(
        tests=['tests/preparation/test_kfold.py::'
               'test_kfold_coco_writes_fold_files_the_dataset_reads',
               f'{_FLAGS}::test_kfold_coco_group_regex_keeps_a_group_in_one_fold']),
    'docs/coco_and_folders.md: tools/kfold.py folder --group-regex --img-suffix --labels '
    '--out -k': dict(
        tests=['tests/preparation/test_kfold.py::test_kfold_folder_with_labels_and_group_regex',
               f'{_FLAGS}::test_kfold_folder_img_suffix_picks_those_files']),
    'docs/coco_and_folders.md: tools/kfold.py handbone --out -k': dict(
        tests=['tests/preparation/test_kfold.py::test_kfold_handbone_keeps_patients_together']),
    'docs/coco_and_folders.md: tools/train.py --cfg-options': dict(
        tests=['tests/tools/test_train_test_cli.py::test_train_save_test_resume'],
        note=_TINY),
    'docs/coco_and_folders.md: tools/train.py': dict(
        tests=['tests/tools/test_train_test_cli.py::test_train_save_test_resume'],
        note=_TINY),
    'docs/coco_and_folders.md: tools/benchmark/bench_coco_masks.py --data --draw-order '
    '--repeat': dict(
        tests=['tests/tools/test_benchmark_scripts.py::test_coco_mask_benchmark_gives_identical_masks',
               f'{_FLAGS}::test_bench_coco_masks_reads_data_in_the_draw_order'],
        note='FracAtlas (../shared/data/fracatlas_coco) when present; --data: a hand-made '
             '3-image COCO folder'),
    **{f'{page}: tools/benchmark/bench_realdata.py --config --iters --work-dir': dict(
        tests=['tests/tools/test_bench_realdata.py::'
               'test_real_data_benchmark_prints_the_oof_dice_of_each_decision'],
        note='--tiny: 2 folds x 2 iterations of an 8-channel UNet on the real X-rays')
       for page in ('README.md', 'docs/real_data.md')},
    'docs/semi_supervised.md: tools/benchmark/bench_semi_methods.py --fraction --methods '
    '--room-dir --seeds --work-dir': dict(
        tests=['tests/tools/test_bench_semi_room.py::'
               'test_the_methods_train_on_the_rooms_labelled_images_and_report_their_share'],
        note='--tiny: 3 iterations an arm on the real X-rays'),
    'docs/semi_supervised.md: tools/benchmark/bench_semi_methods.py --finetune-iters '
    '--fraction --methods --room-dir --seeds --work-dir': dict(
        tests=['tests/tools/test_bench_semi_room.py::'
               'test_the_teacher_is_continued_with_and_without_unlabelled_images'],
        note='--tiny: the room of 3 iterations an arm continued for 2'),
    'docs/cross_validation.md: tools/cv.py --test-dir --work-dir -k': dict(
        tests=[f'{_CV}::test_submission_of_the_fold_ensemble_is_checked_and_complete'],
        note='3 folds x 2 iterations on 64x64 synthetic hand bones (the teacher run)'),
    'docs/cross_validation.md: tools/pseudo_label.py --max-uncertain --out-dir --pixel-conf':
        dict(tests=[f'{_CV}::test_pseudo_labelling_the_test_set_composes_with_cv'],
             note="the teacher run's test ensemble"),
    'docs/cross_validation.md: tools/cv.py --pseudo-labels --test-dir --work-dir -k': dict(
        tests=[f'{_CV}::test_pseudo_labelling_the_test_set_composes_with_cv'],
        note='3 folds x 2 iterations; tests/workflows/test_cv_pseudo_labels.py checks '
             'the fold data sets'),
    'docs/cross_validation.md: tools/cv.py --cfg-options --test-dir --tta --work-dir -k': dict(
        tests=[f'{_CV}::test_submission_of_the_fold_ensemble_is_checked_and_complete'],
        note='3 folds x 2 iterations on 64x64 synthetic hand bones'),
    'docs/cross_validation.md: tools/benchmark/bench_cv.py --heldback-patients --iters '
    '--patients --size --work-dir -k': dict(
        tests=['tests/tools/test_bench_cv.py::test_bench_cv_prints_the_five_submissions']),
    'docs/cross_validation.md: tools/benchmark/bench_heldback.py --heldback --iters --train '
    '--work-dir': dict(
        tests=['tests/tools/test_bench_cv.py::test_bench_heldback_scores_each_config']),
    'docs/cross_validation.md: tools/benchmark/bench_heldback.py --data --heldback-patients '
    '--iters --work-dir': dict(
        tests=['tests/tools/test_bench_cv.py::test_bench_heldback_splits_one_set_by_patient'],
        note='5 synthetic patients, 1 held back, 2 iterations'),
    'docs/handbone.md: tools/make_synthetic_handbone.py --images-per-patient --out '
    '--patients': dict(
        tests=['tests/datasets/test_synthetic_handbone.py::'
               'test_cli_refuses_non_empty_and_force_replaces',
               'tests/engine/test_distributed.py::test_two_cpu_ranks_train_and_test_like_one',
               f'{_FLAGS}::test_make_synthetic_handbone_images_per_patient']),
    'docs/handbone.md: tools/benchmark/bench_handbone_loading.py --repeats': dict(
        tests=['tests/tools/test_benchmark_scripts.py::'
               'test_handbone_loading_benchmark_rasterises_like_the_naive_mask']),
    'docs/install.md: tools/install.sh': dict(tests=[_CI]),
    'docs/install.md: TORCH=keep VENV=none tools/install.sh': dict(
        tests=[f'{_PATHS}::test_install_keeps_the_torch_of_the_active_environment'],
        note='pip faked (no network)'),
    'docs/install.md: STACK=openmmlab tools/install.sh': dict(tests=[_CI]),
    'docs/install.md: pytest': dict(tests=[_CI]),
    'docs/install.md: TORCH=torch==2.14.1 torchvision==0.29.1 VENV=.venv-timm '
    'tools/install.sh': dict(tests=[_CI]),
    'docs/install.md: MMSEG_EXT_REQUIRE_TIMM=1 pytest -m': dict(tests=[_CI]),
    'docs/export.md: tools/export.py --out': dict(tests=[_EXPORT_TUNED]),
    'docs/export.md: tools/export.py --connectivity --keep-largest --min-area --out '
    '--thresholds': dict(tests=[_EXPORT_TUNED]),
    'docs/export.md: tools/export.py --cv-dir --out': dict(
        tests=[_EXPORT_TUNED], note='a work dir holding only tuned/*.json'),
    'docs/export.md: tools/inference.py --img-dir --out-dir --tta': dict(
        tests=[f'{_EXPORT}::test_inference_onnx_into_submission_check'],
        note='the demo U-Net with random weights, 4 synthetic hand images'),
    'docs/export.md: tools/benchmark/bench_export.py --markdown': dict(
        tests=['tests/tools/test_export_bench.py::test_rows_give_parity_times_and_reasons'],
        note='two configs, one 48x64 image'),
    'docs/multilabel_models.md: tools/demo.py --work-dir': dict(
        tests=['tests/tools/test_demo.py::test_demo_end_to_end'], note='2 iterations'),
    'docs/multilabel_models.md: tools/benchmark/bench_tta.py --cfg-options --repeat '
    '--stock-views': dict(
        tests=['tests/tools/test_bench_tta.py::test_bench_tta_prints_plain_tta_and_stock_rows',
               f'{_FLAGS}::test_bench_tta_repeat_runs_each_mode_that_many_times'],
        note='a tiny untrained model on shapes'),
    'docs/multilabel_models.md: tools/train.py --work-dir': dict(
        tests=['tests/tools/test_train_test_cli.py::test_train_save_test_resume'],
        note=_TINY),
    'docs/multilabel_models.md: tools/benchmark/bench_tta.py --cfg-options': dict(
        tests=['tests/tools/test_bench_tta.py::test_bench_tta_prints_plain_tta_and_stock_rows'],
        note='a tiny untrained model on shapes'),
    'docs/real_data.md: tools/cv.py --cfg-options --work-dir -k': dict(
        tests=[f'{_CV}::test_multiclass_folder_data_set_is_scored_by_iou'],
        note='2 folds x 2 iterations on tiny shapes instead of JSRT'),
    'docs/results.md: tools/inference.py --img-dir --out-dir --out-size': dict(
        tests=['tests/inference/test_inference.py::test_cli_multiclass_matches_mmseg']),
    'docs/results.md: tools/visualize.py overlay --gt --img-dir --out-dir --palette': dict(
        tests=['tests/workflows/test_visualization.py::test_overlay_folder_cli_with_handbone_gt',
               f'{_FLAGS}::test_visualize_overlay_palette_sets_the_class_colours']),
    'docs/results.md: tools/visualize.py chart --out': dict(
        tests=['tests/workflows/test_visualization.py::'
               'test_read_scalars_with_prefix_takes_last_record']),
    'docs/semi_supervised.md: tools/self_train.py --cfg-options --force --img-suffix '
    '--max-uncertain --min-mean-conf --pixel-conf --rounds --student-init '
    '--teacher-checkpoint --unlabelled --unlabelled-list --work-dir': dict(
        tests=['tests/workflows/test_self_training.py::test_self_training_multiclass_one_round',
               'tests/workflows/test_self_training.py::test_self_training_multilabel_one_round',
               f'{_FLAGS}::test_self_train_teacher_checkpoint_unlabelled_list_and_two_rounds',
               f'{_FLAGS}::test_self_train_max_uncertain_min_mean_conf_and_force'],
        note='one or two rounds, 2 iterations; --teacher-checkpoint: an untrained model'),
    'docs/semi_supervised.md: tools/self_train.py --cfg-options --control --force '
    '--img-suffix --method --pixel-conf --student-init --student-iters --teacher-checkpoint '
    '--unlabelled --unlabelled-list --work-dir': dict(
        tests=[f'{_W2S}::test_unimatch_multilabel_from_the_teacher_with_its_control',
               f'{_W2S}::test_unimatch_multiclass_from_scratch',
               f'{_W2S}::test_unimatch_from_a_given_teacher_on_listed_images_and_force'],
        note='2-3 iterations on synthetic hand bones and shapes'),
    'docs/semi_supervised.md: tools/benchmark/bench_semi_room.py --fractions --iters --seeds '
    '--work-dir': dict(
        tests=['tests/tools/test_bench_semi_room.py::test_the_room_table_is_computed_from_the_arms'],
        note='--tiny: 3 iterations an arm, 8 channels, 64 px, 2 validation images'),
    'docs/semi_supervised.md: tools/benchmark/bench_semi_room.py --cfg-options --fractions '
    '--iters --seeds --work-dir': dict(
        tests=['tests/tools/test_bench_semi_room.py::test_the_room_table_is_computed_from_the_arms'],
        note='--tiny; a rerun with other --cfg-options is refused'),
    'docs/semi_supervised.md: tools/benchmark/bench_semi_room.py --config --fractions '
    '--seeds --work-dir': dict(
        tests=['tests/tools/test_bench_semi_room.py::test_the_room_table_is_computed_from_the_arms'],
        note='--tiny with the default config; the arms record their config, and a rerun '
             'with another --config is refused'),
    'docs/semi_supervised.md: tools/benchmark/bench_semi_room.py --fractions --seeds '
    '--work-dir': dict(
        tests=['tests/tools/test_bench_semi_room.py::test_the_room_table_is_computed_from_the_arms'],
        note='--tiny: 3 iterations an arm, 8 channels, 64 px, 2 validation images'),
    'docs/semi_supervised.md: tools/inference.py --img-dir --img-list --out-dir --out-size': dict(
        tests=[f'{_PATHS}::test_inference_img_list_tta_and_out_size'],
        note='a tiny untrained model'),
    'docs/semi_supervised.md: tools/analysis/val_history.py': dict(
        tests=['tests/evaluation/test_val_history.py::test_the_table_has_a_row_per_validation']),
    'docs/semi_supervised.md: tools/tune_thresholds.py --gt': dict(
        tests=['tests/postprocessing/test_thresholds.py::test_cli_missing_ground_truth',
               f'{_FLAGS}::test_tune_thresholds_writes_the_brute_force_best_threshold']),
    'docs/semi_supervised.md: tools/train.py --cfg-options --work-dir': dict(
        tests=['tests/models/test_weak_strong_train.py::'
               'test_multilabel_hand_bone_layout_trains_and_predicts'],
        note='the jsrt weak-to-strong config on synthetic hand bones, 64 px, 2 iterations'),
    'docs/semi_supervised.md: tools/train.py --work-dir': dict(
        tests=['tests/models/test_weak_strong_train.py::'
               'test_multiclass_folders_train_and_predict'],
        note='the camvid weak-to-strong config on the shapes folders (paths and sizes '
             'by --cfg-options), 2 iterations'),
    'docs/semi_supervised.md: tools/inference.py --img-dir --out-dir': dict(
        tests=['tests/models/test_weak_strong_train.py::'
               'test_multilabel_hand_bone_layout_trains_and_predicts',
               'tests/models/test_weak_strong_train.py::'
               'test_multiclass_folders_train_and_predict']),
    'docs/submission.md: tools/inference.py --img-dir --out-dir': dict(
        tests=['tests/inference/test_inference.py::test_cli_multiclass_matches_mmseg']),
    'docs/submission.md: tools/inference.py --img-dir --out-dir --tta': dict(
        tests=[f'{_PATHS}::test_inference_img_list_tta_and_out_size'],
        note='a tiny untrained model'),
    'docs/submission.md: tools/ensemble.py --out-dir --weights': dict(
        tests=['tests/ensembling/test_ensemble.py::test_cli_soft_vote_and_errors',
               'tests/robustness/test_values.py::test_huge_weights_do_not_overflow']),
    'docs/submission.md: tools/tune_thresholds.py --gt --out': dict(
        tests=['tests/postprocessing/test_thresholds.py::test_cli_missing_ground_truth',
               f'{_FLAGS}::test_tune_thresholds_writes_the_brute_force_best_threshold'],
        note='the written thresholds reach the best Dice of a brute-force search'),
    'docs/submission.md: tools/make_submission.py --format --img-dir --out --thresholds': dict(
        tests=[f'{_CV}::test_scores_agree_with_the_submission_writer_and_scorer']),
    'docs/submission.md: tools/make_submission.py --check --format --img-dir': dict(
        tests=['tests/submission/test_submission.py::test_cli_write_then_check']),
    'docs/submission.md: tools/ensemble.py --csv --min-votes --out': dict(
        tests=[f'{_PATHS}::test_ensemble_csv_hard_vote']),
    'docs/submission.md: tools/inference.py --img-dir --out-dir --out-size --tta': dict(
        tests=[f'{_PATHS}::test_inference_img_list_tta_and_out_size'],
        note='a tiny untrained model'),
    'docs/submission.md: tools/make_submission.py --format --img-dir --min-area --out '
    '--thresholds': dict(
        tests=[f'{_CV}::test_scores_agree_with_the_submission_writer_and_scorer']),
    'docs/submission.md: tools/make_submission.py --check --competition-classes --format '
    '--img-dir': dict(
        tests=['tests/submission/test_submission.py::test_handbone_csv_for_any_class_list']),
    'docs/submission.md: tools/inference.py --img-dir --img-list --out-dir --tta': dict(
        tests=[f'{_PATHS}::test_inference_img_list_tta_and_out_size'],
        note='a tiny untrained model'),
    'docs/submission.md: tools/ensemble.py --csv --force --img-dir --min-votes --out': dict(
        tests=[f'{_PATHS}::test_ensemble_csv_hard_vote',
               'tests/robustness/test_round5_cases.py::'
               'test_hard_vote_output_name_and_run_past_the_image_end']),
    'docs/submission.md: tools/tune_thresholds.py --gt --out --search': dict(
        tests=['tests/postprocessing/test_thresholds.py::test_cli_missing_ground_truth',
               'tests/tools/test_cli_conventions.py::'
               'test_ranges_the_library_checks_exit_2_naming_the_flag',
               f'{_FLAGS}::test_tune_thresholds_writes_the_brute_force_best_threshold'],
        note='the written thresholds reach the best Dice of a brute-force search'),
    'docs/submission.md: tools/make_submission.py --format --out': dict(
        tests=['tests/submission/test_submission.py::test_cli_write_then_check']),
    'docs/training.md: tools/get_weights.py': dict(
        tests=['tests/training/test_get_weights.py::'
               'test_beit_is_converted_and_loads_into_a_small_beit',
               'tests/training/test_get_weights_timm.py::'
               'test_download_checks_and_publishes_the_file'],
        note='small files from a file:// URL and a local fake of the Hugging Face Hub'),
    'docs/training.md: tools/get_weights.py --list': dict(
        tests=['tests/training/test_get_weights.py::test_unknown_name_and_list']),
    'docs/training.md: tools/get_weights.py --url': dict(
        tests=['tests/training/test_get_weights.py::'
               'test_beit_is_converted_and_loads_into_a_small_beit']),
    'docs/training.md: tools/train.py --cfg-options': dict(
        tests=['tests/tools/test_train_test_cli.py::test_train_save_test_resume'],
        note=_TINY),
    'docs/training.md: tools/test.py --tta': dict(
        tests=['tests/inference/test_tta.py::test_tools_test_tta_runs_upernet_beit'],
        note='custom_configs/upernet_beit.py on tiny images'),
    'docs/training.md: tools/train.py --amp --cfg-options --resume --work-dir': dict(
        tests=['tests/tools/test_train_test_cli.py::test_train_save_test_resume',
               'tests/tools/test_reliability.py::test_amp_without_cuda'],
        note='--amp needs CUDA: CPU CI checks its one-line refusal; gpu_check.sh trains '
             'with AMP on a GPU'),
    'docs/training.md: tools/dist_train.sh --work-dir': dict(
        tests=['tests/engine/test_distributed.py::test_two_cpu_ranks_train_and_test_like_one'],
        note='2 CPU ranks instead of 8 GPUs'),
    'docs/training.md: PYTHON=... tools/dist_train.sh': dict(
        tests=['tests/engine/test_distributed.py::test_two_cpu_ranks_train_and_test_like_one'],
        note='2 CPU ranks, a few iterations'),
    'docs/training.md: PYTHON=... tools/dist_test.sh': dict(
        tests=['tests/engine/test_distributed.py::test_two_cpu_ranks_train_and_test_like_one'],
        note='2 CPU ranks'),
    'docs/training.md: tools/test.py --out --show-dir --tta --work-dir': dict(
        tests=[f'{_PATHS}::test_test_py_show_dir_out_and_tta'],
        note='a tiny untrained model on shapes'),
    'docs/training.md: tools/dist_test.sh': dict(
        tests=['tests/engine/test_distributed.py::test_two_cpu_ranks_train_and_test_like_one'],
        note='2 CPU ranks instead of 8 GPUs'),
}

#: Commands no CI machine can run at all, with the reason.
EXEMPT = {
    'docs/benchmarks.md: tools/benchmark/gpu_check.py --images --iters --workers':
        'needs a CUDA GPU (the device check); its --tiny CPU mode is tested',
    'docs/benchmarks.md: tools/benchmark/gpu_check.sh':
        'needs a CUDA GPU; tests/tools/test_gpu_check.py checks its refusal without one '
        'and its --tiny mode',
    'docs/contributing.md: PYTHONPATH=... tools/benchmark/gpu_check.py --configs --iters '
    '--workers': 'runs on the lent GPU machine from a prepared site folder',
    'docs/install.md: FORCE_CUDA=1 STACK=openmmlab TORCH=keep VENV=none tools/install.sh':
        'builds mmcv with CUDA ops: needs a CUDA toolkit (CI builds it for the CPU)',
    'docs/training.md: MASTER_ADDR=10.0.0.1 NNODES=2 NODE_RANK=0 PORT=29500 '
    'tools/dist_train.sh': 'two machines',
    'docs/training.md: MASTER_ADDR=10.0.0.1 NNODES=2 NODE_RANK=1 PORT=29500 '
    'tools/dist_train.sh': 'two machines',
    'docs/training.md: GPUS=16 GPUS_PER_NODE=8 tools/slurm_train.sh':
        'needs a SLURM cluster (srun); tests/tools/test_launch_scripts.py checks its '
        'arguments',
}


# --- the checks -----------------------------------------------------------------------

def test_the_pages_hold_project_commands():
    """The parser finds the documented commands (guards against a parser that finds
    none and so checks nothing)."""
    commands = documented_commands()
    assert len(commands) >= 80, len(commands)
    assert {c.doc for c in commands} >= {'README.md', 'docs/training.md',
                                          'docs/submission.md', 'docs/install.md'}


def test_every_documented_script_exists():
    missing = [c.where for c in documented_commands()
               if c.script != 'pytest' and not osp.isfile(osp.join(REPO, c.script))]
    assert not missing, 'documented scripts that do not exist:\n' + '\n'.join(missing)


def test_every_documented_command_has_an_entry():
    missing = [f'{c.where}\n    key: {c.key!r}' for c in documented_commands()
               if c.key not in COVERAGE and c.key not in EXEMPT]
    assert not missing, ('documented commands without a test in COVERAGE (or a reason in '
                         'EXEMPT):\n' + '\n'.join(missing))


def test_no_entry_outlives_its_command():
    keys = {c.key for c in documented_commands()}
    stale = sorted(k for k in [*COVERAGE, *EXEMPT] if k not in keys)
    assert not stale, 'entries for commands no page shows any more:\n' + '\n'.join(stale)
    assert not set(COVERAGE) & set(EXEMPT)
    assert all(reason.strip() for reason in EXEMPT.values())


@pytest.mark.parametrize('key', sorted(COVERAGE))
def test_the_entry_tests_exist_and_run_the_script_with_its_flags(key):
    entry = COVERAGE[key]
    command = next((c for c in documented_commands() if c.key == key), None)
    if command is None:
        pytest.skip('no page shows this command (test_no_entry_outlives_its_command)')
    assert entry['tests'], key
    untested = entry.get('untested_flags', {})
    assert all(reason.strip() for reason in untested.values())
    sources = {}
    for node_id in entry['tests']:
        source = source_of_test(node_id)
        assert source is not None, f'{key}: {node_id} does not exist'
        assert mentions(source, osp.basename(command.script)), (
            f'{command.where}: {node_id} does not run {command.script}')
        sources[node_id] = source
    joined = '\n'.join(sources.values())
    words = [*command.flags, *command.env_names,
             *([command.subcommand] if command.subcommand else [])]
    unrun = [w for w in words if w not in untested and not mentions(joined, w)]
    assert not unrun, (f'{command.where}: no test of {entry["tests"]} passes {unrun}; '
                       'add a test or list the flag in untested_flags with the reason')
    stale = [w for w in untested if w not in words]
    assert not stale, f'{key}: untested_flags names {stale}, which the command lacks'


# --- the index and the pages ------------------------------------------------------------

def test_the_docs_index_links_every_page():
    with open(osp.join(REPO, 'docs', 'README.md'), encoding='utf-8') as f:
        index = f.read()
    linked = set(re.findall(r'\]\(([\w.-]+\.md)(?:#[^)]*)?\)', index))
    pages = {osp.basename(p) for p in DOC_PAGES if p.startswith('docs/')} - {'README.md'}
    assert not pages - linked, f'docs/README.md does not link {sorted(pages - linked)}'
    assert not linked - pages - {'README.md'}, f'links to missing pages: {linked - pages}'


@pytest.mark.parametrize('page', [p for p in DOC_PAGES if p.startswith('docs/')])
def test_every_page_opens_with_a_title_and_what_it_is_for(page):
    with open(osp.join(REPO, page), encoding='utf-8') as f:
        lines = f.read().splitlines()
    assert lines and re.match(r'^# \S', lines[0]), f'{page}: the first line is not "# Title"'
    rest = lines[1:]
    while rest and not rest[0].strip():
        rest = rest[1:]
    assert rest and not rest[0].startswith(('#', '```', '|', '-', '*', '!', '<')), (
        f'{page}: the title is not followed by a paragraph saying what the page is for')
