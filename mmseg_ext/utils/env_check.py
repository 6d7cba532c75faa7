"""Import-time check that the Python environment can run mmsegmentation.

Two stacks provide the import names ``mmengine``, ``mmcv`` and ``mmseg``:

* ``onedl`` (the default install): ``onedl-mmengine``, ``onedl-mmcv``,
  ``onedl-mmsegmentation``, the maintained continuation. mmcv's compiled ops are
  optional there; none of the shipped configs needs them.
* ``openmmlab`` (upstream, no longer released): ``mmengine`` 0.10.7, ``mmcv`` 2.1.0 with
  compiled ops, ``mmsegmentation`` 1.2.2, which asserts ``mmcv<2.2`` and imports
  ``mmcv.ops`` unconditionally.

Stock mmseg fails deep inside its own imports when the environment is wrong (an
``AssertionError`` about the mmcv version, ``ModuleNotFoundError: mmcv._ext``, a missing
``pkg_resources``, two distributions overwriting each other's files) with a traceback
that does not say how to fix it. :func:`check_environment` runs before anything of mmseg
is imported and turns each of those traps into one line naming the problem and the fix.

The checks read package metadata and look modules up; they never install anything and
import only ``torch``, ``pkg_resources`` (upstream stack) and ``mmcv._ext`` (upstream
stack). Set ``MMSEG_EXT_SKIP_ENV_CHECK=1`` to skip them (at your own risk).
"""
from __future__ import annotations

import importlib
import importlib.metadata as metadata
import importlib.util
import os
import re
import warnings
from typing import Callable, Dict, List, Tuple

from .errors import EnvironmentCheckError

#: Which distributions of each stack provide each import name.
STACK_DISTRIBUTIONS: Dict[str, Dict[str, Tuple[str, ...]]] = {
    'onedl': {
        'mmengine': ('onedl-mmengine',),
        'mmcv': ('onedl-mmcv',),
        'mmseg': ('onedl-mmsegmentation',),
    },
    'openmmlab': {
        'mmengine': ('mmengine', 'mmengine-lite'),
        'mmcv': ('mmcv', 'mmcv-full', 'mmcv-lite'),
        'mmseg': ('mmsegmentation',),
    },
}
MODULES = ('mmengine', 'mmcv', 'mmseg')
#: upstream mmsegmentation 1.2.2 asserts ``mmcv>=2.0.0rc4,<2.2.0``.
MMCV_MIN = (2, 0, 0)
MMCV_MAX_EXCLUSIVE = (2, 2, 0)
#: The commands that install a consistent stack (see docs/install.md).
INSTALL_CMD = 'bash tools/install.sh'
UPSTREAM_INSTALL_CMD = 'STACK=openmmlab bash tools/install.sh'

Provider = Tuple[str, str, str]  # (stack, distribution, version)


def _version_tuple(version: str) -> Tuple[int, ...]:
    """``'2.1.0rc1+cu118'`` -> ``(2, 1, 0)``: the leading numeric release parts."""
    parts = []
    for piece in version.split('+')[0].split('.'):
        match = re.match(r'\d+', piece)
        if match is None:
            break
        parts.append(int(match.group()))
    return tuple(parts)


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def providers(module: str,
              dist_version: Callable[[str], str] = metadata.version) -> List[Provider]:
    """Every installed distribution (of either stack) that provides ``module``."""
    found = []
    for stack, modules in STACK_DISTRIBUTIONS.items():
        for dist in modules[module]:
            try:
                found.append((stack, dist, dist_version(dist)))
            except metadata.PackageNotFoundError:
                pass
    return found


def find_problems(
    dist_version: Callable[[str], str] = metadata.version,
    import_module: Callable[[str], object] = importlib.import_module,
    module_exists: Callable[[str], bool] = _module_exists,
) -> List[str]:
    """Return one line per problem found, in the order they should be fixed.

    Args:
        dist_version: looks up an installed distribution's version (raises
            ``PackageNotFoundError`` when absent); injectable for tests.
        import_module: imports a module by name; injectable for tests.
        module_exists: whether an import name can be found without importing it
            (a source checkout on ``PYTHONPATH`` has no distribution); injectable.

    Returns:
        Messages of the form ``'<problem>. Fix: <command>'``; empty when all is well.
    """
    try:
        import_module('torch')
    except ImportError as exc:
        return [f'torch cannot be imported ({exc}). Fix: {INSTALL_CMD} (CPU), or '
                f'install your CUDA torch first, then TORCH=keep {INSTALL_CMD}']

    stacks: Dict[str, Provider] = {}
    for module in MODULES:
        found = providers(module, dist_version)
        if len(found) > 1:
            names = ' and '.join(f'{dist} {version}' for _, dist, version in found)
            dists = ' '.join(dist for _, dist, _ in found)
            return [f'{names} are all installed and write the same package {module!r}, '
                    'so its files are a mix of both. Fix: pip uninstall -y '
                    f'{dists} && {INSTALL_CMD} (or {UPSTREAM_INSTALL_CMD})']
        if found:
            stacks[module] = found[0]
        elif not module_exists(module):
            return [f'{module} is not installed. Fix: {INSTALL_CMD}']
    kinds = {stack for stack, _, _ in stacks.values()}
    if len(kinds) > 1:
        parts = ', '.join(f'{dist} {version} ({stack})'
                          for stack, dist, version in stacks.values())
        return [f'the OpenMMLab packages come from two stacks ({parts}), which do not '
                f'work together. Fix: {INSTALL_CMD} (maintained stack; removes the '
                f'other) or {UPSTREAM_INSTALL_CMD}']
    if kinds == {'openmmlab'}:
        return _upstream_problems(stacks, import_module)
    return []


def _upstream_problems(stacks: Dict[str, Provider],
                       import_module: Callable[[str], object]) -> List[str]:
    """The traps of the upstream stack (mmseg 1.2.2 / mmcv 2.1.0 / mmengine 0.10.7)."""
    problems: List[str] = []
    try:
        with warnings.catch_warnings():
            # setuptools 80 warns that pkg_resources is deprecated; the pin keeps it
            warnings.simplefilter('ignore', UserWarning)
            import_module('pkg_resources')
    except ImportError:
        problems.append(
            'pkg_resources is missing (setuptools>=81 removed it; upstream mmengine needs '
            "it to resolve 'mmseg::' config bases). Fix: pip install 'setuptools<81'")
    if 'mmcv' not in stacks:
        return problems
    _, dist, version = stacks['mmcv']
    if dist == 'mmcv-lite':
        problems.append(
            f'mmcv-lite {version} is installed, but mmsegmentation 1.2.2 imports mmcv.ops, '
            'which only the full mmcv has. Fix: pip uninstall -y mmcv-lite && '
            f'{UPSTREAM_INSTALL_CMD} (or {INSTALL_CMD} for the maintained stack)')
        return problems
    if not (MMCV_MIN <= _version_tuple(version) < MMCV_MAX_EXCLUSIVE):
        problems.append(
            f'mmcv {version} is installed, but mmsegmentation 1.2.2 needs '
            f'mmcv>=2.0.0rc4,<2.2.0. Fix: pip uninstall -y {dist} && '
            f'{UPSTREAM_INSTALL_CMD} (installs mmcv 2.1.0)')
        return problems
    try:
        import_module('mmcv._ext')
    except ImportError as exc:
        text = str(exc)
        if 'undefined symbol' in text or 'cannot open shared object' in text:
            reason = ("mmcv's compiled ops do not load; they were built for another "
                      f'torch ({text.splitlines()[0][:120]})')
        else:
            reason = (f'mmcv {version} has no compiled ops (mmcv._ext is missing: it was '
                      'built with MMCV_WITH_OPS=0 or is a lite build), which '
                      'mmsegmentation 1.2.2 imports')
        problems.append(f'{reason}. Fix: pip uninstall -y {dist} && {UPSTREAM_INSTALL_CMD} '
                        f'(builds mmcv against the installed torch), or {INSTALL_CMD} '
                        '(maintained stack, no ops needed)')
    return problems


def check_environment() -> None:
    """Raise :class:`EnvironmentCheckError` with the first problem found, if any."""
    if os.environ.get('MMSEG_EXT_SKIP_ENV_CHECK') == '1':
        return
    problems = find_problems()
    if problems:
        raise EnvironmentCheckError(f'mmseg_ext: {problems[0]}')
