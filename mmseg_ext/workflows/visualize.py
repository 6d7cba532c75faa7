"""What ``tools/visualize.py`` runs over folders: side-by-side ground truth / prediction
drawings of a probability folder, and the confusion matrix of one against label PNGs.

The drawing primitives are in :mod:`mmseg_ext.visualization`; reading probability
folders and ground truth is done here, at the tool layer.
"""
from __future__ import annotations

import os.path as osp
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple, Union

import numpy as np

from ..inference.probmaps import class_mask, label_map
from ..io.atomic import atomic_write_text
from ..io.ground_truth import GroundTruth, check_ignore_index
from ..io.image_write import write_image
from ..io.images import read_image
from ..io.paths import check_output_apart
from ..io.prob_meta import check_same_image, check_same_size
from ..io.probs import ProbFolder, check_thresholds_apply
from ..io.staged_dir import StagedDir
from ..utils.class_names import HAND_BONE_CLASSES, HAND_BONE_PALETTE
from ..utils.errors import DataError
from ..utils.per_class import PerClassSpec, per_class_option
from ..utils.readers import check_folder
from ..visualization.charts import confusion_matrix
from ..visualization.overlay import default_palette, label_to_masks, overlay_masks, side_by_side

MARKER = 'visualize.txt'


@dataclass
class VisualizeSummary:
    out_dir: str
    images: int
    with_gt: int


def pred_masks(probs: np.ndarray, task: str, size, thresholds: Sequence[float]) -> np.ndarray:
    """``(C, H, W)`` bool prediction at ``size = (H, W)`` from stored ``(C, h, w)``
    probabilities: ``p > t_c`` per class (multi-label) or the argmax (multi-class)."""
    if task == 'multi-class':
        return label_to_masks(label_map(probs, size), probs.shape[0], ignore_index=None)
    return np.stack([class_mask(probs[c], size, thresholds[c]) for c in range(len(probs))])


def _palette_for(palette, classes: Sequence[str], where: str) -> list:
    if palette is None or palette == 'auto':
        return default_palette(len(classes))
    if palette == 'handbone':
        by_name = dict(zip(HAND_BONE_CLASSES, HAND_BONE_PALETTE))
        missing = [c for c in classes if c not in by_name]
        if missing:
            raise DataError(f'{where}: classes {missing} have no hand-bone colour')
        return [by_name[c] for c in classes]
    return list(palette)


def visualize_folder(img_dir: str, probs_dir: str, out_dir: str,
                     gt_root: Optional[str] = None,
                     thresholds: PerClassSpec = None,
                     palette: Union[None, str, Sequence[Sequence[int]]] = None,
                     alpha: float = 0.45, outline_px: int = 1, force: bool = False,
                     progress: bool = True) -> VisualizeSummary:
    """Write one PNG per probability file: ``[ground truth | prediction]`` (or the
    prediction alone without ``gt_root``) drawn over the image, at the original size.

    Args:
        img_dir: the images (the probability files' ``img_path`` is relative to it).
        probs_dir: a probability folder (:mod:`mmseg_ext.io.probs`).
        out_dir: new folder; ``<key>.png`` per image (replaced only with ``force``).
        gt_root: optional ground truth: a hand-bone root with ``outputs_json/`` or a
            folder of label PNGs / ``.npy`` masks
            (:class:`mmseg_ext.io.ground_truth.GroundTruth`); images without one are drawn
            without it, but a ``gt_root`` with none of the images is refused.
        thresholds: multi-label thresholds: a number, ``{class: t}`` or a JSON file of it
            (default 0.5 for unnamed classes); refused for multi-class probabilities.
        palette: ``C`` ``(R, G, B)`` colours, ``'handbone'`` (the hand-bone data set's
            colour of each class, by name) or ``'auto'``/None (:func:`default_palette`,
            the hand-bone palette for 29 classes).
    """
    from tqdm import tqdm

    check_output_apart(out_dir, [img_dir, probs_dir, gt_root], 'out_dir')
    check_folder(img_dir, 'image folder')
    folder = ProbFolder(probs_dir)
    classes = folder.classes
    thresholds = per_class_option(thresholds, classes, 'thresholds', float, 0.0, 1.0)
    if thresholds and folder.task != 'multi-label':
        raise DataError(f'{probs_dir}: thresholds apply to multi-label probabilities only '
                        '(multi-class ones are drawn as their argmax)')
    check_thresholds_apply(folder, probs_dir, thresholds)
    ts = [float(thresholds.get(c, 0.5)) for c in classes]
    palette = _palette_for(palette, classes, probs_dir)
    keys = folder.keys()
    gt = GroundTruth(gt_root, classes) if gt_root else None
    if gt is not None and not any(gt.find(k) is not None for k in keys):
        raise DataError(f'{gt_root}: no ground truth for any of the {len(keys)} images of '
                        f'{probs_dir} (e.g. {keys[0]}): not the ground truth of these images')
    with_gt = 0
    with StagedDir(out_dir, force=force, marker=MARKER) as staged:
        for key in tqdm(keys, disable=not progress, unit='img', desc='visualize'):
            probs, meta = folder.read(key)
            img_path = osp.join(img_dir, meta.img_path)
            image = read_image(img_path)
            size = image.shape[:2]
            check_same_size(folder.path(key), meta.ori_shape, img_path, size)
            check_same_image(folder.path(key), meta, img_path)
            pred = overlay_masks(image, pred_masks(probs, folder.task, size, ts), palette,
                                 alpha, outline_px)
            panels, titles = [pred], ['prediction']
            if gt is not None and gt.find(key) is not None:
                gt_draw = overlay_masks(image, gt.load(key, size, meta.img_sha256), palette, alpha, outline_px)
                panels, titles = [gt_draw, pred], ['ground truth', 'prediction']
                with_gt += 1
            write_image(staged.file(key + '.png'), side_by_side(panels, titles))
        atomic_write_text(staged.file(MARKER), f'probs: {probs_dir}\nimages: {img_dir}\n'
                          f'ground truth: {gt_root}\n')
        staged.commit()
    return VisualizeSummary(out_dir=out_dir, images=len(keys), with_gt=with_gt)


def confusion_from_probs(probs_dir: str, gt_dir: str, ignore_index: int = 255,
                         progress: bool = True) -> Tuple[np.ndarray, Tuple[str, ...]]:
    """``(C, C)`` int64 pixel confusion (rows = ground truth) of a multi-class
    probability folder (argmax at the original size) against label PNGs
    (``gt_dir/<key>.png``, value = class index, ``ignore_index`` skipped; matched by
    key, then by file stem), and the folder's ``C`` class names."""
    from tqdm import tqdm

    folder = ProbFolder(probs_dir)
    if folder.task != 'multi-class':
        raise DataError(f'{probs_dir}: a confusion matrix needs multi-class '
                        f'probabilities, this folder is {folder.task}')
    check_ignore_index(ignore_index, folder.classes)
    gt = GroundTruth(gt_dir, folder.classes)
    n = len(folder.classes)
    cm = np.zeros((n, n), np.int64)
    for key in tqdm(folder.keys(), disable=not progress, unit='img', desc='confusion'):
        path = gt.find(key)
        if path is None:
            raise DataError(f'{gt_dir}: no label PNG for image {key}')
        label = gt.read_label(path, ignore_index)
        probs, meta = folder.read(key)
        check_same_size(folder.path(key), meta.ori_shape, path, label.shape)
        pred = label_map(probs, label.shape)
        cm += confusion_matrix(label, pred, n, ignore_index)
    if not cm.any():
        raise DataError(f'{gt_dir}: every label pixel is {ignore_index} (ignored): the '
                        'confusion matrix counts no pixel')
    return cm, folder.classes
