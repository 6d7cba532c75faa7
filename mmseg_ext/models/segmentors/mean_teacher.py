"""Mean-teacher semi-supervised segmentor (multi-class): student + EMA teacher in one model.

Design (single dataloader, stock ``IterBasedTrainLoop``/``OptimWrapper``):

- A batch mixes labelled samples (``data_sample.gt_sem_seg`` present) and unlabelled
  samples (no ``gt_sem_seg``: their pipeline has no ``LoadAnnotations``); e.g. one
  ``ConcatDataset`` of a labelled and an unlabelled ``BaseSegDataset``.
- The teacher is a deep copy of the student kept *inside* this model as ``self.teacher``
  (``requires_grad=False``, always in eval mode). It is saved in ``state_dict`` (plain
  checkpoints hold both networks) and receives no gradient, so the optimizer never
  changes it. At the start of every training ``loss()`` call it is updated with
  :func:`update_teacher` (EMA of the student, a plain copy on the first ``start_iter``
  calls); the call counter is the buffer ``ema_step``. (For an EMA copy of an ordinary
  model, e.g. to pseudo-label with averaged weights, use mmengine's own ``EMAHook``.)
- The weak view is the preprocessed unlabelled image itself; the strong view is a
  photometric copy made here on the normalised tensor (:func:`strong_augment`:
  brightness, contrast, Gaussian noise, optional 3x3 blur), so geometry is unchanged
  and the teacher's pseudo-label is aligned with the student's prediction.
"""
from __future__ import annotations

import copy
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from mmseg.models.segmentors.base import BaseSegmentor
from mmseg.registry import MODELS
from torch import Tensor, nn

from ...utils.errors import ConfigError, InvalidArgumentError
from .delegating import PredictorDelegatingSegmentor


@torch.no_grad()
def update_teacher(teacher: nn.Module, student: nn.Module, decay: float) -> None:
    """In place: floating tensors ``t = decay * t + (1 - decay) * s``, others copied.

    Both modules must have the same parameter and buffer names and shapes.
    """
    if not 0.0 <= decay <= 1.0:
        raise InvalidArgumentError('decay', f'must be in [0, 1], got {decay}')
    t_state = dict(teacher.named_parameters())
    t_state.update(teacher.named_buffers())
    s_state = dict(student.named_parameters())
    s_state.update(student.named_buffers())
    if t_state.keys() != s_state.keys():
        missing = sorted(set(s_state) ^ set(t_state))[:3]
        raise ConfigError(f'teacher and student differ in tensors, e.g. {missing}')
    for name, t in t_state.items():
        s = s_state[name].detach()
        if t.shape != s.shape:
            raise ConfigError(f'{name}: teacher {tuple(t.shape)} vs student {tuple(s.shape)}')
        if t.is_floating_point():
            t.mul_(decay).add_(s.to(t.dtype), alpha=1.0 - decay)
        else:
            t.copy_(s)


def pseudo_labels(logits: Tensor, conf_thresh: float, ignore_index: int = 255) -> Tensor:
    """Teacher ``(N, C, H, W)`` logits -> ``(N, H, W)`` int64 argmax labels,
    ``ignore_index`` where the softmax maximum is below ``conf_thresh``."""
    conf, labels = logits.softmax(dim=1).max(dim=1)
    labels[conf < conf_thresh] = ignore_index
    return labels


def masked_cross_entropy(logits: Tensor, target: Tensor, ignore_index: int = 255) -> Tensor:
    """Mean cross-entropy of ``(N, C, H, W)`` logits over the pixels of the ``(N, H, W)``
    target that are not ``ignore_index``; 0 (with gradient) when every pixel is ignored."""
    ce = F.cross_entropy(logits, target, ignore_index=ignore_index, reduction='none')
    valid = (target != ignore_index).sum().clamp(min=1)
    return ce.sum() / valid


def strong_augment(x: Tensor, brightness: float = 0.4, contrast: float = 0.4,
                   noise_std: float = 0.1, blur_prob: float = 0.5) -> Tensor:
    """Photometric copy of normalised ``(N, 3, H, W)`` float images (units: dataset std).

    Per image: ``x' = (x - m) * c + m + b`` with ``m`` the image mean,
    ``c ~ U(1 - contrast, 1 + contrast)``, ``b ~ U(-brightness, brightness)``; then, with
    probability ``blur_prob``, a 3x3 mean blur; then Gaussian noise of std ``noise_std``.
    Uses torch's global RNG. Geometry is unchanged.
    """
    n = x.shape[0]
    shape = (n, 1, 1, 1)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    c = 1 + (torch.rand(shape, device=x.device) * 2 - 1) * contrast
    b = (torch.rand(shape, device=x.device) * 2 - 1) * brightness
    out = (x - mean) * c + mean + b
    if blur_prob > 0:
        blurred = F.avg_pool2d(out, 3, stride=1, padding=1, count_include_pad=False)
        pick = (torch.rand(shape, device=x.device) < blur_prob).to(x.dtype)
        out = pick * blurred + (1 - pick) * out
    if noise_std > 0:
        out = out + torch.randn_like(out) * noise_std
    return out


@MODELS.register_module()
class MeanTeacherSegmentor(PredictorDelegatingSegmentor):
    """Mean teacher around an ``EncoderDecoder``-like multi-class student.

    Loss: the student's own losses on the labelled samples of the batch, plus
    ``loss_unsup = unsup_weight * CE(student(strong view), teacher argmax(weak view))``
    over the unlabelled samples, pixels with teacher softmax confidence < ``conf_thresh``
    (and the batch padding) ignored.

    Args:
        segmentor: config of the student (e.g. ``EncoderDecoder``). Its
            ``data_preprocessor`` becomes this model's (unless ``data_preprocessor`` is
            given).
        unsup_weight: weight of ``loss_unsup`` (0 turns it off).
        conf_thresh: teacher confidence threshold in [0, 1].
        ema_decay: teacher EMA decay in [0, 1].
        start_iter: the first ``start_iter`` training steps copy the student.
        predict_with: ``'teacher'`` (default) or ``'student'``: the network used by
            ``predict`` (validation / test / inference).
        strong_aug: keyword arguments of :func:`strong_augment`.
    """

    def __init__(self, segmentor: dict, unsup_weight: float = 1.0, conf_thresh: float = 0.9,
                 ema_decay: float = 0.99, start_iter: int = 0, predict_with: str = 'teacher',
                 strong_aug: Optional[dict] = None, data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        segmentor = copy.deepcopy(dict(segmentor))
        student_pre = segmentor.pop('data_preprocessor', None)
        super().__init__(data_preprocessor=data_preprocessor or student_pre,
                         init_cfg=init_cfg)
        if predict_with not in ('teacher', 'student'):
            raise ConfigError(f"{type(self).__name__}: predict_with must be 'teacher' or "
                              f"'student', got {predict_with!r}")
        if not 0.0 <= ema_decay <= 1.0:
            raise ConfigError(f'{type(self).__name__}: ema_decay must be in [0, 1], got '
                              f'{ema_decay}')
        self.student = MODELS.build(segmentor)
        self.teacher = copy.deepcopy(self.student)
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.teacher.eval()
        self.unsup_weight = float(unsup_weight)
        self.conf_thresh = float(conf_thresh)
        self.ema_decay = float(ema_decay)
        self.start_iter = int(start_iter)
        self.predict_with = predict_with
        self.strong_aug = dict(strong_aug or {})
        self.register_buffer('ema_step', torch.zeros((), dtype=torch.long))
        self.ignore_index = getattr(self.student.decode_head, 'ignore_index', 255)

    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.eval()  # BatchNorm of the teacher keeps its EMA statistics
        return self

    # --- EMA ------------------------------------------------------------------------
    def ema_update(self) -> None:
        """One EMA step of the teacher (a copy while ``ema_step < start_iter`` and on the
        very first step, so that the teacher starts from the initialised student)."""
        step = int(self.ema_step)
        decay = self.ema_decay if step >= max(self.start_iter, 1) else 0.0
        update_teacher(self.teacher, self.student, decay)
        self.ema_step += 1

    # --- losses ---------------------------------------------------------------------
    @staticmethod
    def _logits(model, inputs: Tensor) -> Tensor:
        """``(N, C, H, W)`` decode-head logits resized to the input size."""
        logits = model.decode_head.forward(model.extract_feat(inputs))
        return F.interpolate(logits, size=inputs.shape[2:], mode='bilinear',
                             align_corners=model.align_corners)

    def unsup_loss(self, weak: Tensor, data_samples: List) -> Tensor:
        """``unsup_weight * masked CE`` of student(strong(weak)) vs teacher(weak) labels."""
        with torch.no_grad():
            target = pseudo_labels(self._logits(self.teacher, weak), self.conf_thresh,
                                   self.ignore_index)
            for i, ds in enumerate(data_samples):  # the batch padding is not an image
                h, w = ds.metainfo.get('img_shape', weak.shape[2:])[:2]
                target[i, h:, :] = self.ignore_index
                target[i, :, w:] = self.ignore_index
        strong = strong_augment(weak, **self.strong_aug)
        loss = masked_cross_entropy(self._logits(self.student, strong), target,
                                    self.ignore_index)
        return loss * self.unsup_weight

    def loss(self, inputs: Tensor, data_samples: List) -> Dict[str, Tensor]:
        """Losses of a mixed batch; ``inputs`` ``(N, 3, H, W)`` preprocessed images."""
        if self.training:
            self.ema_update()
        lab = [i for i, ds in enumerate(data_samples) if 'gt_sem_seg' in ds]
        unl = [i for i, ds in enumerate(data_samples) if 'gt_sem_seg' not in ds]
        losses: Dict[str, Tensor] = {}
        if lab:
            losses.update(self.student.loss(inputs[lab], [data_samples[i] for i in lab]))
        if unl:
            losses['loss_unsup'] = self.unsup_loss(inputs[unl],
                                                   [data_samples[i] for i in unl])
        else:
            losses['loss_unsup'] = inputs.new_zeros(())
        return losses

    # --- inference ------------------------------------------------------------------
    @property
    def predictor(self) -> BaseSegmentor:
        return self.teacher if self.predict_with == 'teacher' else self.student

