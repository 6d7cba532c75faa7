"""Stage 5, test: every fold model predicts the test images, the fold probabilities are
averaged (a fold left out of the classes it collapsed on), the tuned settings applied,
and ``submission.csv`` written and checked.

Its record is ``test/settings.json`` (:data:`TEST_RECORD`: test folder, format, row
sources, image list): the same settings resume, others are refused unless ``force``
(the submission of another test set is not overwritten unasked). Each ``test/fold<k>/``
records its prediction source and is reused for the same one; the ensemble and the
submission are redone every run.
"""
from __future__ import annotations

import hashlib
import os.path as osp
from dataclasses import dataclass
from typing import Callable, Dict, List, Mapping, Optional, Tuple

from mmengine.config import Config

from ...io.images import IMG_SUFFIXES, list_images, skipped_note
from ...training.stages import check_run_record, owned_output, write_run_record
from ...utils.errors import DataError, InvalidArgumentError
from ...utils.readers import check_folder
from .decisions import fold_vote, predict_test_fold
from .pool import Pool, config_task
from .predict import predict_folder, prediction_source
from .run import CVRun
from .summary import CVSummary
from .tuning import TuningResult

#: the test settings a work dir's ``submission.csv`` was written for
TEST_RECORD = osp.join('test', 'settings.json')
#: the competition format of the submission, by the pool's data set type
FORMAT_OF = {'HandBoneDataset': 'handbone', 'CocoSemanticDataset': 'trash',
             'PortStructuresDataset': 'port'}

Log = Callable[[str], None]


@dataclass
class SubmissionInputs:
    """The checked inputs of the test stage: ``images`` (paths under ``test_dir``) and
    the ``settings`` it records."""
    test_dir: str
    fmt: str
    test_json: Optional[str]
    sample: Optional[str]
    images: List[str]
    settings: dict


def _test_images(test_dir: str, test_json: Optional[str], log: Log) -> List[str]:
    """The test images: exactly those ``test_json`` lists (in its order), else every
    image of ``test_dir``."""
    from ...io.submission import read_test_json
    if test_json is not None:
        images = read_test_json(test_json)
        absent = [n for n in images if not osp.isfile(osp.join(test_dir, n))]
        if absent:
            raise DataError(f'{osp.join(test_dir, absent[0])}: image of {test_json} not '
                            f'found ({len(absent)} of {len(images)} absent)')
        return images
    skipped: List[str] = []
    images = list_images(test_dir, IMG_SUFFIXES, skipped)
    note = skipped_note(test_dir, skipped, IMG_SUFFIXES)
    if not images:
        raise DataError(f'{test_dir}: no images ({", ".join(IMG_SUFFIXES)})'
                        + (f'; {note}' if note else ''))
    if note:
        log(note)
    return images


def check_test_inputs(cfg: Config, config: str, test_dir: str, fmt: str,
                      test_json: Optional[str], sample: Optional[str],
                      log: Log) -> Tuple[List[str], dict]:
    """Everything the test stage will need, checked before any fold trains; returns the
    test images (paths under ``test_dir``) and the settings the test stage records.

    Raises:
        InvalidArgumentError: a format for the other task, or row sources it does not use.
        DataError: no test folder or images; a ``test_json`` image that is not there;
            two images of one file name for a format that names images by it.
    The run record of the test stage (:data:`TEST_RECORD`) is checked by
    :func:`check_test_record` once the run holds the work dir.
    """
    from ...io.submission import check_row_sources, get_format
    spec = get_format(fmt)
    check_row_sources(spec, test_json, sample)
    task = config_task(cfg)
    if spec.task != task:
        raise InvalidArgumentError('fmt', f'the {fmt} format needs {spec.task} '
                                   f'probabilities; {config} predicts {task} ones')
    check_folder(test_dir, 'test image folder', DataError)
    images = _test_images(test_dir, test_json, log)
    if spec.image_by == 'basename':  # its rows name images by file name alone
        named: dict = {}
        for rel in images:
            other = named.setdefault(osp.basename(rel), rel)
            if other != rel:
                raise DataError(f'{test_dir}: two images are named {osp.basename(rel)} '
                                f'({other}, {rel}); the {fmt} submission names each image '
                                'by its file name alone')
    settings = dict(test_dir=osp.abspath(test_dir), fmt=fmt,
                    test_json=osp.abspath(test_json) if test_json else None,
                    sample=osp.abspath(sample) if sample else None,
                    images=hashlib.sha256('\n'.join(images).encode()).hexdigest()[:16])
    return images, settings


def read_test_inputs(cfg: Config, config: str, pool: Pool, test_dir: Optional[str],
                fmt: Optional[str], test_json: Optional[str], sample: Optional[str],
                log: Log) -> Optional[SubmissionInputs]:
    """The checked test inputs (``fmt`` defaults to the pool's competition format);
    None without ``test_dir``.

    Raises:
        InvalidArgumentError: of ``fmt``: none given and the data set type has none.
    """
    if test_dir is None:
        return None
    fmt = fmt or FORMAT_OF.get(pool.dataset_type)
    if fmt is None:
        raise InvalidArgumentError('fmt', f'the data set type {pool.dataset_type} has no '
                                   'competition format of its own; name one '
                                   f'({", ".join(sorted(set(FORMAT_OF.values())))})')
    images, settings = check_test_inputs(cfg, config, test_dir, fmt, test_json, sample, log)
    _warn_pool_images(pool, test_dir, images, log)
    return SubmissionInputs(test_dir, fmt, test_json, sample, images, settings)


def _warn_pool_images(pool: Pool, test_dir: str, images: List[str], log: Log) -> None:
    """One warning line when test images are images of the labelled pool (the same
    file or a byte copy; sizes compared first, so it costs little): every fold model
    but one trained on them, so their test predictions and anything made from them
    (pseudo-labels, a submission) are not those of unseen images."""
    from ...io.paths import same_content
    shared = same_content([osp.join(test_dir, rel) for rel in images],
                         [osp.join(pool.img_dir, rel) for rel in pool.images])
    if shared:
        log(f'{test_dir}: {len(shared)} of the {len(images)} test images are images of '
            f'the labelled pool (e.g. {shared[0][0]} is {shared[0][1]}): the fold models '
            'trained on them, so their test predictions are not those of unseen images')


def check_test_record(work_dir: str, test: Optional[SubmissionInputs], force: bool) -> None:
    """The same test settings resume, others are refused (see :data:`TEST_RECORD`)."""
    if test is not None:
        check_run_record(work_dir, TEST_RECORD, test.settings, force, 'test-stage')


def _predict_test(run: CVRun, summary: CVSummary, test: SubmissionInputs,
                  choice: Optional[Mapping[str, str]]) -> List[str]:
    """Each fold model's test probabilities into ``test/fold<k>/``; their folders."""
    test_root = osp.join(summary.work_dir, 'test')
    prob_dirs = []
    for f in summary.folds:
        out = osp.join(test_root, f'fold{f.fold}')
        source = prediction_source(run.config, f.checkpoint, test.test_dir, test.images,
                                   run.tta, test_dir=osp.abspath(test.test_dir))
        run.log(f'fold {f.fold}: predicting {len(test.images)} test images')
        if run.plan is not None and choice:
            predict_test_fold(run.config, f.checkpoint, test.test_dir, test.images, out,
                              source, run.plan, choice, run.device, run.cfg_options,
                              run.progress, run.log, run.manifest)
        else:
            predict_folder(run.config, f.checkpoint, test.test_dir, test.images, out,
                           source, run.device, run.tta, run.cfg_options, run.progress,
                           run.log, run.manifest)
        prob_dirs.append(out)
    return prob_dirs


def _write_submission(run: CVRun, ensemble: str, csv: str, test: SubmissionInputs,
                      files: Mapping[str, str]) -> None:
    """The submission of ``ensemble`` with the tuned ``files``, written and checked."""
    from ...submission.check import check_submission
    from ...submission.make import make_submission
    with owned_output(run.manifest, csv):
        # the fold vote calibrated each model by its own thresholds: it decides at 0.5
        make_submission(ensemble, test.fmt, csv,
                        img_dir=test.test_dir, test_json=test.test_json, sample=test.sample,
                        min_area=files.get('min_area'),
                        keep_largest=files.get('keep_largest'), force=True,
                        progress=run.progress, owner=None)  # the manifest lists it
    report = check_submission(csv, test.fmt, img_dir=test.test_dir, test_json=test.test_json,
                              sample=test.sample)
    if not report.ok:
        raise DataError(f'{csv}: the written submission fails its check: '
                        f'{report.errors[0]}')
    run.log(f'{csv}: checked, {test.fmt} format')


def run_test_stage(run: CVRun, summary: CVSummary, test: SubmissionInputs, result: TuningResult,
               choice: Optional[Dict[str, str]]) -> Dict[str, str]:
    """The test stage: ``test/settings.json``, the folds' test probabilities, their
    vote and the checked submission; returns the paths written."""
    write_run_record(run.work_dir, TEST_RECORD, test.settings, run.manifest)
    prob_dirs = _predict_test(run, summary, test, choice)
    ensemble = osp.join(summary.work_dir, 'test', 'ensemble')
    run.log(f'averaging the {len(prob_dirs)} fold models\' probabilities into {ensemble}')
    fold_vote(prob_dirs, ensemble, summary.decisions, run.progress, run.log, run.manifest,
              result.fold_thresholds)
    csv = osp.join(summary.work_dir, 'submission.csv')
    _write_submission(run, ensemble, csv, test, result.files)
    return dict(test_ensemble=ensemble, submission=csv)
