"""Helpers shared by the multi-label losses: valid masks and per-class weight vectors."""
from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
from mmseg.models.losses.utils import get_class_weight
from torch import Tensor

from ...utils.errors import ConfigError

ClassValues = Optional[Union[Sequence[float], str]]


def check_multilabel_shapes(pred: Tensor, target: Tensor, owner: str) -> None:
    """Raise a clear error unless ``pred`` and ``target`` are both ``(N, C, H, W)``.

    A stock label map ``(N, H, W)`` reaching a multi-label loss means the pipeline did not
    produce a ``(C, H, W)`` mask; say so instead of broadcasting silently.
    """
    if pred.dim() != 4 or tuple(pred.shape) != tuple(target.shape):
        raise ConfigError(
            f'{owner}: expects (N, C, H, W) logits and an (N, C, H, W) {{0, 1, ignore}} '
            f'target of the same shape, got logits {tuple(pred.shape)} and target '
            f'{tuple(target.shape)} (is the data pipeline packing a (C, H, W) mask?)')


def valid_and_binary_target(target: Tensor, valid_mask: Optional[Tensor],
                            ignore_index: Optional[int]) -> tuple[Tensor, Tensor]:
    """Split an ``(N, C, H, W)`` target into a float {0, 1} target and a bool valid mask.

    Args:
        target: ``(N, C, H, W)`` integer (usually ``uint8``) or float target with values
            in {0, 1} and ``ignore_index`` (255) for padding / ignored pixels.
        valid_mask: optional bool mask broadcastable to ``target`` (``(N, C, H, W)`` or
            ``(N, 1, H, W)``); ``False`` drops an entry in addition to ``ignore_index``.
        ignore_index: target value that marks ignored entries; ``None`` ignores nothing.

    Returns:
        ``(binary_target, valid)``: ``float32`` target with ignored entries set to 0 (so
        they cannot leak a value of 255 into any formula) and a bool ``(N, C, H, W)``
        valid mask.
    """
    valid = torch.ones_like(target, dtype=torch.bool)
    if ignore_index is not None:
        valid &= target != ignore_index
    if valid_mask is not None:
        valid &= valid_mask.to(torch.bool)
    binary = torch.where(valid, target, torch.zeros_like(target)).float()
    return binary, valid


def per_class_vector(values: ClassValues, num_classes: int, like: Tensor,
                     owner: str, what: str) -> Optional[Tensor]:
    """A ``(C,)`` float32 tensor on ``like``'s device from a list (or a file, as mmseg's
    ``get_class_weight`` reads it), or ``None``; a clear error on a wrong length."""
    if values is None:
        return None
    vec = torch.as_tensor(get_class_weight(values), dtype=torch.float32, device=like.device)
    vec = vec.flatten()
    if vec.numel() != num_classes:
        raise ConfigError(f'{owner}: {what} has {vec.numel()} values but the logits have '
                         f'{num_classes} classes')
    return vec
