"""Inference-time decisions made on out-of-fold (OOF) evidence (``tools/cv.py``).

Every decision here is a pure function of per-fold, per-class Dice sums
(:class:`FoldDice`, filled from OOF probabilities and the ground truth), so it can be
tested on constructed numbers and reported with its evidence.

**TTA per class** (:func:`choose_tta`). The candidates, simplest first, are
:data:`CANDIDATES`: ``none`` (the plain view), ``flips`` (scale 1.0, plain and flipped),
``scales`` (the config's TTA scales, no flip) and ``both``. For each class the
candidate with the highest OOF Dice (competition Dice at 0.5, mean over the pool's
images) is the *best*; the chosen one is the **simplest candidate whose OOF Dice is
within the noise of the best**. The noise between two candidates is
``max(MIN_GAIN, SE)``: ``SE`` is the standard error over the folds of the per-fold Dice
differences (``std(d_k, ddof=1) / sqrt(K)``), :data:`MIN_GAIN` = 0.002 the floor for
few folds or nearly identical candidates. A more complex candidate is therefore kept
only when its gain exceeds both the floor and the fold-to-fold spread of that gain.

**Collapsed classes** (:func:`collapsed_folds`). A fold collapsed on class ``c`` when
its validation images contain ``c`` (at least one) and, on those images, its model's
Dice is below :data:`COLLAPSE_DICE` (0.05) while the median of the same Dice over the
other folds (those whose images contain ``c``) is above :data:`ALIVE_DICE` (0.5). The
evidence is the plain (un-augmented) OOF prediction, so a flipped view that lends the
other lateral channel cannot hide it. Such a fold is **dropped from that class's
channel of the test-time fold ensemble** (:func:`class_fold_weights`): the other folds'
probabilities are averaged for it. Its OOF probabilities stay (they are honestly that
fold's out-of-fold predictions), flagged in the report. Dropping was chosen over
retraining with another seed: it costs nothing, it cannot collapse again, and the
rule guarantees that a fold above 0.5 remains for the class.

**Fold-ensemble weights**: equal (the simpler choice); the per-class, per-fold OOF
Dice is reported as the evidence, and only a collapsed fold gets weight 0 for its class.

**Thresholds: each fold model's own.** A threshold tuned on the pooled OOF images is
fitted to the mix of fold models that made them; the submission applies it to the fold
*ensemble*, whose averaged probabilities are calibrated differently. On the real chest
X-rays (``docs/real_data.md``) the pooled thresholds raised the OOF Dice (+0.003 mean)
yet cost the 5-fold ensemble 0.007 on held-back patients: the right clavicle's 0.17,
driven by the folds whose clavicle was under-confident, over-segmented the average of
confident and under-confident folds. So each fold model gets its own thresholds, tuned
on its own OOF images (``tools/cv.py`` writes them to ``tuned/fold_thresholds.json``),
and the fold vote calibrates each model by them before averaging
(:func:`~mmseg_ext.postprocessing.thresholds.calibrate`: the model's threshold becomes
0.5), then decides at 0.5. Pooled thresholds are still written (``tuned/thresholds.json``,
for one model's probabilities).

**Component clean-up** stays as it was chosen on the pooled OOF masks (at each
image's fold thresholds). A stricter rule was measured and dropped: keeping a clean-up
only where, chosen without each fold, it lowered no fold's Dice cost the held-back
images of both benchmarks (real chest X-rays -0.0001, synthetic hand bones -0.033
mean Dice; ``docs/cross_validation.md``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

from .thresholds import DICE_EPS

#: TTA candidates, simplest first (the order of preference within the noise)
CANDIDATES = ('none', 'flips', 'scales', 'both')
#: smallest OOF Dice gain that counts, whatever the fold spread
MIN_GAIN = 0.002
#: a fold's Dice on the images that contain a class, below which it collapsed ...
COLLAPSE_DICE = 0.05
#: ... while the median of the other folds is above this
ALIVE_DICE = 0.5

NOISE_RULE = (f'a more complex TTA candidate is kept only when its OOF Dice gain over a '
              f'simpler one exceeds max({MIN_GAIN}, standard error of the per-fold Dice '
              'differences); otherwise the simpler one (none < flips < scales < both)')
THRESHOLD_RULE = ("each fold model's thresholds are tuned on its own OOF images; the fold "
                  'vote calibrates each model so that its threshold becomes 0.5, averages, '
                  'and decides at 0.5')
COLLAPSE_RULE = (f'fold Dice on the images containing the class < {COLLAPSE_DICE} while '
                 f'the median of the other folds > {ALIVE_DICE} (plain OOF predictions); '
                 "such a fold is dropped from that class's test-time fold vote")


def image_dice(pred: np.ndarray, gt: np.ndarray) -> float:
    """Competition Dice of one image and class: ``(2|P&G| + eps) / (|P| + |G| + eps)``
    of two ``(H, W)`` bool masks (both empty: 1)."""
    inter = int(np.count_nonzero(pred & gt))
    return (2.0 * inter + DICE_EPS) / (int(np.count_nonzero(pred)) +
                                       int(np.count_nonzero(gt)) + DICE_EPS)


@dataclass
class FoldDice:
    """Per-fold, per-class sums of the per-image competition Dice at one setting.

    Attributes (arrays of shape ``(K, C)``, K folds, C classes):
        dice_sum, images: Dice sum and image count over all the fold's images.
        pos_dice_sum, pos_images: the same over the images whose ground truth contains
            the class.
    """
    classes: Sequence[str]
    num_folds: int
    dice_sum: np.ndarray = None
    images: np.ndarray = None
    pos_dice_sum: np.ndarray = None
    pos_images: np.ndarray = None

    def __post_init__(self):
        shape = (self.num_folds, len(self.classes))
        for name in ('dice_sum', 'images', 'pos_dice_sum', 'pos_images'):
            if getattr(self, name) is None:
                setattr(self, name, np.zeros(shape, np.float64))

    def update(self, fold: int, c: int, pred: np.ndarray, gt: np.ndarray) -> None:
        """Add one image's class ``c`` (``(H, W)`` bool masks) to fold ``fold``."""
        self.add(fold, c, image_dice(pred, gt), bool(gt.any()))

    def add(self, fold: int, c: int, dice: float, present: bool) -> None:
        """Add one image's Dice of class ``c``; ``present``: its ground truth has ``c``."""
        self.dice_sum[fold, c] += dice
        self.images[fold, c] += 1
        if present:
            self.pos_dice_sum[fold, c] += dice
            self.pos_images[fold, c] += 1

    @property
    def fold_mean(self) -> np.ndarray:
        """``(K, C)`` mean Dice of each fold's images (NaN for a fold without images)."""
        with np.errstate(invalid='ignore', divide='ignore'):
            return np.where(self.images > 0, self.dice_sum / np.maximum(self.images, 1),
                            np.nan)

    @property
    def pos_mean(self) -> np.ndarray:
        """``(K, C)`` mean Dice on the images containing the class (NaN: none)."""
        return np.where(self.pos_images > 0,
                        self.pos_dice_sum / np.maximum(self.pos_images, 1), np.nan)

    @property
    def pooled(self) -> np.ndarray:
        """``(C,)`` OOF Dice: the mean over every pool image."""
        return self.dice_sum.sum(0) / np.maximum(self.images.sum(0), 1)


def gain_noise(a: FoldDice, b: FoldDice, c: int) -> float:
    """The noise of the OOF Dice difference of class ``c`` between two settings:
    ``max(MIN_GAIN, std(d_k, ddof=1) / sqrt(K))`` over the folds' Dice differences
    ``d_k`` (folds with images only; :data:`MIN_GAIN` alone with fewer than 2)."""
    d = a.fold_mean[:, c] - b.fold_mean[:, c]
    d = d[np.isfinite(d)]
    if len(d) < 2:
        return MIN_GAIN
    return max(MIN_GAIN, float(np.std(d, ddof=1) / math.sqrt(len(d))))


@dataclass
class TTAChoice:
    """The TTA decision of one class with its evidence (OOF Dice at 0.5)."""
    chosen: str
    best: str
    dice: Dict[str, float]
    noise: float

    @property
    def plain(self) -> float:
        return self.dice['none']

    @property
    def gain(self) -> float:
        """OOF Dice of the chosen candidate minus the plain prediction's."""
        return self.dice[self.chosen] - self.plain

    def to_dict(self) -> dict:
        return dict(chosen=self.chosen, best=self.best, dice=dict(self.dice),
                    plain=self.plain, gain=self.gain, noise=self.noise)


def choose_tta(scores: Mapping[str, FoldDice]) -> Dict[str, TTAChoice]:
    """Per class, the simplest candidate within the noise of the best (module doc).

    Args:
        scores: :class:`FoldDice` per candidate name of :data:`CANDIDATES` (``'none'``
            required; absent candidates are not considered).
    """
    names = [n for n in CANDIDATES if n in scores]
    if 'none' not in scores:
        raise ValueError('the plain candidate (none) is needed')  # a caller's bug
    first = scores['none']
    pooled = {n: scores[n].pooled for n in names}
    choices = {}
    for c, cls in enumerate(first.classes):
        dice = {n: float(pooled[n][c]) for n in names}
        best = max(names, key=lambda n: (dice[n], -names.index(n)))
        chosen, noise = best, 0.0
        for n in names:  # simplest first
            margin = gain_noise(scores[best], scores[n], c)
            if dice[best] - dice[n] <= margin:
                chosen, noise = n, margin
                break
        choices[cls] = TTAChoice(chosen, best, dice, noise)
    return choices


def collapsed_folds(plain: FoldDice) -> Dict[str, List[int]]:
    """``{class: [fold, ...]}`` of the folds that collapsed on a class (module doc);
    classes without a collapsed fold are left out."""
    pos = plain.pos_mean
    out: Dict[str, List[int]] = {}
    for c, cls in enumerate(plain.classes):
        for k in range(plain.num_folds):
            if plain.pos_images[k, c] <= 0 or not pos[k, c] < COLLAPSE_DICE:
                continue
            others = [pos[j, c] for j in range(plain.num_folds)
                      if j != k and plain.pos_images[j, c] > 0]
            if others and float(np.median(others)) > ALIVE_DICE:
                out.setdefault(cls, []).append(k)
    return out


def class_fold_weights(classes: Sequence[str], num_folds: int,
                       collapsed: Mapping[str, Sequence[int]]) -> np.ndarray:
    """``(C, K)`` weights of the test-time fold vote: equal over the folds, a
    collapsed fold's weight 0 for its class (each row sums to 1)."""
    w = np.ones((len(classes), num_folds), np.float64)
    for c, cls in enumerate(classes):
        for k in collapsed.get(cls, ()):
            w[c, k] = 0.0
        if w[c].sum() <= 0:  # cannot happen under the rule; never divide by zero
            w[c] = 1.0
    return w / w.sum(1, keepdims=True)


@dataclass
class OOFDecisions:
    """Every OOF decision of a run with its evidence, as ``summary.json`` holds it.

    Attributes:
        tta: per class :meth:`TTAChoice.to_dict` (empty without ``--tta``).
        tta_candidates: candidate name -> its views ``[[scale, flipped], ...]``.
        collapsed: class -> folds that collapsed on it.
        fold_dice: class -> per-fold OOF Dice (plain prediction, all the fold's images).
        fold_dice_present: class -> per-fold Dice on the images containing the class.
        fold_weights: class -> per-fold weight in the test-time vote.
        rules: the rules in words.
    """
    tta: Dict[str, dict] = field(default_factory=dict)
    tta_candidates: Dict[str, list] = field(default_factory=dict)
    collapsed: Dict[str, List[int]] = field(default_factory=dict)
    fold_dice: Dict[str, List[float]] = field(default_factory=dict)
    fold_dice_present: Dict[str, List[Optional[float]]] = field(default_factory=dict)
    fold_weights: Dict[str, List[float]] = field(default_factory=dict)
    rules: Dict[str, str] = field(default_factory=dict)


def decide(plain: FoldDice, candidates: Optional[Mapping[str, FoldDice]] = None,
           candidate_views: Optional[Mapping[str, Sequence]] = None) -> OOFDecisions:
    """The TTA choice (when ``candidates`` are given), the collapsed folds and the fold
    weights, with their evidence."""
    collapsed = collapsed_folds(plain)
    weights = class_fold_weights(plain.classes, plain.num_folds, collapsed)
    fold, pos = plain.fold_mean, plain.pos_mean

    def listed(row):
        return [None if not np.isfinite(v) else round(float(v), 6) for v in row]
    out = OOFDecisions(
        collapsed=collapsed,
        fold_dice={cls: listed(fold[:, c]) for c, cls in enumerate(plain.classes)},
        fold_dice_present={cls: listed(pos[:, c]) for c, cls in enumerate(plain.classes)},
        fold_weights={cls: [round(float(v), 6) for v in weights[c]]
                      for c, cls in enumerate(plain.classes)},
        rules=dict(collapsed=COLLAPSE_RULE, fold_weights='equal; a collapsed fold 0 '
                   'for its class', thresholds=THRESHOLD_RULE))
    if candidates:
        out.tta = {cls: ch.to_dict() for cls, ch in choose_tta(candidates).items()}
        out.tta_candidates = {n: [list(v) for v in views]
                              for n, views in (candidate_views or {}).items()}
        out.rules['tta'] = NOISE_RULE
    return out


def collapsed_by_fold(collapsed: Mapping[str, Sequence[int]]) -> Dict[int, List[str]]:
    """``{fold: [class, ...]}`` of :func:`collapsed_folds`'s result."""
    out: Dict[int, List[str]] = {}
    for cls, folds in collapsed.items():
        for k in folds:
            out.setdefault(int(k), []).append(cls)
    return out


def decision_lines(d: OOFDecisions) -> List[str]:
    """The decisions as text lines for the final table (empty when nothing to say)."""
    lines: List[str] = []
    if d.tta:
        width = max(12, max(len(c) for c in d.tta))
        names = [n for n in CANDIDATES if n in next(iter(d.tta.values()))['dice']]
        lines.append(f'{"class":<{width}}  TTA chosen  ' +
                     '  '.join(f'{n:>7}' for n in names) + '     gain    noise')
        for cls, t in d.tta.items():
            lines.append(f'{cls:<{width}}  {t["chosen"]:<10}  ' +
                         '  '.join(f'{t["dice"][n]:7.4f}' for n in names) +
                         f'  {t["gain"]:+7.4f}  {t["noise"]:7.4f}')
        lines.append('(OOF Dice at 0.5 per TTA candidate; ' + NOISE_RULE + ')')
    for cls, folds in d.collapsed.items():
        kept = [k for k, w in enumerate(d.fold_weights.get(cls, [])) if w > 0]
        lines.append(f'collapsed: {cls} in fold {", ".join(map(str, folds))} '
                     f'(Dice {", ".join(str(d.fold_dice_present[cls][k]) for k in folds)} '
                     'on the images containing it); dropped from its test-time vote, '
                     f'folds {", ".join(map(str, kept))} averaged')
    return lines


def collapsed_val_classes(metrics: Mapping[str, float], prefix: str = 'Dice.'
                          ) -> List[str]:
    """Classes whose validation Dice (``Dice.<class>`` of ``MultiLabelDiceMetric``, a
    mean over images where an image without the class and without a prediction scores
    1) is below :data:`COLLAPSE_DICE`: the model (almost) never predicts them where the
    validation images contain them."""
    out = []
    for key, value in metrics.items():
        name = key.split('/', 1)[-1]
        if name.startswith(prefix):
            try:
                v = float(value)
            except (TypeError, ValueError):
                continue
            if math.isfinite(v) and v < COLLAPSE_DICE:
                out.append(name[len(prefix):])
    return out


def collapsed_class_warning(message_hub) -> Optional[str]:
    """One warning line when the last validation of a run (mmengine's message hub
    ``val/Dice.<class>`` scalars) shows classes with Dice below :data:`COLLAPSE_DICE`;
    ``None`` otherwise (also when no validation ran)."""
    scalars = getattr(message_hub, 'log_scalars', {}) or {}
    metrics = {k: v.current() for k, v in scalars.items() if k.startswith('val/Dice.')}
    names = collapsed_val_classes(metrics)
    if not names:
        return None
    return (f'the last validation gives class{"es" if len(names) > 1 else ""} '
            f'{", ".join(names)} a Dice below {COLLAPSE_DICE}: the model (almost) never '
            'predicts them where the validation images contain them at the 0.5 threshold '
            '(a collapsed class, or one still learning with probabilities below 0.5: '
            'train longer, with another seed, tune its threshold, or check its labels)')
