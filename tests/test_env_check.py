"""The import-time environment guard: one line naming the problem and the fix."""
import importlib.metadata as metadata
import os
import textwrap

import pytest
from conftest import REPO, run_tool

from mmseg_ext.utils.env_check import find_problems


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


def test_healthy_environment_has_no_problem():
    assert find_problems(fake_versions(mmcv='2.1.0'), fake_import()) == []


def test_real_environment_is_healthy():
    assert find_problems() == []


def test_missing_pkg_resources():
    problems = find_problems(fake_versions(mmcv='2.1.0'), fake_import({'pkg_resources'}))
    assert len(problems) == 1
    assert 'pkg_resources is missing' in problems[0]
    assert "pip install 'setuptools<81'" in problems[0]


def test_mmcv_lite():
    problems = find_problems(fake_versions(mmcv_lite='2.1.0'), fake_import())
    assert problems == [
        'mmcv-lite 2.1.0 is installed, but mmsegmentation imports mmcv.ops, which only '
        'the full mmcv has. Fix: pip uninstall -y mmcv-lite && bash tools/install.sh']


@pytest.mark.parametrize('version', ['2.2.0', '2.2.1rc1', '3.0.0', '1.7.2'])
def test_mmcv_out_of_range(version):
    problems = find_problems(fake_versions(mmcv=version), fake_import())
    assert len(problems) == 1
    assert problems[0].startswith(f'mmcv {version} is installed, but mmsegmentation '
                                  '1.2.2 needs mmcv>=2.0.0rc4,<2.2.0')
    assert 'pip uninstall -y mmcv && bash tools/install.sh' in problems[0]


@pytest.mark.parametrize('version', ['2.0.0', '2.1.0', '2.1.0+cu118'])
def test_mmcv_in_range(version):
    assert find_problems(fake_versions(mmcv=version), fake_import()) == []


def test_mmcv_without_ops():
    problems = find_problems(fake_versions(mmcv='2.1.0'), fake_import({'mmcv._ext'}))
    assert len(problems) == 1
    assert 'mmcv 2.1.0 has no compiled ops' in problems[0]


def test_mmcv_ops_built_for_other_torch():
    err = {'mmcv._ext': '/x/_ext.so: undefined symbol: _ZN3c104cuda9SetDeviceEi'}
    problems = find_problems(fake_versions(mmcv='2.1.0'), fake_import(errors=err))
    assert "mmcv's compiled ops do not load; they were built for another torch" \
        in problems[0]


def test_missing_torch_stops_before_mmcv_checks():
    problems = find_problems(fake_versions(), fake_import({'torch'}))
    assert len(problems) == 1 and problems[0].startswith('torch cannot be imported')


def _shadow(tmp_path, files):
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return {'PYTHONPATH': f'{tmp_path}{os.pathsep}{REPO}'}


def _metadata(name, version):
    return f'Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n'


@pytest.mark.parametrize('files, expected', [
    ({'mmcv-2.2.0.dist-info/METADATA': _metadata('mmcv', '2.2.0'),
      'mmcv/__init__.py': "__version__ = '2.2.0'\n"},
     'error: mmseg_ext: mmcv 2.2.0 is installed, but mmsegmentation 1.2.2 needs '
     'mmcv>=2.0.0rc4,<2.2.0. Fix: pip uninstall -y mmcv && bash tools/install.sh '
     '(installs mmcv 2.1.0)'),
    ({'mmcv-2.1.0.dist-info/METADATA': _metadata('mmcv', '2.1.0'),
      'mmcv/__init__.py': "__version__ = '2.1.0'\n"},
     'error: mmseg_ext: mmcv 2.1.0 has no compiled ops (mmcv._ext is missing: it was '
     'built with MMCV_WITH_OPS=0 or is a lite build). Fix: pip uninstall -y mmcv && '
     'bash tools/install.sh (builds mmcv against the installed torch)'),
    ({'pkg_resources.py': "raise ImportError('No module named pkg_resources')\n"},
     "error: mmseg_ext: pkg_resources is missing (setuptools>=81 removed it; mmengine "
     "needs it to resolve 'mmseg::' config bases). Fix: pip install 'setuptools<81'"),
], ids=['mmcv-2.2', 'mmcv-without-ops', 'no-pkg_resources'])
def test_tool_prints_one_line_and_fails(tmp_path, files, expected):
    """A broken environment shadowed onto PYTHONPATH: the tool exits 2 with one line."""
    env = _shadow(tmp_path, files)
    proc = run_tool('tools/train.py', 'custom_configs/demo/fcn_r18-tiny_shapes-64x80.py',
                    env=env)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == [expected]
