"""mmseg_ext: a plugin for mmsegmentation 1.x (either stack: onedl-* or upstream).

Importing the package (or any of its modules) is cheap and imports neither torch nor
mmseg: the file-format modules (:mod:`mmseg_ext.io`) and the tools built on them start at
once. What the plugin changes in mmengine and mmseg happens on first use
(:mod:`mmseg_ext.registration`):

1. ``mmseg::`` config bases resolve on both stacks once mmengine's config module loads
   (:mod:`mmseg_ext.utils.config_bases`);
2. checkpoints load with ``weights_only=True`` and exactly mmengine's globals once
   mmengine's checkpoint module loads (:mod:`mmseg_ext.utils.checkpoint`);
3. the first lookup in an mmseg registry checks the environment (one line naming the fix
   when it cannot work, :mod:`mmseg_ext.utils.env_check`) and registers every dataset,
   transform, model, loss, metric, hook and visualizer of the plugin;
4. albumentations does not ask PyPI for its version at import (``NO_ALBUMENTATIONS_UPDATE``
   is set unless the environment sets it).

``custom_imports = dict(imports=['mmseg_ext'])`` in a config therefore works as before;
:func:`register_all_modules` registers now.
"""
from .registration import install as _install
from .registration import register_all_modules
from .utils.env_check import check_environment
from .utils.errors import EnvironmentCheckError
from .version import __version__

_install()

__all__ = ['__version__', 'EnvironmentCheckError', 'check_environment',
           'register_all_modules']
