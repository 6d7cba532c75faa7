"""Imports point down: each package of mmseg_ext imports only the layers below it.

The rules and their reasons are in docs/contributing.md ("Layers"). Function-level
imports count too; a module of a package may import its own package freely.
"""
import ast
import os
import os.path as osp

import pytest

PACKAGE = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'mmseg_ext')

#: package -> the packages it may import (besides itself).
LOW = {'utils', 'io', 'evaluation', 'engine', 'datasets', 'models', 'visualization'}
#: The workflow stages, in the order a run meets them: a stage may import the config
#: floor and the stages before it (it consumes their outputs), never a later one.
STAGES = ('preparation', 'training', 'inference', 'ensembling', 'postprocessing',
          'submission', 'export')
ALLOWED = {
    'utils': set(),
    'io': {'utils'},
    'evaluation': {'utils'},
    'engine': {'utils'},
    'datasets': {'utils', 'io'},
    'models': {'utils', 'evaluation', 'engine'},
    'visualization': {'utils', 'io', 'evaluation'},
    'config': LOW,
    **{stage: LOW | {'config'} | set(STAGES[:i]) for i, stage in enumerate(STAGES)},
    'workflows': LOW | {'config'} | set(STAGES),
}
#: The command-line layer: only tools/ may import it (its modules: the parser, the
#: one-line errors, the path-role check).
CLI_MODULES = {('utils', 'cli'), ('utils', 'cli_errors'), ('utils', 'cli_paths')}


def imports_of(path):
    """``(line, target module parts)`` of every mmseg_ext import in a module."""
    here = osp.relpath(path, PACKAGE)[:-3].split(os.sep)[:-1]  # the module's package
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - (node.level - 1)] if node.level > 1 else here
                module = base + (node.module.split('.') if node.module else [])
                names = [module + [a.name] for a in node.names] if not node.module \
                    else [module]
            elif node.module and node.module.split('.')[0] == 'mmseg_ext':
                names = [node.module.split('.')[1:]]
            else:
                continue
            for target in names:
                yield node.lineno, target
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split('.')
                if parts[0] == 'mmseg_ext':
                    yield node.lineno, parts[1:]


def modules():
    for folder, _, files in os.walk(PACKAGE):
        for name in sorted(files):
            if name.endswith('.py'):
                yield osp.join(folder, name)


def test_every_package_has_a_rule():
    packages = {d for d in os.listdir(PACKAGE)
                if osp.isfile(osp.join(PACKAGE, d, '__init__.py'))}
    assert packages == set(ALLOWED)


@pytest.mark.parametrize('path', [p for p in modules()
                                  if osp.relpath(p, PACKAGE).count(os.sep)],
                         ids=lambda p: osp.relpath(p, PACKAGE))
def test_imports_point_down(path):
    package = osp.relpath(path, PACKAGE).split(os.sep)[0]
    wrong = []
    for line, target in imports_of(path):
        if not target:
            continue
        if tuple(target[:2]) in CLI_MODULES and package != 'utils':
            wrong.append(f'line {line}: imports the CLI module {".".join(target)}')
        elif target[0] != package and target[0] in ALLOWED \
                and target[0] not in ALLOWED[package]:
            wrong.append(f'line {line}: {package} imports {".".join(target)}')
    assert not wrong, f'{osp.relpath(path, PACKAGE)}: ' + '; '.join(wrong)


def test_only_tools_use_the_cli_module():
    """The modules of the command-line layer are the only modules of the package that
    name each other."""
    layer = {osp.join(*m) + '.py' for m in CLI_MODULES}
    users = [osp.relpath(p, PACKAGE) for p in modules()
             if any(tuple(t[:2]) in CLI_MODULES for _, t in imports_of(p))
             and osp.relpath(p, PACKAGE) not in layer]
    assert users == []


def test_the_rule_catches_an_upward_import(tmp_path, monkeypatch):
    """The checker itself: a datasets module importing a stage is reported."""
    fake = tmp_path / 'mmseg_ext'
    (fake / 'datasets').mkdir(parents=True)
    bad = fake / 'datasets' / 'bad.py'
    bad.write_text('from ..preparation.kfold import kfold_coco\nfrom ..io.images import x\n')
    monkeypatch.setattr(__import__(__name__), 'PACKAGE', str(fake))
    with pytest.raises(AssertionError, match='line 1: datasets imports preparation.kfold'):
        test_imports_point_down(str(bad))
