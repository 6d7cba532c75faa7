"""Which model components need mmcv's compiled ops, and a check before a model is built.

The default install (onedl-mmcv built without ops) runs every architecture of the shipped
configs. A few of mmseg's components need a compiled op (``mmcv._ext``); without it they
fail deep inside mmcv or mmseg (``RuntimeError: Please install onedl-mmcv ...``, an
import error, or an ``AttributeError`` on ``None``). :func:`missing_ops` reads a model
config and names each such component with the op it needs, so a tool can stop with one
line before anything is built.
"""
from __future__ import annotations

import importlib
from typing import Any, Dict, Iterator, List, Tuple

#: component ``type`` -> the compiled op(s) it needs.
OPS_BY_TYPE: Dict[str, str] = {
    'PSAHead': 'PSAMask',
    'CCHead': 'CrissCrossAttention',
    'PointHead': 'point_sample',
    'SideAdapterCLIPHead': 'point_sample',
    'MaskFormerHead': 'point_sample',
    'Mask2FormerHead': 'MultiScaleDeformableAttention, point_sample',
    'MSDeformAttnPixelDecoder': 'MultiScaleDeformableAttention',
    'DCN': 'DeformConv2d',
    'DCNv2': 'ModulatedDeformConv2d',
    'CARAFE': 'CARAFE',
    'CARAFEPack': 'CARAFE',
}

#: How to get the ops, for the error message.
HOW_TO_GET_OPS = ('install mmcv with compiled ops: STACK=openmmlab bash tools/install.sh '
                  '(upstream stack), or build onedl-mmcv against your torch: '
                  'pip install --no-build-isolation --no-binary onedl-mmcv '
                  '--force-reinstall --no-deps onedl-mmcv')


def has_compiled_ops() -> bool:
    """Whether ``mmcv._ext`` (the compiled ops) imports."""
    try:
        importlib.import_module('mmcv._ext')
    except ImportError:
        return False
    return True


def _walk(node: Any, path: str) -> Iterator[Tuple[str, dict]]:
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _walk(value, f'{path}.{key}')
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _walk(value, f'{path}[{i}]')


def missing_ops(model_cfg: Any, root: str = 'model') -> List[Tuple[str, str, str]]:
    """Components of ``model_cfg`` that need compiled ops.

    Args:
        model_cfg: the ``model`` entry of a config (nested dicts and lists).
        root: the name of ``model_cfg`` in the messages.

    Returns:
        ``(config path, component, ops)`` per component, e.g.
        ``('model.decode_head', 'PSAHead', 'PSAMask')``; a ResNet with
        ``dcn=dict(type='DCN', ...)`` is reported by its ``dcn`` entry.
    """
    found = []
    for path, node in _walk(model_cfg, root):
        kind = node.get('type')
        if isinstance(kind, str) and kind.split('.')[-1] in OPS_BY_TYPE:
            found.append((path, kind, OPS_BY_TYPE[kind.split('.')[-1]]))
    return found
