"""Let ``mmseg::`` config bases resolve whichever distribution provides ``mmseg``.

A config's ``_base_ = ['mmseg::_base_/default_runtime.py']`` is resolved by mmengine
through a table from the scope (``mmseg``) to a distribution name (``mmsegmentation``),
whose installed files hold ``.mim/configs``. The maintained stack installs the same
``mmseg`` package as the distribution ``onedl-mmsegmentation``, so stock mmengine answers
"mmsegmentation is not installed". :func:`register_mmseg_config_package` points that
entry at the distribution actually installed (or at the import name for a source
checkout, which mmengine finds through the module spec). ``import mmseg_ext`` calls it;
code that calls ``mmengine.Config.fromfile`` directly must ``import mmseg_ext`` first.
"""
from __future__ import annotations

from .env_check import providers


def register_mmseg_config_package() -> str:
    """Point mmengine's ``mmseg`` scope at the installed distribution; return its name."""
    from mmengine.config import utils as config_utils
    found = providers('mmseg')
    package = found[0][1] if len(found) == 1 else 'mmseg'
    config_utils.MODULE2PACKAGE['mmseg'] = package
    return package
