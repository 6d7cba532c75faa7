"""The tuned post-processing an export carries in its sidecar.

Given as a user gives it to ``tools/make_submission.py`` (per-class thresholds, minimum
areas, keep-largest counts: a number, ``{class: value}`` or a JSON file of it,
:func:`~mmseg_ext.utils.per_class.per_class_option`), or as the files ``tools/cv.py``
writes into its work dir after tuning on the out-of-fold predictions
(``W/tuned/thresholds.json``, ``min_area.json``, ``keep_largest.json``). The values are
resolved against the model's classes here, so a file of another class list is refused at
export, not at deployment.
"""
from __future__ import annotations

import os.path as osp
from typing import Any, Dict, Optional, Sequence

from ..postprocessing.component_tuning import CV_CONNECTIVITY
from ..utils.errors import DataError, InvalidArgumentError
from ..utils.per_class import KIND_KEY, PerClassSpec, per_class_option

#: where ``tools/cv.py`` writes the tuned files, under its work dir
CV_TUNED = 'tuned'
#: the tuned files of a cv work dir, by the parameter they stand for
CV_FILES = ('thresholds', 'min_area', 'keep_largest')
#: each fold model's own tuned thresholds, ``{"fold<k>": {class: t}}``
FOLD_THRESHOLDS = 'fold_thresholds.json'
#: The setting ``fold_thresholds.json`` names under its ``__kind__``.
FOLD_KIND = 'fold_thresholds'
#: the threshold of a class the tuned values do not name (``p > 0.5``)
DEFAULT_THRESHOLD = 0.5


def cv_tuned_files(cv_dir: str) -> Dict[str, str]:
    """``{parameter: file}`` of the tuned files in a ``tools/cv.py`` work dir.

    Raises:
        DataError: the folder or its ``tuned/`` files are missing (the run has not
            reached its tuning stage, or tuned a multi-class model, which has none).
    """
    if not osp.isdir(cv_dir):
        raise DataError(f'{cv_dir}: cross-validation work dir not found')
    files = {name: osp.join(cv_dir, CV_TUNED, f'{name}.json') for name in CV_FILES}
    missing = [f for f in files.values() if not osp.isfile(f)]
    if missing:
        raise DataError(f'{missing[0]}: not found (tools/cv.py writes {CV_TUNED}/'
                        f'{{{",".join(CV_FILES)}}}.json when it tunes a multi-label model)')
    return files


def cv_fold_of(cv_dir: str, checkpoint: str) -> int:
    """The fold of the ``tools/cv.py`` work dir ``cv_dir`` whose trained model
    ``checkpoint`` is, by content (the checkpoint each ``fold<k>/`` stage record proves).

    Raises:
        DataError: ``checkpoint`` is the model of no fold there: cv's tuned values were
            chosen for those models' probabilities, not for another model's.
    """
    import re

    from ..io.paths import file_sha256
    from ..training.stages import stage_result
    size, digest = osp.getsize(checkpoint), None
    folds = sorted((int(m.group(1)), name) for name in _listdir(cv_dir)
                   for m in [re.fullmatch(r'fold(\d+)', name)] if m)
    for k, name in folds:
        try:
            result = stage_result(osp.join(cv_dir, name))
        except DataError:
            continue
        if result is None or osp.getsize(result[0]) != size:
            continue
        digest = digest or file_sha256(checkpoint)
        if file_sha256(result[0]) == digest:
            return k
    raise DataError(f'{checkpoint}: not the model of any fold of {cv_dir} ({len(folds)} '
                    'fold folder(s)); its tuned values were chosen on the probabilities '
                    "of those models and do not hold for another's: export one of them, "
                    'or give the values one by one')


def _listdir(folder: str) -> Sequence[str]:
    import os
    try:
        return os.listdir(folder)
    except OSError:
        return []


def _fold_thresholds(cv_dir: str, fold: int) -> Optional[Dict[str, Any]]:
    """The fold's own tuned thresholds ``{class: t}`` (``tuned/fold_thresholds.json``,
    by which cv's fold vote calibrates each model); None for a work dir tuned before
    cv kept them."""
    from ..utils.readers import read_json
    path = osp.join(cv_dir, CV_TUNED, FOLD_THRESHOLDS)
    if not osp.isfile(path):
        return None
    per_fold = read_json(path, 'fold thresholds')
    kind = per_fold.get(KIND_KEY, FOLD_KIND) if isinstance(per_fold, dict) else FOLD_KIND
    if kind != FOLD_KIND:
        raise DataError(f'{path}: holds {kind!r} values (its {KIND_KEY!r}), not '
                        f'{FOLD_KIND}')
    own = per_fold.get(f'fold{fold}') if isinstance(per_fold, dict) else None
    if not isinstance(own, dict):
        raise DataError(f'{path}: no thresholds for fold{fold}')
    return own


def tuned_postprocess(classes: Sequence[str], multi_label: bool,
                      thresholds: PerClassSpec = None, min_area: PerClassSpec = None,
                      keep_largest: PerClassSpec = None, cv_dir: Optional[str] = None,
                      connectivity: Optional[int] = None,
                      checkpoint: Optional[str] = None) -> Optional[Dict[str, Any]]:
    """The sidecar's ``postprocess`` entry, or None when nothing was given.

    Returns:
        ``{'thresholds': {class: t}, 'default_threshold': 0.5, 'min_area': {class: N},
        'keep_largest': {class: K}, 'connectivity': 8, 'source': {...}}``; classes a
        value does not name are absent from its mapping (threshold 0.5, no clean-up).
        With ``cv_dir`` and ``checkpoint``, the checkpoint must be one of cv's fold
        models (:func:`cv_fold_of`), and the thresholds are that fold's own (the ones
        cv's vote calibrated it by) where cv kept them.
        ``connectivity`` is 8 when not given; with ``cv_dir`` it is the one cv tuned
        at (:data:`~mmseg_ext.postprocessing.component_tuning.CV_CONNECTIVITY`), and
        another is refused: a minimum area or a component count chosen on 8-connected
        components means something else on 4-connected ones.

    Raises:
        InvalidArgumentError: ``cv_dir`` together with one of the explicit values or
            with a ``connectivity`` other than cv's, thresholds for a multi-class model, or a bad value.
        DataError: a missing or bad JSON file.
    """
    explicit = {'thresholds': thresholds, 'min_area': min_area, 'keep_largest': keep_largest}
    given = [name for name, value in explicit.items() if value is not None]
    if cv_dir is not None:
        if given:
            raise InvalidArgumentError(given[0], 'give the tuned values either one by one '
                                       'or as a cross-validation work dir, not both')
        if connectivity is not None and connectivity != CV_CONNECTIVITY:
            raise InvalidArgumentError('connectivity', f'{cv_dir} tuned its clean-up on '
                                       f'{CV_CONNECTIVITY}-connected components; its values '
                                       f'do not hold at {connectivity}')
        connectivity = CV_CONNECTIVITY
        explicit = dict(cv_tuned_files(cv_dir))
        fold = cv_fold_of(cv_dir, checkpoint) if checkpoint is not None else None
        own = _fold_thresholds(cv_dir, fold) if fold is not None else None
        if own is not None:
            explicit['thresholds'] = own
    elif not given:
        return None
    if explicit.get('thresholds') is not None and not multi_label:
        if cv_dir is not None:
            raise InvalidArgumentError('cv_dir', f'{cv_dir} holds tuned thresholds, which '
                                       'apply to a multi-label model; this one takes the '
                                       'most probable class')
        raise InvalidArgumentError('thresholds', 'thresholds apply to a multi-label model; '
                                   'this one takes the most probable class')
    values = dict(
        thresholds=per_class_option(explicit.get('thresholds'), classes, 'thresholds',
                                    float, 0.0, 1.0),
        min_area=per_class_option(explicit.get('min_area'), classes, 'min_area', int, 0),
        keep_largest=per_class_option(explicit.get('keep_largest'), classes,
                                      'keep_largest', int, 0))
    source = {name: (osp.abspath(v) if isinstance(v, str) and osp.isfile(v) else v)
              for name, v in explicit.items() if v is not None}
    if cv_dir is not None:
        source['cv_dir'] = osp.abspath(cv_dir)
        if fold is not None:
            source['cv_fold'] = fold
        if own is not None:
            source['thresholds'] = osp.abspath(osp.join(cv_dir, CV_TUNED, FOLD_THRESHOLDS))
    connectivity = 8 if connectivity is None else connectivity
    if connectivity not in (4, 8):
        raise InvalidArgumentError('connectivity', f'must be 4 or 8, got {connectivity}')
    return dict(values, default_threshold=DEFAULT_THRESHOLD, connectivity=int(connectivity),
                source=source)
