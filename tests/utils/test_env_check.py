"""The import-time environment guard: one line naming the problem and the fix."""
import importlib.metadata as metadata
import os
import textwrap

import pytest
from conftest import REPO, run_tool

from mmseg_ext.utils.env_check import find_problems, providers

pytestmark = pytest.mark.stacks

UPSTREAM = dict(mmengine='0.10.7', mmcv='2.1.0', mmsegmentation='1.2.2')
ONEDL = dict(onedl_mmengine='0.10.12', onedl_mmcv='2.3.6', onedl_mmsegmentation='1.4.2')


def fake_versions(**versions):
    def dist_version(name):
        key = name.replace('-', '_')
        if key not in versions:
            raise metadata.PackageNotFoundError(name)
        return versions[key]
    return dist_version


def fake_import(missing=(), errors=None):
    errors = errors or {}

    def import_module(name):
        if name in errors:
            raise ImportError(errors[name])
        if name in missing:
            raise ModuleNotFoundError(f"No module named '{name}'")
        return object()
    return import_module


def problems_of(versions, missing=(), errors=None, on_path=()):
    return find_problems(fake_versions(**versions), fake_import(missing, errors),
                         module_exists=lambda name: name in on_path)


def test_real_environment_is_healthy():
    assert find_problems() == []


@pytest.mark.parametrize('stack', [UPSTREAM, ONEDL], ids=['openmmlab', 'onedl'])
def test_complete_stack_has_no_problem(stack):
    assert problems_of(stack) == []


def test_onedl_needs_neither_ops_nor_pkg_resources():
    assert problems_of(ONEDL, missing={'mmcv._ext', 'pkg_resources'}) == []


def test_source_checkout_without_distribution_is_accepted():
    """Depend on what imports: a checkout on PYTHONPATH has no distribution metadata."""
    versions = dict(ONEDL)
    del versions['onedl_mmsegmentation']
    assert problems_of(versions, on_path={'mmseg'}) == []
    assert problems_of(versions) == [
        'mmseg is not installed. Fix: bash tools/install.sh']


@pytest.mark.parametrize('other, module, names, dists', [
    ({'mmcv': '2.1.0'}, 'mmcv', 'onedl-mmcv 2.3.6 and mmcv 2.1.0', 'onedl-mmcv mmcv'),
    ({'mmsegmentation': '1.2.2'}, 'mmseg',
     'onedl-mmsegmentation 1.4.2 and mmsegmentation 1.2.2',
     'onedl-mmsegmentation mmsegmentation'),
])
def test_both_stacks_providing_one_package(other, module, names, dists):
    assert problems_of({**ONEDL, **other}) == [
        f"{names} are all installed and write the same package '{module}', so its files "
        f'are a mix of both. Fix: pip uninstall -y {dists} && bash tools/install.sh (or '
        'STACK=openmmlab bash tools/install.sh)']


def test_packages_from_two_stacks():
    versions = dict(onedl_mmengine='0.10.12', onedl_mmcv='2.3.6', mmsegmentation='1.2.2')
    problems = problems_of(versions)
    assert problems == [
        'the OpenMMLab packages come from two stacks (onedl-mmengine 0.10.12 (onedl), '
        'onedl-mmcv 2.3.6 (onedl), mmsegmentation 1.2.2 (openmmlab)), which do not work '
        'together. Fix: bash tools/install.sh (maintained stack; removes the other) or '
        'STACK=openmmlab bash tools/install.sh']


def detect_stack(dist_version=None):
    """``'onedl'`` or ``'openmmlab'`` when mmseg comes from one stack, else None."""
    found = providers('mmseg', dist_version) if dist_version else providers('mmseg')
    return found[0][0] if len(found) == 1 else None


def test_detect_stack():
    assert detect_stack(fake_versions(**ONEDL)) == 'onedl'
    assert detect_stack(fake_versions(**UPSTREAM)) == 'openmmlab'
    assert detect_stack(fake_versions()) is None


@pytest.mark.parametrize('missing, problem, fix', [
    ('pkg_resources', 'pkg_resources is missing', "pip install 'setuptools<81'"),
    ('mmcv._ext', 'mmcv 2.1.0 has no compiled ops',
     'bash tools/install.sh (maintained stack, no ops needed)'),
])
def test_upstream_missing_module(missing, problem, fix):
    problems = problems_of(UPSTREAM, missing={missing})
    assert len(problems) == 1 and problem in problems[0] and fix in problems[0]


def test_upstream_mmcv_lite():
    versions = dict(mmengine='0.10.7', mmcv_lite='2.1.0', mmsegmentation='1.2.2')
    assert problems_of(versions) == [
        'mmcv-lite 2.1.0 is installed, but mmsegmentation 1.2.2 imports mmcv.ops, which '
        'only the full mmcv has. Fix: pip uninstall -y mmcv-lite && STACK=openmmlab bash '
        'tools/install.sh (or bash tools/install.sh for the maintained stack)']


@pytest.mark.parametrize('version', ['2.2.0', '2.2.1rc1', '3.0.0', '1.7.2'])
def test_upstream_mmcv_out_of_range(version):
    problems = problems_of({**UPSTREAM, 'mmcv': version})
    assert len(problems) == 1
    assert problems[0].startswith(f'mmcv {version} is installed, but mmsegmentation '
                                  '1.2.2 needs mmcv>=2.0.0rc4,<2.2.0')
    assert 'pip uninstall -y mmcv && STACK=openmmlab bash tools/install.sh' in problems[0]


@pytest.mark.parametrize('version', ['2.0.0', '2.1.0', '2.1.0+cu118'])
def test_upstream_mmcv_in_range(version):
    assert problems_of({**UPSTREAM, 'mmcv': version}) == []


def test_upstream_mmcv_ops_built_for_other_torch():
    err = {'mmcv._ext': '/x/_ext.so: undefined symbol: _ZN3c104cuda9SetDeviceEi'}
    problems = problems_of(UPSTREAM, errors=err)
    assert "mmcv's compiled ops do not load; they were built for another torch" \
        in problems[0]


def test_missing_torch_stops_before_other_checks():
    problems = problems_of({}, missing={'torch'})
    assert len(problems) == 1 and problems[0].startswith('torch cannot be imported')


def _shadow(tmp_path, files):
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return {'PYTHONPATH': f'{tmp_path}{os.pathsep}{REPO}'}


def _metadata(name, version):
    return f'Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n'


def _run_demo_train(env):
    proc = run_tool('tools/train.py', 'custom_configs/demo/fcn_r18-tiny_shapes-64x80.py',
                    env=env, subprocess_run=True)  # a new interpreter sees the shadow
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    return proc.returncode, lines


def test_tool_reports_a_mix_of_stacks_in_one_line(tmp_path):
    """The other stack's mmcv distribution shadowed onto PYTHONPATH: exit 2, one line."""
    stack = detect_stack()
    other = 'mmcv' if stack == 'onedl' else 'onedl-mmcv'
    mine = 'onedl-mmcv' if stack == 'onedl' else 'mmcv'
    dist_dir = other.replace('-', '_')
    env = _shadow(tmp_path, {f'{dist_dir}-2.9.0.dist-info/METADATA': _metadata(other, '2.9.0')})
    code, lines = _run_demo_train(env)
    assert code == 2, lines
    names = sorted([f'{mine} {metadata.version(mine)}', f'{other} 2.9.0'],
                   key=lambda text: not text.startswith('onedl'))
    assert lines == [
        f"error: mmseg_ext: {' and '.join(names)} are all installed and write the same "
        "package 'mmcv', so its files are a mix of both. Fix: pip uninstall -y "
        f"{' '.join(n.split()[0] for n in names)} && bash tools/install.sh (or "
        'STACK=openmmlab bash tools/install.sh)']


@pytest.mark.skipif(detect_stack() != 'openmmlab', reason='upstream-stack traps')
@pytest.mark.parametrize('files, expected', [
    ({'mmcv-2.2.0.dist-info/METADATA': _metadata('mmcv', '2.2.0'),
      'mmcv/__init__.py': "__version__ = '2.2.0'\n"},
     'error: mmseg_ext: mmcv 2.2.0 is installed, but mmsegmentation 1.2.2 needs '
     'mmcv>=2.0.0rc4,<2.2.0. Fix: pip uninstall -y mmcv && STACK=openmmlab bash '
     'tools/install.sh (installs mmcv 2.1.0)'),
    ({'pkg_resources.py': "raise ImportError('No module named pkg_resources')\n"},
     "error: mmseg_ext: pkg_resources is missing (setuptools>=81 removed it; upstream "
     "mmengine needs it to resolve 'mmseg::' config bases). Fix: pip install "
     "'setuptools<81'"),
], ids=['mmcv-2.2', 'no-pkg_resources'])
def test_upstream_tool_prints_one_line_and_fails(tmp_path, files, expected):
    """A broken upstream environment shadowed onto PYTHONPATH: exit 2 with one line."""
    code, lines = _run_demo_train(_shadow(tmp_path, files))
    assert code == 2, lines
    assert lines == [expected]
