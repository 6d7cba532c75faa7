"""mmseg_ext: a plugin for mmsegmentation 1.x.

``import mmseg_ext`` (or ``custom_imports = dict(imports=['mmseg_ext'])`` in a config)

1. checks the environment and fails with one line naming the fix when it cannot work
   (:mod:`mmseg_ext.utils.env_check`);
2. lets torch >= 2.6 load mmengine checkpoints with ``weights_only=True`` kept
   (:mod:`mmseg_ext.utils.checkpoint`);
3. registers every dataset, transform, model, loss, metric and hook of the plugin in
   mmseg's registries.
"""
from .utils.env_check import EnvironmentCheckError, check_environment
from .version import __version__

check_environment()

from .utils.checkpoint import allow_mmengine_checkpoints  # noqa: E402

allow_mmengine_checkpoints()

from . import datasets, engine, evaluation, models, visualization  # noqa: E402,F401  (registration)

__all__ = ['__version__', 'EnvironmentCheckError', 'check_environment']
