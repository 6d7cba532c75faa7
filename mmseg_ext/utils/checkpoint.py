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

One loader for local files, on both stacks. The maintained mmengine line (onedl-mmengine)
retries a refused file with ``weights_only=False``, which runs whatever the file names.
:func:`load_from_local` is registered as mmengine's loader for local paths (the
``''`` scheme of ``CheckpointLoader``), so ``load_from``, ``resume``, ``init_cfg``
checkpoints and ``tools/test.py`` all load with ``weights_only=True`` and refuse, never
fall back. A refusal, a damaged file or a missing file is a
:class:`~mmseg_ext.utils.errors.CheckpointError` whose one-line message gives the real
reason (``unsupported global posix.system``), never the advice to turn the check off.

:func:`allow_mmengine_checkpoints` is called when ``mmseg_ext`` is imported.
"""
from __future__ import annotations

import _codecs
import collections
import os.path as osp
import pickle
import re
from typing import Any, Callable, List, Optional, Tuple, Union

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer

from .errors import CheckpointError, CheckpointNotFoundError

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
    """Allow-list mmengine's globals and make :func:`load_from_local` the loader.

    Idempotent. On torch without ``add_safe_globals`` (< 2.4, which does not default to
    ``weights_only=True`` either) only the loader is registered.
    """
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is not None:
        add(mmengine_safe_globals())
    from mmengine.runner.checkpoint import CheckpointLoader
    CheckpointLoader.register_scheme(prefixes='', loader=load_from_local, force=True)
    CheckpointLoader.register_scheme(prefixes=('http://', 'https://'), loader=load_from_http,
                                     force=True)


#: Lines of torch's refusal message that are advice, not the reason.
_TORCH_ADVICE = ('weights only load failed', 're-running', 'please file an issue',
                 'check the documentation', 'in pytorch 2.6')


def refusal_reason(exc: BaseException) -> str:
    """The reason in torch's ``weights_only`` refusal, without its advice to turn the
    protection off: ``'unsupported global posix.system'``, ``'unsupported operand 149'``."""
    text = str(exc)
    match = re.search(r'GLOBAL ([\w.]+)', text)
    if match:
        return f'unsupported global {match.group(1)}'
    for line in text.splitlines():
        line = line.strip()
        if line.startswith('WeightsUnpickler error:'):
            line = line.split(':', 1)[1].strip()
        if line and not line.lower().startswith(_TORCH_ADVICE):
            return line[:1].lower() + line[1:].rstrip('.')
    return type(exc).__name__


def check_checkpoint_file(path: str) -> None:
    """Refuse a local checkpoint path that is not a readable regular file, naming what
    it is (a URL, ``scheme://...``, passes: the loader fetches it). Never opens it.

    Raises:
        CheckpointNotFoundError: nothing is there.
        CheckpointError: a folder, FIFO, device, dangling or looping link, unreadable.
    """
    from .readers import stat_problem
    if '://' in str(path):
        return
    problem = stat_problem(path)
    if problem == 'file not found':
        raise CheckpointNotFoundError(path)
    if problem:
        raise CheckpointError(f'{path}: {problem}; a checkpoint is a regular file')


def check_checkpoint_bytes(path: str) -> None:
    """Refuse a file that cannot be a torch checkpoint from its first bytes: torch
    writes a zip archive (``PK``), older versions a pickle (protocol byte ``0x80``).
    A text file, an image or an empty file is named as such instead of reaching the
    unpickler, whose complaint (an 'unsupported operand') would mislead.

    Raises:
        CheckpointError: naming ``path`` and what it starts with.
    """
    from .readers import read_head
    head = read_head(path, 4, 'checkpoint')
    if head.startswith(b'PK') or head.startswith(b'\x80'):
        return
    what = 'is empty' if not head else f'starts with {head!r}'
    raise CheckpointError(f'{path}: not a torch checkpoint (it {what}; torch writes a '
                          'zip archive or, in old versions, a pickle)')


def load_from_local(filename: str, map_location: Optional[Any] = None) -> Any:
    """Load a checkpoint file with ``weights_only=True``; refuse, never fall back.

    Raises:
        CheckpointNotFoundError: the file does not exist.
        CheckpointError: torch refused a global or operand (the reason is named), or the
            file is empty, truncated or not a torch checkpoint.
    """
    filename = osp.expanduser(filename)
    check_checkpoint_file(filename)  # a FIFO would block torch.load
    check_checkpoint_bytes(filename)
    try:
        return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f'{filename}: refused to load: {refusal_reason(exc)} (a checkpoint may only '
            'hold tensors, containers and what mmengine writes; loading anything else '
            'could run code)') from None
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001  (the boundary: torch's unpickler raises
        # IndexError, KeyError, AttributeError... on bytes that are not a checkpoint)
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ''
        detail = f'{type(exc).__name__}: {first}' if first else type(exc).__name__
        raise CheckpointError(f'{filename}: not a complete torch checkpoint ({detail})'
                              ) from None


def load_from_http(filename: str, map_location: Optional[Any] = None, **kwargs) -> Any:
    """mmengine's URL loader (torch hub cache, ``weights_only`` kept by torch), with a
    failed download or a refused file as one :class:`CheckpointError`."""
    import urllib.error

    from mmengine.runner import checkpoint as mm_checkpoint
    try:
        return mm_checkpoint.load_from_http(filename, map_location=map_location, **kwargs)
    except urllib.error.HTTPError as exc:
        raise CheckpointError(f'{filename}: download failed (HTTP {exc.code} {exc.reason})'
                              ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, 'reason', None) or exc
        raise CheckpointError(f'{filename}: download failed ({reason})') from None
    except pickle.UnpicklingError as exc:
        raise CheckpointError(f'{filename}: refused to load: {refusal_reason(exc)}'
                              ) from None


def _strip_prefix(key: str) -> str:
    return key[len('module.'):] if key.startswith('module.') else key


def state_dict_mismatch(model: torch.nn.Module, checkpoint: Any, limit: int = 3) -> str:
    """Why ``checkpoint`` cannot be loaded strictly into ``model``; ``''`` when it can.

    Compares parameter/buffer names (a leading ``module.`` removed, as mmengine does)
    and shapes. BatchNorm's ``num_batches_tracked`` may be missing, as mmengine allows.

    Returns:
        e.g. ``'1 size mismatch (decode_head.conv_seg.weight: checkpoint 28x16x1x1,
        model 29x16x1x1)'`` or ``'312 missing keys (backbone.conv1.weight, ...);
        312 unexpected keys (...)'``.
    """
    state = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, dict) \
        else checkpoint
    if not isinstance(state, dict):
        return f'no state_dict (a {type(checkpoint).__name__})'
    state = {_strip_prefix(k): v for k, v in state.items()}
    own = model.state_dict()
    missing = [k for k in own if k not in state and 'num_batches_tracked' not in k]
    unexpected = [k for k in state if k not in own]
    mismatched = [k for k in own if k in state and hasattr(state[k], 'shape')
                  and tuple(state[k].shape) != tuple(own[k].shape)]

    def shape(t) -> str:
        return 'x'.join(str(d) for d in t.shape) or 'scalar'

    def some(keys: List[str]) -> str:
        more = ', ...' if len(keys) > limit else ''
        return ', '.join(keys[:limit]) + more

    parts = []
    if mismatched:
        shown = ', '.join(f'{k}: checkpoint {shape(state[k])}, model {shape(own[k])}'
                          for k in mismatched[:limit])
        more = ', ...' if len(mismatched) > limit else ''
        parts.append(f'{len(mismatched)} size mismatch{"es" if len(mismatched) > 1 else ""} '
                     f'({shown}{more})')
    if missing:
        parts.append(f'{len(missing)} missing key{"s" if len(missing) > 1 else ""} '
                     f'({some(missing)})')
    if unexpected:
        parts.append(f'{len(unexpected)} unexpected key{"s" if len(unexpected) > 1 else ""}'
                     f' ({some(unexpected)})')
    return '; '.join(parts)


def read_fitting_checkpoint(model: torch.nn.Module, checkpoint: str,
                            config: str = 'the config', hint: str = '') -> dict:
    """Read ``checkpoint`` and check that every key and shape fits ``model``.

    Raises:
        CheckpointError: the file cannot be loaded (refused, damaged, download failed)
            or does not fit the model (the message says what differs).
    """
    from mmengine.runner.checkpoint import CheckpointLoader
    ckpt = CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu')
    problem = state_dict_mismatch(model, ckpt)
    if problem:
        raise CheckpointError(f'{checkpoint}: does not fit the model of {config} '
                              f'({problem}){"; " + hint if hint else ""}')
    return ckpt


def load_into_model(model: torch.nn.Module, checkpoint: str, config: str = 'the config') -> dict:
    """Load ``checkpoint`` into a bare ``model`` when it fits; return the checkpoint."""
    from mmengine.runner.checkpoint import load_state_dict
    ckpt = read_fitting_checkpoint(model, checkpoint, config)
    state = ckpt.get('state_dict', ckpt)
    load_state_dict(model, {k[len('module.'):] if k.startswith('module.') else k: v
                            for k, v in state.items()}, strict=False, logger='silent')
    return ckpt


def model_class_count(model: Optional[torch.nn.Module]) -> Optional[int]:
    """How many classes a built segmentor predicts (its ``num_classes``: a stock
    one-channel binary head counts 2), None when the model does not say."""
    count = getattr(model, 'num_classes', None) if model is not None else None
    return count if isinstance(count, int) and not isinstance(count, bool) \
        and count > 0 else None


def checkpoint_class_names(checkpoint: Optional[dict], path: str = 'the checkpoint',
                           model: Optional[torch.nn.Module] = None) -> Tuple[str, ...]:
    """The classes a checkpoint was trained on (``meta.dataset_meta.classes``, which
    mmengine saves), ``()`` when it does not say (no meta, not dicts, no list or an
    empty one: another writer's meta).

    A list it gives is checked when it is read, before any image is predicted: it is a
    list of distinct class names (:func:`~mmseg_ext.utils.class_names.class_list_problem`:
    text, no white space at either end), one per class of ``model`` (the segmentor its
    weights were loaded into) when given. Otherwise the config, an image or the output
    folder would be blamed for it later, or numbers would name the classes.

    Raises:
        CheckpointError: ``'<path>: meta.dataset_meta.classes ...'`` and the problem.
    """
    from .class_names import class_list_problem
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    dataset_meta = meta.get('dataset_meta') if isinstance(meta, dict) else None
    classes = dataset_meta.get('classes') if isinstance(dataset_meta, dict) else None
    if not isinstance(classes, (list, tuple)) or not classes:
        return ()
    where = f'{path}: meta.dataset_meta.classes'
    problem = class_list_problem(list(classes))
    if problem:
        raise CheckpointError(f'{where}: {problem}')
    count = model_class_count(model)
    if count is not None and count != len(classes):
        shown = ', '.join(classes[:6]) + (', ...' if len(classes) > 6 else '')
        raise CheckpointError(f'{where} names {len(classes)} classes ({shown}), but its '
                              f'weights predict {count}')
    return tuple(classes)
