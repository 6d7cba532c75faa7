"""Weak-to-strong consistency (UniMatch style): one network learns its own confident
predictions on unlabelled images across perturbations.

Yang et al., "Revisiting Weak-to-Strong Consistency in Semi-Supervised Semantic
Segmentation" (CVPR 2023). Unlike the mean teacher there is no second network: the
student's prediction on the *weak* view of an unlabelled image (the preprocessed image
as the pipeline loaded it, light geometric augmentation only) is the pseudo-label,
taken without gradient, and the same student learns it where it is confident:

- on one or two *strong* views: :func:`~.mean_teacher.strong_augment` (brightness,
  contrast, blur, noise on the normalised tensor) and then CutMix between the
  unlabelled images of the batch (:func:`draw_cutmix_boxes`, :func:`paste_boxes`: the
  same box moves the image pixels and their pseudo-labels);
- on the *feature-perturbed* weak view: channel dropout (``F.dropout2d``) on every
  encoder feature map fed to the decode head.

Pseudo-labels and losses:

- multi-class (softmax): the argmax where the largest softmax probability is at least
  ``conf_thresh``, cross-entropy (:func:`~.mean_teacher.pseudo_labels`,
  :func:`~.mean_teacher.masked_cross_entropy`);
- multi-label (sigmoid): per class, ``p > 0.5`` where ``max(p, 1 - p) >= conf_thresh``,
  binary cross-entropy per class (:func:`multilabel_pseudo_labels`,
  :func:`masked_bce`). A pixel may be confident for one class and not for another.

Entries that are not confident and the batch padding carry ``ignore_index`` (255) in
the pseudo-label maps. Loss weights (``unsup_weight`` split between the streams, see
:class:`WeakToStrongSegmentor`) follow the paper: labelled 1, feature stream 1/2, the
two strong views 1/4 each.

A batch mixes labelled samples (``gt_sem_seg`` present) and unlabelled ones (no
``gt_sem_seg``); :class:`~mmseg_ext.datasets.samplers.LabelledRatioBatchSampler` gives
every batch the same number of each. Checkpoints hold the student under ``student.``;
the wrapper config itself serves validation, ``tools/test.py``, ``tools/inference.py``
and TTA, and :func:`student_state_dict` gives the plain student's weights.
"""
from __future__ import annotations

import copy
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmseg.models.segmentors.base import BaseSegmentor
from mmseg.registry import MODELS
from torch import Tensor

from ...utils.errors import CheckpointError, ConfigError
from ..data_preprocessors.batch_augments import SegCutMix
from .delegating import PredictorDelegatingSegmentor
from .mean_teacher import masked_cross_entropy, pseudo_labels, strong_augment

Box = Tuple[int, int, int, int]  # top, bottom, left, right

#: how the unlabelled losses are averaged (see :class:`WeakToStrongSegmentor`)
NORMS = ('confident', 'valid')
#: the paper's CutMix: half of the images get a box of 2-40% of their area
PAPER_CUTMIX = dict(prob=0.5, area_range=(0.02, 0.4), ratio_range=(0.3, 1 / 0.3))


def multilabel_pseudo_labels(logits: Tensor, conf_thresh: float,
                             ignore_index: int = 255) -> Tensor:
    """Per-class pseudo-labels of ``(N, C, H, W)`` sigmoid logits.

    Returns:
        ``(N, C, H, W)`` uint8: 1 where ``p > 0.5``, 0 where ``p <= 0.5``, and
        ``ignore_index`` where ``max(p, 1 - p) < conf_thresh`` (``p = sigmoid``).
    """
    p = logits.float().sigmoid()
    target = (p > 0.5).to(torch.uint8)
    target[torch.maximum(p, 1 - p) < conf_thresh] = ignore_index
    return target


def masked_bce(logits: Tensor, target: Tensor, ignore_index: int = 255,
               denominator: Optional[Tensor] = None) -> Tensor:
    """Binary cross-entropy of ``(N, C, H, W)`` logits against a ``(N, C, H, W)`` {0, 1,
    ``ignore_index``} target, summed over the entries that are not ignored and divided
    by their number (or by ``denominator``); 0 (with gradient) when none is kept."""
    keep = target != ignore_index
    bce = F.binary_cross_entropy_with_logits(logits, (target == 1).to(logits.dtype),
                                             reduction='none')
    total = (bce * keep).sum()
    count = keep.sum() if denominator is None else denominator
    return total / count.clamp(min=1)


def draw_cutmix_boxes(n: int, height: int, width: int, cutmix: SegCutMix
                      ) -> Dict[int, Box]:
    """The CutMix boxes of a batch of ``n`` images: image ``i`` is chosen with
    probability ``cutmix.prob`` and gets a box drawn by ``cutmix.box`` (torch's global
    generator, as :class:`SegCutMix`). Nothing is mixed in a batch of one."""
    if n < 2:
        return {}
    chosen = torch.rand(n) < cutmix.prob
    return {i: cutmix.box(height, width) for i in torch.nonzero(chosen).flatten().tolist()}


def paste_boxes(tensors: Sequence[Tensor], boxes: Mapping[int, Box]) -> List[Tensor]:
    """Copies of batch-first tensors (``(N, ..., H, W)``, one spatial size) in which, for
    each ``i`` in ``boxes``, the box of sample ``i`` holds sample ``(i + 1) % N``'s
    values of the *unmixed* tensor: images, pseudo-labels and masks move together."""
    out = [t.clone() for t in tensors]
    for i, (top, bottom, left, right) in boxes.items():
        for src, dst in zip(tensors, out):
            j = (i + 1) % src.shape[0]
            dst[i, ..., top:bottom, left:right] = src[j, ..., top:bottom, left:right]
    return out


def student_state_dict(state_dict: Mapping[str, Tensor]) -> Dict[str, Tensor]:
    """The student's weights of a weak-to-strong checkpoint's ``state_dict`` (keys
    ``student.<name>``), keyed as the plain student config's model expects them.

    Raises:
        CheckpointError: no key starts with ``student.``.
    """
    prefix = 'student.'
    out = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
    if not out:
        raise CheckpointError('the state dict holds no student.* weights (not a '
                              'weak-to-strong checkpoint)')
    return out


@MODELS.register_module()
class WeakToStrongSegmentor(PredictorDelegatingSegmentor):
    """Weak-to-strong consistency around a multi-class (softmax) ``EncoderDecoder``-like
    student. :class:`MultiLabelWeakToStrongSegmentor` is the sigmoid counterpart.

    Loss of a mixed batch: the student's own losses on the labelled samples (weight 1),
    plus, on the unlabelled ones, ``loss_unsup_s1`` (and ``loss_unsup_s2``) on the strong
    views and ``loss_unsup_fp`` on the feature-perturbed weak view, all against the weak
    view's pseudo-labels. Weights: with ``feature_perturbation``, ``fp_share *
    unsup_weight`` for the feature stream and the rest split equally between the
    ``num_strong`` strong views (the paper: 0.5, and 0.25 + 0.25); without it the strong
    views share ``unsup_weight``. ``unsup_conf_ratio`` (logged, not a loss) is the share
    of the unlabelled pixels (multi-label: pixel-class entries) that pass
    ``conf_thresh``.

    The weak view is predicted in training mode, as in the paper (BatchNorm uses batch
    statistics), once per step; with ``feature_perturbation`` the same encoder pass
    serves the pseudo-labels (detached) and the dropout stream.

    Args:
        segmentor: config of the student. Its ``data_preprocessor`` becomes this
            model's (unless ``data_preprocessor`` is given); batch augmentations there
            are refused (they would mix labelled and unlabelled images; CutMix is done
            here, on the unlabelled images only).
        conf_thresh: confidence threshold in [0, 1] (paper: 0.95).
        unsup_weight: total weight of the unlabelled losses (0 turns them off).
        num_strong: strong views per unlabelled image, 1 or 2 (paper: 2).
        feature_perturbation: whether the feature-dropout stream is on (paper: on).
        fp_dropout: channel-dropout probability of that stream (paper: 0.5).
        fp_share: share of ``unsup_weight`` given to that stream, in (0, 1).
        cutmix: :class:`SegCutMix` arguments for the strong views (``prob``,
            ``area_range``, ``ratio_range``; default :data:`PAPER_CUTMIX`); ``None``
            turns CutMix off.
        strong_aug: keyword arguments of :func:`~.mean_teacher.strong_augment`.
        unsup_norm: ``'confident'`` averages each unlabelled loss over the confident
            entries; ``'valid'`` (the paper's choice) divides the same sum by all
            non-padding entries, so few confident pixels give a small loss.
        train_cfg, test_cfg: when given, replace the student's.
    """

    multi_label = False

    def __init__(self, segmentor: dict, conf_thresh: float = 0.95,
                 unsup_weight: float = 1.0, num_strong: int = 2,
                 feature_perturbation: bool = True, fp_dropout: float = 0.5,
                 fp_share: float = 0.5, cutmix: Optional[dict] = PAPER_CUTMIX,
                 strong_aug: Optional[dict] = None, unsup_norm: str = 'confident',
                 data_preprocessor: Optional[dict] = None,
                 train_cfg: Optional[dict] = None, test_cfg: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        name = type(self).__name__
        segmentor = copy.deepcopy(dict(segmentor))
        student_pre = segmentor.pop('data_preprocessor', None)
        if train_cfg is not None:
            segmentor['train_cfg'] = train_cfg
        if test_cfg is not None:
            segmentor['test_cfg'] = test_cfg
        super().__init__(data_preprocessor=data_preprocessor or student_pre,
                         init_cfg=init_cfg)
        if getattr(self.data_preprocessor, 'augments', None):
            raise ConfigError(f'{name}: the data preprocessor has batch_augments, which '
                              'would mix labelled and unlabelled images; CutMix of the '
                              'unlabelled images is the cutmix argument of the segmentor')
        if not 0.0 <= conf_thresh <= 1.0:
            raise ConfigError(f'{name}: conf_thresh must be in [0, 1], got {conf_thresh}')
        if unsup_weight < 0:
            raise ConfigError(f'{name}: unsup_weight must be >= 0, got {unsup_weight}')
        if num_strong not in (1, 2):
            raise ConfigError(f'{name}: num_strong must be 1 or 2, got {num_strong}')
        if not 0.0 <= fp_dropout < 1.0:
            raise ConfigError(f'{name}: fp_dropout must be in [0, 1), got {fp_dropout}')
        if not 0.0 < fp_share < 1.0:
            raise ConfigError(f'{name}: fp_share must be in (0, 1), got {fp_share}')
        if unsup_norm not in NORMS:
            raise ConfigError(f'{name}: unsup_norm must be one of {NORMS}, got '
                              f'{unsup_norm!r}')
        self.student = MODELS.build(segmentor)
        student_multi_label = bool(getattr(self.student, 'multi_label', False))
        if student_multi_label != self.multi_label:
            other = 'MultiLabelWeakToStrongSegmentor' if student_multi_label else \
                'WeakToStrongSegmentor'
            raise ConfigError(f'{name}: the student {type(self.student).__name__} is '
                              f'{"" if student_multi_label else "not "}multi-label; use '
                              f'{other}')
        self.conf_thresh = float(conf_thresh)
        self.num_strong = int(num_strong)
        self.feature_perturbation = bool(feature_perturbation)
        self.fp_dropout = float(fp_dropout)
        self.cutmix = None if cutmix is None else SegCutMix(**cutmix)
        self.strong_aug = dict(strong_aug or {})
        self.unsup_norm = unsup_norm
        fp_weight = fp_share * unsup_weight if self.feature_perturbation else 0.0
        self.weights = dict(fp=fp_weight,
                            strong=(unsup_weight - fp_weight) / self.num_strong)
        self.ignore_index = getattr(self.student.decode_head, 'ignore_index', 255)

    # --- pseudo-labels and losses ---------------------------------------------------
    def _logits(self, feats, size: Tuple[int, int]) -> Tensor:
        """``(N, C, H, W)`` decode-head logits of encoder features, resized to ``size``
        (the input's ``(H, W)``)."""
        logits = self.student.decode_head.forward(feats)
        return F.interpolate(logits, size=size, mode='bilinear',
                             align_corners=self.student.align_corners)

    def pseudo_targets(self, logits: Tensor, valid: Tensor) -> Tensor:
        """Pseudo-labels of weak-view logits with the padding (``valid`` False,
        ``(N, H, W)``) and unconfident entries set to ``ignore_index``: ``(N, H, W)``
        int64 (multi-class) or ``(N, C, H, W)`` uint8 (multi-label)."""
        if self.multi_label:
            target = multilabel_pseudo_labels(logits, self.conf_thresh, self.ignore_index)
            target[~valid[:, None].expand_as(target)] = self.ignore_index
        else:
            target = pseudo_labels(logits, self.conf_thresh, self.ignore_index)
            target[~valid] = self.ignore_index
        return target

    def pseudo_loss(self, logits: Tensor, target: Tensor, valid: Tensor) -> Tensor:
        """The unlabelled loss of ``logits`` against a pseudo-label map, averaged as
        ``unsup_norm`` says (``valid``: ``(N, H, W)`` non-padding pixels)."""
        if self.unsup_norm == 'valid':
            per_pixel = logits.shape[1] if self.multi_label else 1
            denominator = valid.sum() * per_pixel
        else:
            denominator = None
        if self.multi_label:
            return masked_bce(logits, target, self.ignore_index, denominator)
        if denominator is None:
            return masked_cross_entropy(logits, target, self.ignore_index)
        ce = F.cross_entropy(logits, target, ignore_index=self.ignore_index,
                             reduction='none')
        return ce.sum() / denominator.clamp(min=1)

    @staticmethod
    def valid_pixels(shape: Tuple[int, int, int], data_samples: Sequence) -> Tensor:
        """``(N, H, W)`` bool: the pixels of each sample inside its ``img_shape`` (the
        data preprocessor pads the batch at the bottom and right)."""
        n, height, width = shape
        valid = torch.zeros(shape, dtype=torch.bool)
        for i, ds in enumerate(data_samples):
            h, w = ds.metainfo.get('img_shape', (height, width))[:2]
            valid[i, :h, :w] = True
        return valid

    def unsup_losses(self, weak: Tensor, data_samples: List) -> Dict[str, Tensor]:
        """The weighted unlabelled losses of ``weak`` ``(N, 3, H, W)`` preprocessed
        images and ``unsup_conf_ratio``."""
        n, size = weak.shape[0], tuple(weak.shape[2:])
        valid = self.valid_pixels((n, *size), data_samples).to(weak.device)
        losses: Dict[str, Tensor] = {}
        if self.feature_perturbation:
            feats = self.student.extract_feat(weak)
            with torch.no_grad():
                target = self.pseudo_targets(self._logits(feats, size).detach(), valid)
            dropped = [F.dropout2d(f, self.fp_dropout, training=True) for f in feats]
            losses['loss_unsup_fp'] = self.weights['fp'] * self.pseudo_loss(
                self._logits(dropped, size), target, valid)
        else:
            with torch.no_grad():
                target = self.pseudo_targets(
                    self._logits(self.student.extract_feat(weak), size), valid)
        for k in range(1, self.num_strong + 1):
            strong = strong_augment(weak, **self.strong_aug)
            boxes = {} if self.cutmix is None else \
                draw_cutmix_boxes(n, *size, self.cutmix)
            strong, mixed, mixed_valid = paste_boxes([strong, target, valid], boxes)
            logits = self._logits(self.student.extract_feat(strong), size)
            losses[f'loss_unsup_s{k}'] = self.weights['strong'] * self.pseudo_loss(
                logits, mixed, mixed_valid)
        with torch.no_grad():
            kept = (target != self.ignore_index).sum().float()
            entries = valid.sum() * (target.shape[1] if self.multi_label else 1)
            losses['unsup_conf_ratio'] = kept / entries.clamp(min=1)
        return losses

    def loss(self, inputs: Tensor, data_samples: List) -> Dict[str, Tensor]:
        """Losses of a mixed batch; ``inputs`` ``(N, 3, H, W)`` preprocessed images."""
        lab = [i for i, ds in enumerate(data_samples) if 'gt_sem_seg' in ds]
        unl = [i for i, ds in enumerate(data_samples) if 'gt_sem_seg' not in ds]
        losses: Dict[str, Tensor] = {}
        if lab:
            losses.update(self.student.loss(inputs[lab], [data_samples[i] for i in lab]))
        if unl:
            losses.update(self.unsup_losses(inputs[unl], [data_samples[i] for i in unl]))
        else:
            zero = inputs.new_zeros(())
            names = [f'loss_unsup_s{k}' for k in range(1, self.num_strong + 1)]
            names += ['loss_unsup_fp'] if self.feature_perturbation else []
            losses.update({name: zero for name in names}, unsup_conf_ratio=zero)
        return losses

    # --- inference: the student -----------------------------------------------------
    @property
    def predictor(self) -> BaseSegmentor:
        return self.student


@MODELS.register_module()
class MultiLabelWeakToStrongSegmentor(WeakToStrongSegmentor):
    """:class:`WeakToStrongSegmentor` around a multi-label (sigmoid) student such as
    ``MultiLabelEncoderDecoder``: pseudo-labels and their masks per class, binary
    cross-entropy per class. Tools and the TTA merge see ``multi_label = True`` and the
    student's per-class thresholds."""

    multi_label = True

    def class_names(self) -> Optional[List[str]]:
        return self.student.class_names()

    def class_thresholds(self, device='cpu') -> Tensor:
        return self.student.class_thresholds(device)
