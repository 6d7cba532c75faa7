"""mmseg_ext: a plugin for mmsegmentation 1.x (either stack: onedl-* or upstream).

``import mmseg_ext`` (or ``custom_imports = dict(imports=['mmseg_ext'])`` in a config)

1. checks the environment and fails with one line naming the fix when it cannot work
   (:mod:`mmseg_ext.utils.env_check`);
2. lets ``mmseg::`` config bases resolve on both stacks
   (:mod:`mmseg_ext.utils.config_bases`);
3. loads checkpoints with ``weights_only=True`` and exactly mmengine's globals allowed,
   refusing anything else on both stacks (:mod:`mmseg_ext.utils.checkpoint`);
4. registers every dataset, transform, model, loss, metric and hook of the plugin in
   mmseg's registries.
"""
import contextlib
import io
import sys
import warnings

from .utils.env_check import check_environment
from .utils.errors import EnvironmentCheckError
from .version import __version__

check_environment()


@contextlib.contextmanager
def _quiet_stack_imports():
    """Keep two notices of the maintained stack's imports off the user's screen.

    Without compiled ops, mmcv warns at import that ``MultiScaleDeformableAttention`` is
    missing (the configs that need it are refused with a clear line by
    :mod:`mmseg_ext.utils.compiled_ops`), and mmseg prints "Could not import OneDL" for
    an optional integration. Everything else printed is passed through.
    """
    buffer = io.StringIO()
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', message='Fail to import ``MultiScaleDeformable')
        with contextlib.redirect_stdout(buffer):
            yield
    for line in buffer.getvalue().splitlines(keepends=True):
        if line.strip() != 'Could not import OneDL':
            sys.stdout.write(line)


with _quiet_stack_imports():
    from .utils.checkpoint import allow_mmengine_checkpoints  # noqa: E402
    from .utils.config_bases import register_mmseg_config_package  # noqa: E402

    allow_mmengine_checkpoints()
    register_mmseg_config_package()

    from . import datasets, engine, evaluation, models, visualization  # noqa: E402,F401  (registration)

__all__ = ['__version__', 'EnvironmentCheckError', 'check_environment']
