"""``cross_validate``: the stages of a cross-validation run, in order (see the package
doc), after the checks that need no work dir."""
from __future__ import annotations

import copy
import time
from typing import List, Optional, Sequence, Tuple

from mmengine.config import Config

from ...config.loading import check_runner_path, config_hash, load_config
from ...config.outputs import check_no_shared_outputs
from ...io.ownership import owned_work_dir
from ...io.paths import check_output_apart
from ...utils.errors import InvalidArgumentError
from .commands import FoldCommandFn, check_ranks_per_fold, cuda_count, plan_launch
from .folds import check_folds, train_folds
from .oof import merge_stage, predict_validation
from .pool import add_pseudo_labels, check_val_split, config_task, read_pool, run_inputs
from .run import TOOL, CVRun, Log, check_record, run_record, start_run
from .splits import pool_folds, write_splits
from .summary import CVSummary, finish
from .testset import check_test_record, read_test_inputs, run_test_stage
from .tuning import choose_views, oof_ground_truth, pool_ground_truth, tune_stage


def _print_log(message: str) -> None:
    from mmengine.logging import print_log
    print_log(message, logger='current')


def check_fold_request(num_folds: int, folds: Optional[Sequence[int]], gpus: int,
                       ranks_per_fold: int) -> Optional[List[int]]:
    """The folds asked for (sorted; None: all, listed only once the pool has shown that
    K folds fit, so a huge K stays one line and never a list of K fold numbers).

    Raises:
        InvalidArgumentError: K < 2, a fold outside 0..K-1, negative GPUs or ranks.
    """
    if num_folds < 2:
        raise InvalidArgumentError('num_folds', f'must be >= 2, got {num_folds}')
    chosen = None if folds is None else sorted(set(folds))
    bad = [k for k in chosen or () if not 0 <= k < num_folds]
    if bad:
        raise InvalidArgumentError('folds', f'{bad[0]} is not a fold of 0..{num_folds - 1}')
    if ranks_per_fold < 0 or gpus < 0:
        raise InvalidArgumentError('gpus' if gpus < 0 else 'ranks_per_fold', 'must be >= 0')
    return chosen


def load_cv_config(config: str, cfg_options: Optional[dict], tta: bool
                   ) -> Tuple[Config, Optional[object]]:
    """The config, its val split checked; with ``tta`` its TTA checked and, multi-label,
    the plan of TTA chosen per class on OOF evidence (a ``tta_choice.ViewPlan``)."""
    cfg = load_config(config, cfg_options)
    check_val_split(cfg, config)
    check_no_shared_outputs(cfg, config, 'the fold trainings')
    plan = None
    if tta:
        from ...config.tta import check_tta_config
        check_tta_config(copy.deepcopy(cfg), config)
        if config_task(cfg) == 'multi-label':
            from ...postprocessing.tta_choice import cv_view_plan
            plan = cv_view_plan(cfg, config)
    return cfg, plan


def cross_validate(config: str, num_folds: int, work_dir: str,
                   folds: Optional[Sequence[int]] = None, splits: Optional[str] = None,
                   seed: int = 0, group_regex: Optional[str] = None, tta: bool = False,
                   test_dir: Optional[str] = None, fmt: Optional[str] = None,
                   test_json: Optional[str] = None, sample: Optional[str] = None,
                   gpus: int = 0, ranks_per_fold: int = 0,
                   fold_command: Optional[FoldCommandFn] = None,
                   device: Optional[str] = None, cfg_options: Optional[dict] = None,
                   force: bool = False, progress: bool = True,
                   log: Optional[Log] = None, pseudo_labels: Optional[str] = None,
                   pseudo_images: Optional[str] = None) -> CVSummary:
    """Run the stages of :mod:`~mmseg_ext.workflows.cross_validation` on ``config`` (its
    train set is the pool, its val pipeline and evaluator validate the folds) with K =
    ``num_folds`` >= 2 in ``work_dir``; return their scores and outputs.

    ``folds`` trains only these (the OOF stages need all); ``splits`` is a folder of
    ``tools/kfold.py`` split files instead of new folds (``seed``; ``group_regex``
    groups by the first capture group of a regex on the split name). ``tta`` predicts
    with the config's ``tta_pipeline``. ``test_dir`` writes the fold ensemble's
    submission (``fmt``, default by the data set type; row sources ``test_json``,
    ``sample``). ``gpus`` spreads the folds over GPUs (``<= 1`` or no CUDA: one after
    the other in this process); ``ranks_per_fold`` trains each with that many ranks;
    ``fold_command`` (``(fold config, fold work dir, ranks, resume) -> argv``) trains a
    fold in another process, needed when ``gpus > 1`` or ``ranks_per_fold``.
    ``device``: inference device (default the first GPU, else the CPU). ``force``
    starts again in a work dir of another run, removing the unchanged outputs the
    earlier run listed. ``log`` gets one line per stage (default mmengine's print_log).
    ``pseudo_labels``: a hand-bone JSON folder of ``tools/pseudo_label.py`` whose images
    are under ``pseudo_images`` (default ``test_dir``): every fold also trains on them,
    none validates on them (:func:`~.pool.add_pseudo_labels`); a config whose training
    set is a ``ConcatDataset`` does the same for any data set type.

    Raises:
        OutputError: the work dir is in use by another run, was not made by this tool
            (content without its manifest), or ``force`` met an output that changed
            since this tool wrote it.
        InvalidArgumentError: of ``work_dir``: it is, holds or lies inside an input.
        DataError: a fold's ``done.json`` that does not prove its fold, training list
            and checkpoint content.
    """
    check_runner_path(work_dir, 'work_dir')
    log = log or _print_log
    start = time.perf_counter()
    chosen = check_fold_request(num_folds, folds, gpus, ranks_per_fold)
    cuda = cuda_count()
    check_ranks_per_fold(ranks_per_fold, gpus, cuda)
    cfg, plan = load_cv_config(config, cfg_options, tta)
    pool = read_pool(cfg, config, group_regex, progress)
    if config_task(cfg) == 'multi-label':  # what the OOF tuning scores against, now
        pool_ground_truth(pool, ['any'])
    if pseudo_labels is not None:
        if (pseudo_images or test_dir) is None:
            raise InvalidArgumentError('pseudo_images', 'pseudo-labels need the folder of '
                                       'their images (or the test images)')
        add_pseudo_labels(pool, pseudo_labels, pseudo_images or test_dir)
    elif pseudo_images is not None:
        raise InvalidArgumentError('pseudo_images', 'goes with pseudo_labels')
    fold_of_image = pool_folds(pool, splits, num_folds, seed, config)
    test = read_test_inputs(cfg, config, pool, test_dir, fmt, test_json, sample, log)
    # a work dir never holds inputs: force would remove them, and fixed output names
    # (test/, submission.csv) would land among them
    check_output_apart(work_dir, run_inputs(config, cfg, pool, splits, test_dir, test_json,
                                            sample), 'work_dir')
    launch = plan_launch(gpus, ranks_per_fold, cuda, fold_command, log)
    record = run_record(config, config_hash(cfg), num_folds, seed, group_regex, fold_of_image,
                        pool.extra_stamp() if pool.extra else None)
    with owned_work_dir(work_dir, TOOL) as manifest:
        resume = check_record(work_dir, record, num_folds, force)
        check_test_record(work_dir, test, force)
        chosen = list(range(num_folds)) if chosen is None else chosen
        run = CVRun(config, cfg, cfg_options, pool, fold_of_image, num_folds, chosen,
                    work_dir, manifest, resume, force, device, tta, progress, log, plan)
        done = check_folds(run)  # every proof checked before anything is written
        start_run(run, record)
        split_dir = write_splits(run)
        train_folds(run, done, split_dir, launch)
        summary, sources = predict_validation(run, split_dir)
        if not run.complete:
            return finish(summary, start, manifest, partial=True)
        gt = oof_ground_truth(run, summary.folds[0].work_dir)
        choice, scores = choose_views(run, gt, sources)
        oof = merge_stage(run, summary)
        result = tune_stage(run, summary, oof, gt, scores)
        if test is not None:
            summary.files.update(run_test_stage(run, summary, test, result, choice))
        return finish(summary, start, manifest)
