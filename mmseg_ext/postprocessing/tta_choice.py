"""TTA chosen per class on out-of-fold evidence: the views, their predictions, the vote.

``tools/cv.py --tta`` (multi-label) predicts every view an image needs **once**
(:class:`ViewPlan`: the config's TTA scales, 1.0 always among them, times plain and
flipped when flips are allowed) and builds each candidate of
:data:`~.oof_decisions.CANDIDATES` by averaging its views' sigmoid probabilities (the
merge of ``MultiLabelSegTTAModel``): ``none`` is the view at scale 1.0, unflipped.
Candidates with the same views are one candidate (the simpler name). Flips are left
out when a data set declares them unnatural (``horizontal_flip_natural=False``) or the
config says ``tta_views = dict(flip=False)``; a config with an explicit
``tta_pipeline`` gives its ``scale_factor`` ratios and whether it flips.

* validation images: one probability folder per candidate
  (:func:`predict_candidates`), scored per fold and class
  (:func:`score_candidates`), then one folder whose class ``c`` channel is the chosen
  candidate's (:func:`compose_folder`, an exact copy of the stored values);
* test images: the views of the chosen candidates predicted once per image and each
  class's channel averaged over exactly its candidate's views
  (:func:`predict_chosen`); the fold models are then averaged per class
  (:func:`class_soft_vote`, a collapsed fold left out of its class).
"""
from __future__ import annotations

import contextlib
import os.path as osp
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from mmengine.config import Config
from tqdm import tqdm

from ..datasets.transforms.pipeline_geometry import tta_ratios
from ..inference.probmaps import cropped_class_mask, resize_channel
from ..io.paths import file_sha256
from ..io.prob_file import CroppedProbs, dequantize, quantize
from ..io.prob_meta import same_image_sha256
from ..io.probs import ProbFolder, ProbFolderWriter
from ..utils.errors import DataError
from .oof_decisions import CANDIDATES, FoldDice

#: one view: (resize ratio of the test scale, flipped horizontally)
View = Tuple[float, bool]


def candidate_views(scales: Sequence[float], flip: bool) -> Dict[str, Tuple[View, ...]]:
    """The TTA candidates (simplest first) and their views; a candidate whose views
    equal a simpler one's is left out."""
    scales = sorted({float(s) for s in scales} | {1.0})
    raw = {'none': ((1.0, False),),
           'flips': ((1.0, False), (1.0, True)) if flip else None,
           'scales': tuple((s, False) for s in scales),
           'both': tuple((s, f) for s in scales for f in (False, True)) if flip else None}
    out: Dict[str, Tuple[View, ...]] = {}
    for name in CANDIDATES:
        views = raw[name]
        if views is not None and all(set(views) != set(v) for v in out.values()):
            out[name] = views
    return out


@dataclass(frozen=True)
class ViewPlan:
    """The candidates a run compares: ``candidates`` name -> views."""
    candidates: Dict[str, Tuple[View, ...]]

    def views_of(self, names: Sequence[str]) -> Tuple[Tuple[float, ...], bool]:
        """``(scales, flip)`` of the smallest view grid holding the candidates' views."""
        views = {v for n in names for v in self.candidates[n]}
        return tuple(sorted({s for s, _ in views})), any(f for _, f in views)

    def describe(self) -> str:
        return '; '.join(f'{n}: ' + ', '.join(f'{s:g}{" flipped" if f else ""}'
                                              for s, f in v)
                         for n, v in self.candidates.items())


def cv_view_plan(cfg: Config, path: str) -> ViewPlan:
    """The candidates of ``cfg`` (module doc). ``cfg`` is not changed.

    Raises:
        ConfigError: bad ``tta_views``.
    """
    from ..config.tta import _horizontal_flips, config_tta_views, flip_natural
    if cfg.get('tta_pipeline'):
        scales = tta_ratios(cfg.tta_pipeline)
        flip = bool(_horizontal_flips(cfg.tta_pipeline))
    else:
        scales = config_tta_views(cfg, path).scales
        flip = (cfg.get('tta_views') or {}).get('flip') is not False
    return ViewPlan(candidate_views(scales, flip and flip_natural(cfg)))


def view_order(scales: Sequence[float], flip: bool) -> List[View]:
    """The views of :func:`~.tta.build_tta_pipeline` in the order ``TestTimeAug``
    yields them (the product of its branches: scales slowest, then flips)."""
    return [(float(s), f) for s in scales for f in ((False, True) if flip else (False,))]


def view_predictor(config: str, checkpoint: str, device: str, cfg_options: Optional[dict],
                   scales: Sequence[float], flip: bool):
    """A :class:`~.inference.ProbabilityPredictor` yielding the views
    :func:`view_order` names, built from the config's test pipeline."""
    from ..config.loading import load_config
    from ..config.tta import TTAViews, build_tta_pipeline, config_test_pipeline
    from ..inference.predictor import build_predictor
    cfg = load_config(config, cfg_options)
    pipeline = build_tta_pipeline(config_test_pipeline(cfg), TTAViews(tuple(scales), flip))
    return build_predictor(config, checkpoint, device, cfg_options=cfg_options, tta=True,
                           tta_pipeline=pipeline)


def predicted_views(predictor, img_path: str, order: Sequence[View]
                    ) -> Tuple[Dict[View, np.ndarray], Tuple[int, int]]:
    """``{view: (C, h, w) float32}`` of one image and its original size.

    Raises:
        DataError: the pipeline yields other views than ``order`` (a bug or a custom
            TTA transform).
    """
    probs, metas, ori_shape = predictor.predict_views(img_path)
    flips = [bool(m.get('flip', False)) for m in metas]
    if len(probs) != len(order) or flips != [f for _, f in order]:
        raise DataError(f'{img_path}: the TTA pipeline yielded {len(probs)} views '
                        f'(flipped: {flips}), expected {list(order)}')
    return {v: p.cpu().numpy() for v, p in zip(order, probs)}, ori_shape


def mean_views(views: Mapping[View, np.ndarray], members: Sequence[View]) -> np.ndarray:
    """The mean of the members' probabilities (the multi-label TTA merge)."""
    acc = views[members[0]].copy()
    for v in members[1:]:
        acc += views[v]
    return acc / len(members)


def predict_candidates(predictor, plan: ViewPlan, img_dir: str, images: Sequence[str],
                       out_dirs: Mapping[str, str], source: dict, progress: bool = True,
                       tool: Optional[str] = None) -> None:
    """One probability folder per candidate (``out_dirs`` name -> folder), each view
    predicted once per image."""
    names = list(out_dirs)
    scales, flip = plan.views_of(names)
    order = view_order(scales, flip)
    with contextlib.ExitStack() as stack:
        writers = {n: stack.enter_context(ProbFolderWriter(
            out_dirs[n], predictor.classes, predictor.task,
            source=dict(source, candidate=n, views=[list(v) for v in plan.candidates[n]]),
            force=True, tool=tool)) for n in names}
        for rel in tqdm(images, desc='TTA views', unit='img', disable=not progress):
            views, ori_shape = predicted_views(predictor, osp.join(img_dir, rel), order)
            digest = file_sha256(osp.join(img_dir, rel))  # the image each file is of
            for n in names:
                writers[n].write(mean_views(views, plan.candidates[n]), rel, ori_shape,
                                 img_sha256=digest)
        for w in writers.values():
            w.commit()


def predict_chosen(predictor, plan: ViewPlan, choice: Mapping[str, str], img_dir: str,
                   images: Sequence[str], out_dir: str, source: dict,
                   progress: bool = True, tool: Optional[str] = None) -> None:
    """One probability folder: class ``c`` averaged over exactly the views of its
    chosen candidate ``choice[c]``; each needed view predicted once per image."""
    classes = list(predictor.classes)
    names = sorted(set(choice.values()), key=CANDIDATES.index)
    scales, flip = plan.views_of(names)
    order = view_order(scales, flip)
    with ProbFolderWriter(out_dir, classes, predictor.task, source=source,
                          force=True, tool=tool) as writer:
        for rel in tqdm(images, desc='TTA (chosen)', unit='img', disable=not progress):
            views, ori_shape = predicted_views(predictor, osp.join(img_dir, rel), order)
            means = {n: mean_views(views, plan.candidates[n]) for n in names}
            out = np.stack([means[choice[c]][i] for i, c in enumerate(classes)])
            writer.write(out, rel, ori_shape, img_sha256=file_sha256(osp.join(img_dir, rel)))
        writer.commit()


def score_candidates(fold_dirs: Mapping[str, Sequence[str]], gt, fold_of: Mapping[str, int],
                     num_folds: int, progress: bool = True) -> Dict[str, FoldDice]:
    """Per candidate (name -> its folders, one per fold), the per-fold, per-class
    competition Dice at 0.5 of every image (ground truth loaded once per image)."""
    folders = {n: [ProbFolder(d) for d in dirs] for n, dirs in fold_dirs.items()}
    first = next(iter(folders.values()))
    classes = first[0].classes
    where = {n: {key: f for f in fs for key in f.keys()} for n, fs in folders.items()}
    scores = {n: FoldDice(classes, num_folds) for n in folders}
    keys = sorted(where[next(iter(where))])
    for key in tqdm(keys, desc='OOF TTA candidates', unit='img', disable=not progress):
        target = None
        for n in folders:
            if key not in where[n]:
                raise DataError(f'{fold_dirs[n][0]}: no probabilities for image {key} '
                                'in this candidate\'s folders')
            probs, meta = where[n][key].read(key, cropped=True)
            if target is None:
                target = gt.load(key, meta.ori_shape, meta.img_sha256)
            for c in range(len(classes)):
                mask = cropped_class_mask(probs, c, meta.ori_shape, 0.5)
                scores[n].update(fold_of[key], c, mask, target[c])
    return scores


def score_folder(prob_dir: str, gt, fold_of: Mapping[str, int], num_folds: int,
                 progress: bool = True) -> FoldDice:
    """:func:`score_candidates` of one (OOF) folder."""
    return score_candidates({'none': [prob_dir]}, gt, fold_of, num_folds, progress)['none']


def compose_folder(candidate_dirs: Mapping[str, str], choice: Mapping[str, str],
                   out_dir: str, source: dict, tool: Optional[str] = None) -> None:
    """A folder whose class ``c`` is the stored channel of candidate ``choice[c]``
    (``candidate_dirs``: name -> folder of the same images)."""
    folders = {n: ProbFolder(d) for n, d in candidate_dirs.items()}
    first = next(iter(folders.values()))
    classes = first.classes
    with ProbFolderWriter(out_dir, classes, first.task, dtype=first.dtype or 'uint8',
                          source=source, force=True, tool=tool) as writer:
        for key in first.keys():
            loaded = {n: folders[n].read(key, cropped=True) for n in set(choice.values())}
            meta = next(iter(loaded.values()))[1]
            boxes, crops = [], []
            for c, cls in enumerate(classes):
                probs = loaded[choice[cls]][0]
                boxes.append(probs.boxes[c])
                crops.append(probs.crops[c])
            shape = next(iter(loaded.values()))[0].shape
            writer.write(CroppedProbs(shape, np.asarray(boxes), crops), meta.img_path,
                         meta.ori_shape, img_sha256=same_image_sha256(
                             [m for _, m in loaded.values()], first.path(key)))
        writer.commit()


def _class_mean(members: Sequence[CroppedProbs], c: int, weights: np.ndarray,
                size: Tuple[int, int], thresholds: Optional[np.ndarray]) -> np.ndarray:
    """``(h, w)`` float32 weighted mean of class ``c`` over ``members`` (each resized to
    ``size``; with ``thresholds`` ``(K, C)``, each calibrated by its own first)."""
    from .thresholds import calibrate
    acc = np.zeros(size, np.float32)
    for k, (probs, w) in enumerate(zip(members, weights)):
        if w <= 0 or probs.box(c) is None:  # an empty channel adds 0 (calibrated too)
            continue
        channel = resize_channel(dequantize(probs.channel(c)), size)
        if thresholds is not None:
            channel = calibrate(channel, float(thresholds[k, c]))
        acc += np.float32(w) * channel
    return acc


def class_soft_vote(prob_dirs: Sequence[str], out_dir: str, weights: np.ndarray,
                    source: dict, progress: bool = True, tool: Optional[str] = None,
                    thresholds: Optional[np.ndarray] = None) -> None:
    """Per-class weighted mean of the folders (``weights`` ``(C, K)``, rows summing to
    1; a weight 0 leaves that folder out of that class). Members stored at another
    resolution than the first are resized to it (bilinear).

    With ``thresholds`` ``(K, C)`` (multi-label: each member's own decision threshold
    per class), each member's class channel is first calibrated so that its threshold
    becomes 0.5 (:func:`~mmseg_ext.postprocessing.thresholds.calibrate`); the mean is
    then decided at 0.5. Memory: one dense class channel at a time.
    """
    folders = [ProbFolder(d) for d in prob_dirs]
    first = folders[0]
    with ProbFolderWriter(out_dir, first.classes, first.task, dtype=first.dtype or 'uint8',
                          source=source, force=True, tool=tool) as writer:
        for key in tqdm(first.keys(), desc='ensemble', unit='img', disable=not progress):
            loaded = [f.read(key, cropped=True) for f in folders]
            members = [probs for probs, _ in loaded]
            size = tuple(members[0].shape[1:])
            fused = CroppedProbs.from_channels(  # one dense channel at a time
                (len(first.classes), *size),
                (quantize(_class_mean(members, c, weights[c], size, thresholds), writer.dtype)
                 for c in range(len(first.classes))))
            meta = loaded[0][1]
            writer.write(fused, meta.img_path, meta.ori_shape, img_sha256=same_image_sha256(
                [m for _, m in loaded], first.path(key)))
        writer.commit()
