"""The OOF decisions inside a cross-validation run: where their folders go, what is reused.

Layout in the work dir ``W`` (every folder listed in the run's manifest):

* ``W/fold<k>/val_tta/<candidate>/``: with ``tta`` (multi-label), fold ``k``'s
  validation images under each TTA candidate
  (:mod:`~mmseg_ext.postprocessing.tta_choice`); reused when their recorded source
  (checkpoint, images, views) is the same;
* ``W/fold<k>/val_probs/``: the fold's validation probabilities as the OOF stages use
  them: with ``tta`` each class from its chosen candidate (source: ``tta=True`` and
  ``tta_choice``), else the plain prediction;
* ``W/test/fold<k>/``: each fold model's test probabilities, with ``tta`` each class
  from exactly its chosen candidate's views; ``W/test/ensemble/``: the fold vote, per
  class without the folds that collapsed on it, each model calibrated by its own
  thresholds (multi-label; decided at 0.5)
  (:mod:`~mmseg_ext.postprocessing.oof_decisions`).
"""
from __future__ import annotations

import contextlib
import os.path as osp
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ...io.ownership import Manifest
from ...io.probs import ProbFolder
from ...postprocessing.oof_decisions import FoldDice, OOFDecisions, decide
from ...postprocessing.tta_choice import (
    ViewPlan,
    class_soft_vote,
    compose_folder,
    predict_candidates,
    predict_chosen,
    score_candidates,
    score_folder,
    view_predictor,
)
from ...training.stages import owned_output, same_prob_source
from .run import TOOL

Log = Callable[[str], None]

#: subfolder of a fold with one probability folder per TTA candidate
CANDIDATE_DIR = 'val_tta'


def candidate_dirs(fold_dir: str, plan: ViewPlan) -> Dict[str, str]:
    """``{candidate: folder}`` of one fold's validation predictions."""
    return {n: osp.join(fold_dir, CANDIDATE_DIR, n) for n in plan.candidates}


def predict_oof_candidates(config: str, checkpoint: str, fold_dir: str, img_dir: str,
                           images: Sequence[str], plan: ViewPlan, source: dict,
                           device: Optional[str], cfg_options: Optional[dict],
                           progress: bool, log: Log,
                           manifest: Optional[Manifest] = None) -> Dict[str, str]:
    """Each TTA candidate's probabilities of a fold's validation images (every view
    predicted once per image); finished folders of the same source are kept."""
    from ...inference.predictor import resolve_device
    dirs = candidate_dirs(fold_dir, plan)
    sources = {n: dict(source, candidate=n, views=[list(v) for v in plan.candidates[n]])
               for n in dirs}
    todo = {n: d for n, d in dirs.items() if not same_prob_source(d, sources[n])}
    if not todo:
        log(f'{osp.join(fold_dir, CANDIDATE_DIR)}: finished earlier')
        return dirs
    scales, flip = plan.views_of(list(todo))
    predictor = view_predictor(config, checkpoint, resolve_device(device), cfg_options,
                               scales, flip)
    with contextlib.ExitStack() as stack:
        for d in todo.values():
            stack.enter_context(owned_output(manifest, d))
        predict_candidates(predictor, plan, img_dir, images, todo, source, progress,
                           tool=TOOL)
    return dirs


def choose_oof_tta(fold_dirs: Sequence[str], plan: ViewPlan, gt, fold_of: Mapping[str, int],
                   num_folds: int, sources: Sequence[dict], progress: bool, log: Log,
                   manifest: Optional[Manifest] = None
                   ) -> Tuple[Dict[str, str], Dict[str, FoldDice]]:
    """Score every candidate on the OOF images, choose per class
    (:func:`~mmseg_ext.postprocessing.oof_decisions.choose_tta`) and write each fold's
    ``val_probs`` from the chosen candidates. Returns ``(choice per class, scores per
    candidate)``."""
    from ...postprocessing.oof_decisions import choose_tta
    per_fold = [candidate_dirs(d, plan) for d in fold_dirs]
    scores = score_candidates({n: [p[n] for p in per_fold] for n in plan.candidates}, gt,
                              fold_of, num_folds, progress)
    choice = {cls: ch.chosen for cls, ch in choose_tta(scores).items()}
    log('TTA per class on OOF evidence: ' +
        ', '.join(f'{cls} {name}' for cls, name in choice.items()))
    for fold_dir, dirs, source in zip(fold_dirs, per_fold, sources):
        out = osp.join(fold_dir, 'val_probs')
        composed = dict(source, tta=True, tta_choice=dict(choice))
        with owned_output(manifest, out):
            if not same_prob_source(out, composed):
                compose_folder(dirs, choice, out, composed, tool=TOOL)
    return choice, scores


def oof_decisions(oof_dir: str, gt, fold_of: Mapping[str, int], num_folds: int,
                  plan: Optional[ViewPlan], scores: Optional[Mapping[str, FoldDice]],
                  progress: bool) -> OOFDecisions:
    """Every OOF decision with its evidence: collapsed folds from the plain prediction
    (the ``none`` candidate with TTA, else the OOF folder itself)."""
    plain = scores['none'] if scores else score_folder(oof_dir, gt, fold_of, num_folds,
                                                       progress)
    return decide(plain, scores, plan.candidates if plan else None)


def predict_test_fold(config: str, checkpoint: str, test_dir: str, images: Sequence[str],
                      out_dir: str, source: dict, plan: ViewPlan, choice: Mapping[str, str],
                      device: Optional[str], cfg_options: Optional[dict], progress: bool,
                      log: Log, manifest: Optional[Manifest] = None) -> None:
    """A fold model's test probabilities, each class from exactly its chosen
    candidate's views (kept when a finished folder of the same source is there)."""
    from ...inference.predictor import resolve_device
    source = dict(source, tta_choice=dict(choice),
                  views={n: [list(v) for v in plan.candidates[n]]
                         for n in sorted(set(choice.values()))})
    with owned_output(manifest, out_dir):
        if same_prob_source(out_dir, source):
            log(f'{out_dir}: finished earlier')
            return
        names = sorted(set(choice.values()))
        scales, flip = plan.views_of(names)
        predictor = view_predictor(config, checkpoint, resolve_device(device), cfg_options,
                                   scales, flip)
        predict_chosen(predictor, plan, choice, test_dir, images, out_dir, source, progress,
                       tool=TOOL)


def fold_vote(prob_dirs: Sequence[str], out_dir: str, decisions: Optional[OOFDecisions],
              progress: bool, log: Log, manifest: Optional[Manifest] = None,
              fold_thresholds: Optional[Sequence[Mapping[str, float]]] = None) -> None:
    """Average the fold models' test probabilities: equal weights, a collapsed fold
    left out of its class's channel
    (:func:`~mmseg_ext.postprocessing.oof_decisions.class_fold_weights`); with
    ``fold_thresholds`` (multi-label: fold ``k``'s own thresholds per class) each model
    is first calibrated so that its threshold becomes 0.5, and the vote is decided at
    0.5."""
    classes = ProbFolder(prob_dirs[0]).classes
    if decisions is not None and decisions.fold_weights:
        weights = np.array([decisions.fold_weights[c] for c in classes], np.float64)
        for cls, folds in decisions.collapsed.items():
            log(f'fold vote: class {cls} without fold(s) {", ".join(map(str, folds))} '
                '(collapsed on it)')
    else:
        weights = np.full((len(classes), len(prob_dirs)), 1.0 / len(prob_dirs))
    thresholds = None
    if fold_thresholds:
        thresholds = np.array([[t[c] for c in classes] for t in fold_thresholds],
                              np.float64)
    source = dict(ensemble=[dict(probs=osp.abspath(d)) for d in prob_dirs],
                  class_weights={c: [float(w) for w in weights[i]]
                                 for i, c in enumerate(classes)},
                  collapsed=dict(decisions.collapsed) if decisions else {},
                  fold_thresholds=[dict(t) for t in fold_thresholds or []])
    with owned_output(manifest, out_dir):
        class_soft_vote(prob_dirs, out_dir, weights, source, progress, tool=TOOL,
                        thresholds=thresholds)


def collapsed_names(decisions: Optional[OOFDecisions], fold: int) -> List[str]:
    """The classes fold ``fold`` collapsed on."""
    if decisions is None:
        return []
    return [c for c, folds in decisions.collapsed.items() if fold in folds]
