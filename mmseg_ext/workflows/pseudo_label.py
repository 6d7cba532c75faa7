"""Pseudo-labels from a probability folder, written in the data set's own format.

Two output formats:

``handbone-json``
    ``OUT/outputs_json/<key>.json`` per accepted image in the competition schema (every
    top-level key the annotation tool writes), one ``poly_seg`` annotation per external
    contour of each predicted class mask (``p > t_c`` at the original size). Contours
    come from ``cv2.findContours(RETR_EXTERNAL, CHAIN_APPROX_SIMPLE)`` (optionally
    simplified by ``cv2.approxPolyDP(epsilon)``); they run through the mask's boundary
    pixels, so filling them with the project's rasteriser (``cv2.fillPoly``) gives the
    mask back. **Holes are filled** (the format has no holes; a hole inside one bone
    becomes foreground), and contours with fewer than 3 distinct points (1-2 pixel
    specks) are written with repeated points, or dropped with ``min_area``.
``label-png``
    ``OUT/<key>.png`` per accepted image: ``uint8`` argmax label map (multi-class
    probabilities), ``255`` (ignore) where the winning probability is below
    ``pixel_conf``.

Confidence filtering (``p`` = stored probability, resized to the original size):

* multi-class, per pixel: ``max_c p < pixel_conf`` -> 255 (ignored by the loss).
* multi-label, per pixel: a pixel is *uncertain* when some class has
  ``1 - pixel_conf < p < pixel_conf`` (``pixel_conf`` in (0.5, 1]). JSON polygons
  cannot mark pixels as ignored, so the image is rejected when the uncertain pixels
  exceed ``max_uncertain`` times the pixels that are foreground or uncertain.
  ``--format label-png`` is refused for multi-label data.
* per image: ``mean_conf`` is, multi-class, the mean over pixels of ``max_c p``;
  multi-label, the mean of ``p_c`` over the predicted pixels of each class (all
  classes pooled; an image with no predicted pixel has mean confidence 0). Images with
  ``mean_conf < min_mean_conf`` are rejected.

Every image gets a line in ``OUT/pseudo_labels.json`` (accepted, mean confidence,
uncertain fraction, and the image's SHA-256 where its probability file records it, which
:func:`~mmseg_ext.io.pseudo_report.check_pseudo_images` compares with the images a
training pairs them with); ``OUT/accepted.txt`` lists the accepted images relative to the
inference image dir, one a line, usable as a data set's ``ann_file`` (hand-bone JSON from
inference on a data root: relative to its ``DCM/``, as the labels under ``outputs_json/``
are, :func:`~mmseg_ext.io.pseudo_report.listed_image`).
"""
from __future__ import annotations

import hashlib
import math
import os.path as osp
from dataclasses import dataclass
from typing import Iterable, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..inference.probmaps import resize_channel, resize_probs
from ..io.atomic import atomic_write_text
from ..io.ground_truth import GroundTruth, check_ignore_index
from ..io.hand_bone_json import hand_bone_document, write_hand_bone_json
from ..io.image_write import write_image
from ..io.images import check_label_capacity
from ..io.paths import check_output_apart
from ..io.prob_file import dequantize
from ..io.prob_meta import check_same_size
from ..io.probs import ProbFolder, check_thresholds_apply
from ..io.pseudo_report import REPORT, label_file, listed_image
from ..io.staged_dir import StagedDir
from ..utils.errors import DataError, InvalidArgumentError
from ..utils.per_class import PerClassSpec, per_class_option
from ..utils.readers import dumps_json, read_json

FORMATS = ('handbone-json', 'label-png')


# ------------------------------------------------------------------ polygons
def _triangle_within(contour: np.ndarray) -> np.ndarray:
    """Three points of an ``(N, 1, 2)`` contour that ``cv2.approxPolyDP`` shrank to fewer
    (a component thinner than its tolerance): a point, the contour point farthest from
    it, and the one farthest from the line through both. Every contour point lies within
    the tolerance of the first two's segment, and so of the triangle, which therefore
    honours the tolerance with the fewest points a polygon may have."""
    pts = contour.reshape(-1, 2).astype(np.float64)
    a = pts[0]
    b = pts[int(np.argmax(((pts - a) ** 2).sum(1)))]
    ab = b - a
    off_line = np.abs(ab[0] * (pts[:, 1] - a[1]) - ab[1] * (pts[:, 0] - a[0]))
    f = pts[int(np.argmax(off_line))]
    return np.array([a, b, f], np.int32).reshape(-1, 1, 2)


def mask_to_polygons(mask: np.ndarray, epsilon: float = 0.0, min_area: int = 0
                     ) -> List[np.ndarray]:
    """External contours of a ``(H, W)`` bool mask as ``(N, 2)`` int ``(x, y)`` polygons.

    Args:
        epsilon: ``cv2.approxPolyDP`` tolerance in pixels (0: keep the
            ``CHAIN_APPROX_SIMPLE`` vertices, which reproduce the mask when filled). A
            component thinner than the tolerance, which ``approxPolyDP`` shrinks to a
            line, becomes a triangle of its own contour points (within the tolerance),
            never its full contour.
        min_area: drop components with fewer pixels than this (counted by filling the
            contour, holes included).

    Returns:
        one polygon per external contour, each with at least 3 points (a 1-2 pixel
        contour repeats its points).
    """
    if not (math.isfinite(epsilon) and epsilon >= 0):
        raise InvalidArgumentError('epsilon', f'must be a finite number >= 0, got {epsilon}')
    m = np.ascontiguousarray(mask, dtype=np.uint8)
    # a tolerance past the mask's diagonal simplifies as the diagonal does (cv2 refuses
    # values near float's limit)
    epsilon = min(float(epsilon), float(np.hypot(*m.shape)) + 1.0)
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    out = []
    for cnt in contours:
        if min_area > 0:
            x, y, w, h = cv2.boundingRect(cnt)
            buf = np.zeros((h, w), np.uint8)
            cv2.fillPoly(buf, [cnt - np.array([x, y], np.int32)], 1)
            if int(buf.sum()) < min_area:
                continue
        if epsilon > 0 and len(cnt) > 3:
            approx = cv2.approxPolyDP(cnt, float(epsilon), True)
            cnt = approx if len(approx) >= 3 else _triangle_within(cnt)
        pts = cnt.reshape(-1, 2).astype(np.int64)
        while len(pts) < 3:
            pts = np.concatenate([pts, pts[-1:]])
        out.append(pts)
    return out


def _hex(*parts: object, n: int) -> str:
    return hashlib.sha1('/'.join(map(str, parts)).encode()).hexdigest()[:2 * n]


def handbone_json(masks: np.ndarray, classes: Sequence[str], img_path: str,
                  epsilon: float = 0.0, min_area: int = 0) -> dict:
    """A hand-bone annotation file for ``(C, H, W)`` bool masks of image ``img_path``
    (relative, ``ID001/x.png``); ids are derived from the path (deterministic)."""
    anns = [(name, pts, _hex(img_path, name, k, n=16))
            for c, name in enumerate(classes)
            for k, pts in enumerate(mask_to_polygons(masks[c], epsilon, min_area))]
    parent = osp.dirname(img_path)
    return hand_bone_document(anns, osp.basename(img_path), '/' + parent if parent else '/',
                              masks.shape[1:], _hex(img_path, n=8), 'mmseg_ext.pseudo_label')


# ------------------------------------------------------------------ confidence
@dataclass
class Confidence:
    """Per-image confidence figures (see the module doc)."""
    mean_conf: float
    uncertain_fraction: float


def multilabel_confidence(probs: Iterable[np.ndarray], thresholds: Sequence[float],
                          pixel_conf: float) -> Tuple[np.ndarray, Confidence]:
    """``(masks, confidence)`` of multi-label probabilities.

    Args:
        probs: ``(C, H, W)`` float array, or any iterable of ``C`` ``(H, W)`` float maps
            (a generator keeps one resized class in memory at a time).

    ``masks[c] = probs[c] > thresholds[c]`` (``(C, H, W)`` bool); a pixel is uncertain
    when any class has ``1 - pixel_conf < p < pixel_conf``; the uncertain fraction is
    relative to the pixels that are foreground in some class or uncertain (0 when there
    are none).
    """
    masks, uncertain, total, predicted = [], None, 0.0, 0
    for p, t in zip(probs, thresholds):
        m = p > t
        u = (p > 1.0 - pixel_conf) & (p < pixel_conf)
        uncertain = u if uncertain is None else uncertain | u
        total += float(p[m].sum(dtype=np.float64))
        predicted += int(m.sum())
        masks.append(m)
    stacked = np.stack(masks)
    relevant = int((uncertain | stacked.any(0)).sum())
    fraction = float(uncertain.sum()) / relevant if relevant else 0.0
    mean = total / predicted if predicted else 0.0
    return stacked, Confidence(mean_conf=mean, uncertain_fraction=fraction)


def multiclass_labels(probs: np.ndarray, pixel_conf: float,
                      ignore_index: int = 255) -> Tuple[np.ndarray, Confidence]:
    """``(labels, confidence)``: ``(H, W)`` uint8 argmax of ``(C, H, W)`` float
    probabilities (first class on ties), ``ignore_index`` where ``max_c p < pixel_conf``.

    Raises:
        DataError: when the class indices do not fit below ``ignore_index`` in uint8
            (:func:`~mmseg_ext.io.images.check_label_capacity`).
    """
    check_label_capacity(range(probs.shape[0]), ignore_index, 'probabilities')
    best = probs.max(0)
    labels = probs.argmax(0).astype(np.uint8)
    low = best < pixel_conf
    labels[low] = ignore_index
    return labels, Confidence(mean_conf=float(best.mean()),
                              uncertain_fraction=float(low.mean()))


# ------------------------------------------------------------------ folder
@dataclass
class PseudoLabelSummary:
    out_dir: str
    images: int
    accepted: int
    rejected: int


def read_pseudo_summary(out_dir: str) -> Optional[PseudoLabelSummary]:
    """The summary of a pseudo-label folder :func:`pseudo_label_folder` finished (its
    report is written last and the folder published whole); None when there is none."""
    try:
        images = read_json(osp.join(out_dir, REPORT), 'pseudo-label report')['images']
        accepted = sum(1 for r in images if r['accepted'])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return PseudoLabelSummary(out_dir=out_dir, images=len(images), accepted=accepted,
                              rejected=len(images) - accepted)


def pseudo_label_folder(probs_dir: str, out_dir: str, fmt: str = 'handbone-json',
                        thresholds: PerClassSpec = None,
                        pixel_conf: float = 0.9, max_uncertain: float = 1.0,
                        min_mean_conf: float = 0.0, epsilon: float = 0.0,
                        min_area: int = 0, force: bool = False,
                        progress: bool = True) -> PseudoLabelSummary:
    """Write pseudo-labels for every image of a probability folder (module doc).

    Args:
        probs_dir: probability folder written by ``tools/inference.py``.
        out_dir: new output folder (replaced only with ``force`` and only when it holds
            ``pseudo_labels.json``).
        fmt: ``'handbone-json'`` (multi-label) or ``'label-png'`` (multi-class).
        thresholds: foreground thresholds (multi-label; a number, ``{class: t}`` or a
            JSON file of it; default 0.5).
        pixel_conf: per-pixel confidence in [0, 1] (multi-label: in (0.5, 1]).
        max_uncertain: multi-label: reject an image above this uncertain fraction.
        min_mean_conf: reject an image whose mean confidence is below this.
        epsilon, min_area: polygon simplification / speck removal
            (:func:`mask_to_polygons`).
    """
    from tqdm import tqdm

    if fmt not in FORMATS:
        raise InvalidArgumentError('fmt', f'unknown format {fmt!r} (choose from '
                                   f'{", ".join(FORMATS)})')
    check_output_apart(out_dir, [probs_dir], 'out_dir')
    folder = ProbFolder(probs_dir)
    if fmt == 'label-png' and folder.task != 'multi-class':
        raise DataError(f'{probs_dir}: label PNGs need multi-class probabilities; this '
                        f'folder is {folder.task} (write hand-bone JSON instead)')
    if fmt == 'label-png':
        check_label_capacity(folder.classes, 255, probs_dir)
    if fmt == 'handbone-json' and folder.task != 'multi-label':
        raise DataError(f'{probs_dir}: hand-bone JSON needs multi-label probabilities; '
                        f'this folder is {folder.task} (write label PNGs instead)')
    if fmt == 'handbone-json' and not 0.5 < pixel_conf <= 1.0:
        raise InvalidArgumentError('pixel_conf', f'{pixel_conf} must be in (0.5, 1] for '
                                   'multi-label data')
    classes = folder.classes
    thresholds = per_class_option(thresholds, classes, 'thresholds', float, 0.0, 1.0)
    check_thresholds_apply(folder, probs_dir, thresholds)
    ts = [float(thresholds.get(c, 0.5)) for c in classes]
    report, accepted = [], []
    with StagedDir(out_dir, force=force, marker=REPORT) as staged:
        for key in tqdm(folder.keys(), disable=not progress, unit='img', desc='pseudo'):
            stored, meta = folder.read(key)
            if fmt == 'handbone-json':
                channels = (dequantize(resize_channel(ch, meta.ori_shape)) for ch in stored)
                masks, conf = multilabel_confidence(channels, ts, pixel_conf)
                ok = conf.uncertain_fraction <= max_uncertain and \
                    conf.mean_conf >= min_mean_conf
            else:
                probs = dequantize(resize_probs(stored, meta.ori_shape))
                labels, conf = multiclass_labels(probs, pixel_conf)
                ok = conf.mean_conf >= min_mean_conf
            entry = dict(img_path=meta.img_path, accepted=bool(ok),
                         mean_conf=round(conf.mean_conf, 6),
                         uncertain_fraction=round(conf.uncertain_fraction, 6))
            if ok:
                entry['label'] = label_file(key, fmt)  # the report says which file is whose
                if fmt == 'handbone-json':
                    content = handbone_json(masks, classes, meta.img_path, epsilon, min_area)
                    write_hand_bone_json(staged.file(entry['label']), content)
                else:
                    write_image(staged.file(entry['label']), labels)
                accepted.append(listed_image(meta.img_path, fmt))
            if meta.img_sha256 is not None:  # the image's identity, for whoever pairs them
                entry['img_sha256'] = meta.img_sha256
            report.append(entry)
        atomic_write_text(staged.file('accepted.txt'), ''.join(p + '\n' for p in accepted))
        atomic_write_text(staged.file(REPORT), dumps_json(dict(
            probs=probs_dir, format=fmt, classes=list(classes), thresholds=ts,
            pixel_conf=pixel_conf, max_uncertain=max_uncertain,
            min_mean_conf=min_mean_conf, epsilon=epsilon, min_area=min_area,
            images=report), indent=1))
        staged.commit()
    n = len(report)
    return PseudoLabelSummary(out_dir=out_dir, images=n, accepted=len(accepted),
                              rejected=n - len(accepted))


# ------------------------------------------------------------------ quality
@dataclass
class PseudoLabelQuality:
    """How good multi-class pseudo-labels at one confidence threshold would be.

    A share is ``None`` where it has no pixels to be a share of: ``coverage`` when no
    pixel is labelled, ``accuracy`` and ``miou`` when the threshold keeps no pixel.
    """
    pixel_conf: float
    coverage: Optional[float]  # fraction of labelled pixels kept (confidence >= pixel_conf)
    accuracy: Optional[float]  # of the kept pixels, the fraction whose label is right
    miou: Optional[float]      # mean IoU over classes of the kept pixels (against the truth)


def _true_label_map(truth: GroundTruth, folder: ProbFolder, key: str,
                    ignore_index: int, image_sha256: Optional[str] = None) -> np.ndarray:
    """The ``(H, W)`` label map of ``key`` from ``truth``: a label PNG whose values are
    class indices or ``ignore_index`` and whose size is the probabilities' image size."""
    path = truth.find(key)
    if path is None:
        raise DataError(f'{truth.root}: no true label map for image {key} (expected '
                        f'{key}.png)')
    if not path.lower().endswith('.png'):
        raise DataError(f'{path}: a label map PNG is expected (value c = class c)')
    truth.check_not_image(path, key, image_sha256)
    label = truth.read_label(path, ignore_index)
    check_same_size(folder.path(key), folder.info(key)[1], path, label.shape)
    return label


def pseudo_label_quality(probs_dir: str, gt_dir: str, pixel_confs: Sequence[float],
                         ignore_index: int = 255, progress: bool = True
                         ) -> List[PseudoLabelQuality]:
    """Measure multi-class pseudo-labels against held-back true labels, per threshold.

    For choosing ``pixel_conf`` on images whose labels the training does not use (e.g.
    the "unlabelled" part of a labelled training set), never on the validation set.
    ``gt_dir/<key>.png`` holds the true ``uint8`` label map of each image of
    ``probs_dir``, at the image's size (:class:`~mmseg_ext.io.ground_truth.GroundTruth`
    finds it; a value that is neither a class index nor ``ignore_index``, a size other
    than the probabilities' image, or a missing file is a :class:`DataError`).
    """
    from tqdm import tqdm

    folder = ProbFolder(probs_dir)
    if folder.task != 'multi-class':
        raise DataError(f'{probs_dir}: pseudo-label quality is measured for multi-class '
                        f'probabilities, this folder is {folder.task}')
    check_ignore_index(ignore_index, folder.classes)
    truth = GroundTruth(gt_dir, folder.classes)
    n = len(folder.classes)
    confs = sorted(pixel_confs)
    kept = np.zeros(len(confs), np.int64)
    right = np.zeros(len(confs), np.int64)
    inter = np.zeros((len(confs), n), np.int64)
    union = np.zeros((len(confs), n), np.int64)
    total = 0
    for key in tqdm(folder.keys(), disable=not progress, unit='img', desc='quality'):
        stored, meta = folder.read(key)
        label = _true_label_map(truth, folder, key, ignore_index, meta.img_sha256)
        probs = dequantize(resize_probs(stored, label.shape))
        best, pred = probs.max(0), probs.argmax(0)
        labelled = label != ignore_index
        total += int(labelled.sum())
        for i, c in enumerate(confs):
            m = labelled & (best >= c)
            p, t = pred[m], label[m].astype(np.int64)
            kept[i] += m.sum()
            right[i] += int((p == t).sum())
            cm = np.bincount(t * n + p, minlength=n * n).reshape(n, n)
            inter[i] += np.diag(cm)
            union[i] += cm.sum(0) + cm.sum(1) - np.diag(cm)
    out = []
    for i, c in enumerate(confs):
        present = union[i] > 0
        out.append(PseudoLabelQuality(
            c, kept[i] / total if total else None,
            right[i] / kept[i] if kept[i] else None,
            float((inter[i][present] / union[i][present]).mean()) if kept[i] else None))
    return out
