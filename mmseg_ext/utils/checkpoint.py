"""Let torch >= 2.6 load mmengine checkpoints with ``weights_only=True`` kept.

Since torch 2.6, ``torch.load`` defaults to ``weights_only=True``: its unpickler only
rebuilds tensors, containers and globals on an allow-list. mmengine 0.10.7 checkpoints
also pickle the runner's message hub (``HistoryBuffer`` objects holding numpy arrays),
so ``load_from = 'iter_N.pth'``, ``--resume`` and ``tools/test.py CONFIG CKPT`` fail with
``Unsupported global: mmengine.logging.history_buffer.HistoryBuffer``.

The fix here keeps the security property of ``weights_only`` (a downloaded checkpoint
cannot run code) and allow-lists exactly the globals mmengine writes:

* ``collections.OrderedDict`` and ``_codecs.encode`` (how numpy pickles raw bytes);
* numpy's ``dtype``, ``ndarray``, ``_reconstruct``, ``scalar`` and the concrete dtype
  classes (``numpy.dtypes.Float64DType``, ...), under both the numpy 2 (``numpy._core``)
  and numpy 1 (``numpy.core``) module paths so old checkpoints load too;
* ``mmengine.logging.history_buffer.HistoryBuffer``;
* ``builtins.getattr``, which mmengine uses only as ``getattr(HistoryBuffer, 'mean')``
  (and ``'min'``, ``'max'``, ``'current'``) to restore the buffer's statistics methods.
  A real ``getattr`` on the allow-list would let a file reach any attribute of anything
  it can name, so :func:`restricted_getattr` stands in for it under that name and only
  answers those lookups.

Any other global (``os.system``, ``subprocess.Popen``, ...) is still refused by torch.
:func:`allow_mmengine_checkpoints` is called when ``mmseg_ext`` is imported.
"""
from __future__ import annotations

import _codecs
import collections
import pickle
from typing import Any, Callable, List, Tuple, Union

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer

SafeGlobal = Union[Callable, Tuple[Callable, str]]

#: Attribute lookups a checkpoint may perform through ``builtins.getattr``.
ALLOWED_GETATTR = {HistoryBuffer: frozenset({'min', 'max', 'mean', 'current'})}


def restricted_getattr(obj: Any, name: str) -> Any:
    """Stand-in for ``builtins.getattr`` inside ``weights_only`` unpickling.

    Only the statistics methods of :class:`HistoryBuffer` may be fetched.

    Raises:
        pickle.UnpicklingError: for any other object or attribute name.
    """
    allowed = ALLOWED_GETATTR.get(obj) if isinstance(obj, type) else None
    if allowed is None or name not in allowed:
        owner = getattr(obj, '__qualname__', type(obj).__qualname__)
        raise pickle.UnpicklingError(
            f'checkpoint asks for getattr({owner}, {name!r}), which mmseg_ext does not '
            'allow-list (only HistoryBuffer statistics methods are allowed)')
    return getattr(obj, name)


def _numpy_globals() -> List[SafeGlobal]:
    multiarray = np._core.multiarray if hasattr(np, '_core') else np.core.multiarray
    entries: List[SafeGlobal] = [np.dtype, np.ndarray]
    for module in ('numpy._core.multiarray', 'numpy.core.multiarray'):
        entries.append((multiarray._reconstruct, f'{module}._reconstruct'))
        entries.append((multiarray.scalar, f'{module}.scalar'))
    dtypes = getattr(np, 'dtypes', None)  # numpy >= 1.25
    if dtypes is not None:
        for name in dir(dtypes):
            cls = getattr(dtypes, name)
            if isinstance(cls, type) and issubclass(cls, np.dtype):
                entries.append((cls, f'numpy.dtypes.{name}'))
    return entries


def mmengine_safe_globals() -> List[SafeGlobal]:
    """Every global an mmengine 0.10.7 checkpoint pickles besides torch's own."""
    return [
        collections.OrderedDict,
        (_codecs.encode, '_codecs.encode'),
        HistoryBuffer,
        (restricted_getattr, 'builtins.getattr'),
        *_numpy_globals(),
    ]


def allow_mmengine_checkpoints() -> None:
    """Add :func:`mmengine_safe_globals` to torch's ``weights_only`` allow-list.

    Idempotent; a no-op on torch versions without ``add_safe_globals`` (< 2.4), which
    also do not default to ``weights_only=True``.
    """
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is not None:
        add(mmengine_safe_globals())
