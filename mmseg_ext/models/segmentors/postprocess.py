"""Sigmoid + per-class threshold post-processing shared by the multi-label segmentors.

Stock ``BaseSegmentor.postprocess_result`` takes an argmax over the channels when
C > 1, which is wrong when a pixel may belong to several classes. The mixin here keeps
stock's geometry (remove padding, undo flip, resize to ``ori_shape``) and replaces the
decision by ``sigmoid(logit_c) > threshold_c`` for every class independently.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional, Sequence, Union

import torch
from mmengine.config import ConfigDict
from mmengine.structures import PixelData
from mmseg.models.utils import resize
from mmseg.structures import SegDataSample
from mmseg.utils import OptSampleList, SampleList
from torch import Tensor, nn

from ...utils.errors import ConfigError
from ...utils.per_class import per_class_values

ThresholdSpec = Union[None, float, Sequence[float], Mapping]

DEFAULT_THRESHOLD = 0.5


def resolve_thresholds(threshold: ThresholdSpec, num_classes: int,
                       class_names: Optional[Sequence[str]] = None) -> list[float]:
    """Per-class probability thresholds from ``test_cfg.threshold``.

    Args:
        threshold: ``None`` (0.5 for all), one number for all classes, a list of
            ``num_classes`` numbers in class order, or ``{class_name: t}`` (classes not
            named keep 0.5; names need ``class_names``).
        num_classes: C, the number of logits.
        class_names: the dataset's class names in channel order.

    Returns:
        ``num_classes`` floats in [0, 1].

    Raises:
        ConfigError: wrong length, unknown class name, missing class names, value
            outside [0, 1] (a ``ValueError``).
    """
    if isinstance(threshold, Mapping):
        if class_names is None:
            raise ConfigError('test_cfg.threshold names classes but the model has no class '
                              'names: set model.dataset_meta (mmseg.apis.init_model does) '
                              'or test_cfg.classes')
        if len(class_names) != num_classes:
            raise ConfigError(f'{len(class_names)} class names for a model with '
                              f'{num_classes} output channels')
    names = list(class_names) if class_names is not None and \
        len(class_names) == num_classes else [str(i) for i in range(num_classes)]
    values = per_class_values(threshold, names, 'test_cfg.threshold')
    return [float(values.get(name, DEFAULT_THRESHOLD)) for name in names]


def class_order_problem(given: Sequence[str], trained: Sequence[str], what: str) -> str:
    """``''`` when ``given`` (``test_cfg.classes``) is ``trained`` in the same order,
    else the first difference in words: a threshold given by name would otherwise be
    applied to another channel (``what`` names the list ``trained`` is)."""
    given = tuple(str(c) for c in given)
    trained = tuple(str(c) for c in trained)
    if given == trained:
        return ''
    if len(given) != len(trained):
        return (f'model.test_cfg.classes names {len(given)} classes, {what} '
                f'{len(trained)}')
    k = next(i for i, (a, b) in enumerate(zip(given, trained)) if a != b)
    return (f'model.test_cfg.classes is not {what} in order: class {k} is {given[k]!r} '
            f'there but {trained[k]!r} in {what}, so a threshold given by name would '
            'apply to another channel (test_cfg.classes is not needed when the names '
            'are known)')


def set_class_names(model: nn.Module, classes: Sequence[str], config: str) -> None:
    """Give ``model`` (a bare segmentor) the class names of its output channels as
    ``model.dataset_meta['classes']`` (what ``mmseg.apis.init_model`` sets from the
    checkpoint), so thresholds given by class name resolve without
    ``test_cfg.classes``; a multi-label model's thresholds are resolved now, so a
    ``test_cfg.classes`` in another order is refused before any image is predicted.

    Raises:
        ConfigError: naming ``config``: the thresholds do not resolve against
            ``classes`` (another ``test_cfg.classes``, an unknown class name).
    """
    meta = getattr(model, 'dataset_meta', None)
    meta = dict(meta) if isinstance(meta, Mapping) else {}
    meta['classes'] = tuple(str(c) for c in classes)
    model.dataset_meta = meta
    if callable(getattr(model, 'class_thresholds', None)):
        try:
            model.class_thresholds()
        except ConfigError as exc:
            raise ConfigError(f'{config}: {exc}') from None


def logits_to_original(seg_logits: Tensor, img_meta: dict, align_corners: bool) -> Tensor:
    """One image's ``(1, C, H, W)`` logits back to its original geometry, ``(C, H0, W0)``.

    As stock ``postprocess_result``: crop away the data preprocessor's padding
    (``img_padding_size`` or ``padding_size``: left, right, top, bottom), un-flip
    (``flip``/``flip_direction``), then resize bilinearly to ``ori_shape``.
    """
    _, _, height, width = seg_logits.shape
    padding = img_meta.get('img_padding_size', img_meta.get('padding_size', [0] * 4))
    left, right, top, bottom = (int(v) for v in padding)
    logits = seg_logits[:, :, top:height - bottom, left:width - right]
    if img_meta.get('flip', False):
        direction = img_meta.get('flip_direction', None)
        if direction == 'horizontal':
            logits = logits.flip(dims=(3,))
        elif direction == 'vertical':
            logits = logits.flip(dims=(2,))
        else:
            raise ConfigError(f'flip_direction {direction!r} is not horizontal/vertical')
    logits = resize(logits, size=img_meta['ori_shape'], mode='bilinear',
                    align_corners=align_corners, warning=False)
    return logits.squeeze(0)


def _heads(module: Optional[nn.Module]) -> list[nn.Module]:
    if module is None:
        return []
    return list(module) if isinstance(module, nn.ModuleList) else [module]


class MultiLabelPostProcessMixin:
    """Multi-label ``postprocess_result`` and head checks for ``EncoderDecoder`` subclasses.

    ``test_cfg`` keys read here: ``threshold`` (see :func:`resolve_thresholds`, default
    0.5) and, for thresholds given by class name when ``model.dataset_meta`` is not set,
    ``classes``. ``mode``/``crop_size``/``stride`` keep their stock meaning.

    Each output sample holds ``seg_logits`` (float ``(C, H0, W0)`` logits at the original
    size, not probabilities) and ``pred_sem_seg`` (``uint8`` ``(C, H0, W0)`` in {0, 1}).
    """

    #: Tools check ``getattr(model, 'multi_label', False)`` to choose sigmoid over softmax.
    multi_label = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.test_cfg is None:
            self.test_cfg = ConfigDict(mode='whole')
        elif not isinstance(self.test_cfg, ConfigDict):
            self.test_cfg = ConfigDict(self.test_cfg)
        for head in _heads(self.decode_head) + _heads(getattr(self, 'auxiliary_head', None)):
            if not getattr(head, 'multi_label', False):
                raise ConfigError(f'{type(self).__name__}: {type(head).__name__} is not a '
                                'multi-label head; use the MultiLabel* heads of mmseg_ext')
            if type(self.backbone).__name__ == 'TimmEncoder':
                from ..backbones.timm_encoder import check_head_fits
                check_head_fits(self.backbone, head, f'{type(head).__name__}')
        threshold = self.test_cfg.get('threshold', None)
        if not isinstance(threshold, Mapping) or 'classes' in self.test_cfg:
            resolve_thresholds(threshold, self.out_channels,
                               self.test_cfg.get('classes', None))  # fail at build time

    def class_names(self) -> Optional[list[str]]:
        """Class names from ``model.dataset_meta`` or else ``test_cfg.classes``.

        Raises:
            ConfigError: both are set and differ (the thresholds would move to other
                channels).
        """
        meta = getattr(self, 'dataset_meta', None)
        trained = meta.get('classes', None) if isinstance(meta, Mapping) else None
        given = self.test_cfg.get('classes', None)
        if trained and given:
            problem = class_order_problem(given, trained,
                                          "the model's class list (dataset_meta)")
            if problem:
                raise ConfigError(problem)
        names = trained or given
        return None if names is None else [str(c) for c in names]

    def class_thresholds(self, device: Union[str, torch.device] = 'cpu') -> Tensor:
        """Float ``(C,)`` probability thresholds resolved from ``test_cfg.threshold``."""
        values = resolve_thresholds(self.test_cfg.get('threshold', None), self.out_channels,
                                    self.class_names())
        return torch.tensor(values, dtype=torch.float32, device=device)

    def postprocess_result(self, seg_logits: Tensor,
                           data_samples: OptSampleList = None) -> SampleList:
        """``(N, C, H, W)`` logits -> samples with ``seg_logits`` and ``pred_sem_seg``.

        Without ``data_samples`` the logits are kept at their size (as stock does).
        """
        batch_size = seg_logits.shape[0]
        thresholds = self.class_thresholds(seg_logits.device).view(-1, 1, 1)
        only_prediction = data_samples is None
        if only_prediction:
            data_samples = [SegDataSample() for _ in range(batch_size)]
        for i in range(batch_size):
            if only_prediction:
                logits = seg_logits[i]
            else:
                logits = logits_to_original(seg_logits[i:i + 1], data_samples[i].metainfo,
                                            self.align_corners)
            pred = (logits.sigmoid() > thresholds).to(torch.uint8)
            data_samples[i].set_data({'seg_logits': PixelData(data=logits),
                                      'pred_sem_seg': PixelData(data=pred)})
        return data_samples
