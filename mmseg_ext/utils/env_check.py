"""Import-time check that the Python environment can run mmsegmentation 1.2.2.

Stock mmsegmentation fails deep inside its own imports (an ``AssertionError`` about the
mmcv version, ``ModuleNotFoundError: mmcv._ext``, a missing ``pkg_resources`` when a
config names ``mmseg::`` bases) with a long traceback that does not say how to fix it.
:func:`check_environment` runs before anything of mmseg is imported and turns each of
those traps into one line that names the problem and the command that fixes it.

The checks only read package metadata and try small imports; they never install anything.
Set ``MMSEG_EXT_SKIP_ENV_CHECK=1`` to skip them (at your own risk).
"""
from __future__ import annotations

import importlib
import importlib.metadata as metadata
import os
import re
import warnings
from typing import Callable, List, Optional, Tuple

#: mmsegmentation 1.2.2 asserts ``mmcv>=2.0.0rc4,<2.2.0``.
MMCV_MIN = (2, 0, 0)
MMCV_MAX_EXCLUSIVE = (2, 2, 0)
#: The command that installs a matching torch/mmcv/mmseg set (see README, "Install").
INSTALL_CMD = 'bash tools/install.sh'


class EnvironmentCheckError(ImportError):
    """The environment cannot run mmseg_ext; the message is one line with the fix."""


def _version_tuple(version: str) -> Tuple[int, ...]:
    """``'2.1.0rc1+cu118'`` -> ``(2, 1, 0)``: the leading numeric release parts."""
    parts = []
    for piece in version.split('+')[0].split('.'):
        match = re.match(r'\d+', piece)
        if match is None:
            break
        parts.append(int(match.group()))
    return tuple(parts)


def _installed_version(name: str,
                       dist_version: Callable[[str], str]) -> Optional[str]:
    try:
        return dist_version(name)
    except metadata.PackageNotFoundError:
        return None


def find_problems(
    dist_version: Callable[[str], str] = metadata.version,
    import_module: Callable[[str], object] = importlib.import_module,
) -> List[str]:
    """Return one line per problem found, in the order they should be fixed.

    Args:
        dist_version: looks up an installed distribution's version (raises
            ``PackageNotFoundError`` when absent); injectable for tests.
        import_module: imports a module by name; injectable for tests.

    Returns:
        Messages of the form ``'<problem>. Fix: <command>'``; empty when all is well.
    """
    problems: List[str] = []

    try:
        with warnings.catch_warnings():
            # setuptools 80 warns that pkg_resources is deprecated; the pin keeps it
            warnings.simplefilter('ignore', UserWarning)
            import_module('pkg_resources')
    except ImportError:
        problems.append(
            'pkg_resources is missing (setuptools>=81 removed it; mmengine needs it to '
            "resolve 'mmseg::' config bases). Fix: pip install 'setuptools<81'")

    try:
        import_module('torch')
    except ImportError as exc:
        problems.append(f'torch cannot be imported ({exc}). Fix: {INSTALL_CMD} '
                        '(CPU), or install your CUDA torch first, then '
                        f'TORCH=keep {INSTALL_CMD}')
        return problems  # every mmcv check below needs torch

    lite = _installed_version('mmcv-lite', dist_version)
    full = _installed_version('mmcv', dist_version)
    if lite is not None and full is None:
        problems.append(
            f'mmcv-lite {lite} is installed, but mmsegmentation imports mmcv.ops, which '
            f'only the full mmcv has. Fix: pip uninstall -y mmcv-lite && {INSTALL_CMD}')
        return problems
    if full is None:
        problems.append(f'mmcv is not installed. Fix: {INSTALL_CMD}')
        return problems
    version = _version_tuple(full)
    if not (MMCV_MIN <= version < MMCV_MAX_EXCLUSIVE):
        problems.append(
            f'mmcv {full} is installed, but mmsegmentation 1.2.2 needs '
            f'mmcv>=2.0.0rc4,<2.2.0. Fix: pip uninstall -y mmcv && {INSTALL_CMD} '
            '(installs mmcv 2.1.0)')
        return problems
    try:
        import_module('mmcv._ext')
    except ImportError as exc:
        text = str(exc)
        if 'undefined symbol' in text or 'cannot open shared object' in text:
            reason = ("mmcv's compiled ops do not load; they were built for another "
                      f'torch ({text.splitlines()[0][:120]})')
        else:
            reason = (f'mmcv {full} has no compiled ops (mmcv._ext is missing: it was '
                      'built with MMCV_WITH_OPS=0 or is a lite build)')
        problems.append(f'{reason}. Fix: pip uninstall -y mmcv && {INSTALL_CMD} '
                        '(builds mmcv against the installed torch)')
    return problems


def check_environment() -> None:
    """Raise :class:`EnvironmentCheckError` with the first problem found, if any."""
    if os.environ.get('MMSEG_EXT_SKIP_ENV_CHECK') == '1':
        return
    problems = find_problems()
    if problems:
        raise EnvironmentCheckError(f'mmseg_ext: {problems[0]}')
