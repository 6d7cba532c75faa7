"""Stage 2, folds: each fold trains the config on the other folds into ``fold<k>/``.

Its record is ``fold<k>/done.json`` (:func:`~mmseg_ext.training.stages.mark_stage_done`):
the checkpoint, its fingerprint and the fold's claims (:func:`fold_claims`: fold, K,
training list). A fold whose marker proves its claims is not trained again; an
unfinished fold resumes from a checkpoint this run wrote (``last_checkpoint``), and a
fold folder holding anything else is refused before any fold trains.
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import os
import os.path as osp
from typing import Dict, List, Optional, Tuple

import numpy as np
from mmengine.config import Config
from tqdm import tqdm

from ...training.stages import (
    last_checkpoint,
    mark_stage_done,
    owned_output,
    resumable,
    stage_result,
)
from .commands import FoldCommand, FoldLaunch, run_commands
from .pool import Pool, plain_dict
from .run import CVRun

#: ``(checkpoint, metrics)`` of a finished fold, None for one to train
FoldResult = Optional[Tuple[str, Dict[str, float]]]


def fold_claims(pool: Pool, fold_of_image: np.ndarray, k: int, num_folds: int) -> dict:
    """What fold ``k``'s model must have been trained for: the fold, K, and the hash of
    its training list (the pool names outside fold ``k``)."""
    train = [pool.names[i] for i in np.flatnonzero(fold_of_image != k)]
    claims = dict(fold=k, num_folds=num_folds,
                  train_list=hashlib.sha256('\n'.join(train).encode()).hexdigest()[:16])
    if pool.extra:
        claims['extra_train'] = pool.extra_stamp()
    return claims


def fold_datasets(cfg: Config, pool: Pool, split_dir: str, k: int) -> Tuple[dict, dict]:
    """The train and val data set configs of fold ``k``: the pool's other folds (plus
    the extra training sets, :mod:`.pool`) and fold ``k``."""
    train_cfg = plain_dict(cfg.train_dataloader.dataset)
    if train_cfg.get('type') == 'ConcatDataset':  # the pool is its first member
        train_cfg = train_cfg['datasets'][0]
    train = dict(copy.deepcopy(pool.dataset), pipeline=train_cfg['pipeline'])
    val = dict(copy.deepcopy(pool.dataset),
               pipeline=plain_dict(cfg.val_dataloader.dataset)['pipeline'])
    train[pool.split_key] = osp.abspath(osp.join(split_dir, f'train_fold{k}.txt'))
    val[pool.split_key] = osp.abspath(osp.join(split_dir, f'val_fold{k}.txt'))
    if pool.extra:
        train = dict(type='ConcatDataset', datasets=[train, *copy.deepcopy(pool.extra)])
    return train, val


def use_fold(cfg: Config, pool: Pool, split_dir: str, k: int) -> None:
    """Point ``cfg`` at fold ``k`` (in place): train on the other folds, validate and
    test on fold ``k`` with the val pipeline and evaluator."""
    train, val = fold_datasets(cfg, pool, split_dir, k)
    cfg.train_dataloader.dataset = train
    cfg.val_dataloader.dataset = val
    cfg.test_dataloader = copy.deepcopy(cfg.val_dataloader)
    cfg.test_evaluator = copy.deepcopy(cfg.val_evaluator)


def _claims(run: CVRun, k: int) -> dict:
    return fold_claims(run.pool, run.fold_of_image, k, run.num_folds)


def finished(run: CVRun, k: int) -> FoldResult:
    """``(checkpoint, metrics)`` of fold ``k`` when its marker proves it is this fold's
    model, None when it is to be trained (see :func:`~mmseg_ext.training.stages.stage_result`)."""
    return stage_result(run.fold_dir(k), _claims(run, k)) if run.resume else None


def fold_checkpoint(run: CVRun, k: int) -> str:
    """The checkpoint of trained fold ``k`` (its marker checked again)."""
    return stage_result(run.fold_dir(k), _claims(run, k))[0]


def _mark_done(run: CVRun, k: int) -> None:
    mark_stage_done(run.fold_dir(k), last_checkpoint(run.fold_dir(k)), {}, _claims(run, k),
                    run.manifest)


def _can_resume(run: CVRun, k: int) -> bool:
    return not run.force and osp.isdir(run.fold_dir(k)) and \
        resumable(run.fold_dir(k), run.manifest)


def check_folds(run: CVRun) -> Dict[int, FoldResult]:
    """The finished folds, every proof checked before any write; the folds to train
    hold only the tool's files (checked before an earlier run is cleared).

    Raises:
        DataError: a ``done.json`` that does not prove its fold, or a resume checkpoint
            this run did not write.
        OutputError: a fold folder holds files the tool did not write.
    """
    done = {k: finished(run, k) for k in run.chosen}
    for k in run.chosen:
        if not done[k]:
            run.manifest.check_in_place(run.fold_dir(k), unlisted_only=run.force)
            if not run.force:
                _can_resume(run, k)  # a resume checkpoint this run wrote, or refused
    return done


def _fold_command(run: CVRun, k: int, split_dir: str, launch: FoldLaunch) -> FoldCommand:
    """Fold ``k``'s config written to ``configs/fold<k>.py`` and the command training it."""
    from ...config.loading import load_config
    os.makedirs(run.fold_dir(k), exist_ok=True)
    fold_cfg = load_config(run.config, run.cfg_options, work_dir=run.fold_dir(k))
    use_fold(fold_cfg, run.pool, split_dir, k)
    path = osp.join(run.work_dir, 'configs', f'fold{k}.py')
    os.makedirs(osp.dirname(path), exist_ok=True)
    with owned_output(run.manifest, path):
        fold_cfg.dump(path)
    argv = launch.fold_command(path, run.fold_dir(k), launch.ranks_per_fold,
                               _can_resume(run, k))
    return FoldCommand(k, argv, osp.join(run.fold_dir(k), 'train.log'),
                       max(launch.ranks_per_fold, 1) if launch.gpus >= 1 else 1)


def _train_in_subprocesses(run: CVRun, todo: List[int], split_dir: str,
                           launch: FoldLaunch) -> None:
    commands = [_fold_command(run, k, split_dir, launch) for k in todo]
    with contextlib.ExitStack() as stack:
        for k in todo:
            stack.enter_context(owned_output(run.manifest, run.fold_dir(k), replace=False))
        run_commands(commands, launch.gpus, run.log)
    for k in todo:
        _mark_done(run, k)


def _train_in_process(run: CVRun, todo: List[int], split_dir: str) -> None:
    from ...training.runner import train_config
    from ...training.stages import train_only  # looked up per run: tests replace it
    for k in tqdm(todo, desc='folds', unit='fold', disable=not run.progress or len(todo) < 2):
        run.log(f'fold {k}: training on {int((run.fold_of_image != k).sum())} images, '
                f'validating on {int((run.fold_of_image == k).sum())} in '
                f'{run.fold_dir(k)}')
        with owned_output(run.manifest, run.fold_dir(k), replace=False):
            fold_cfg = train_config(run.config, work_dir=run.fold_dir(k),
                                    resume=_can_resume(run, k), cfg_options=run.cfg_options,
                                    edit=lambda c, k=k: use_fold(c, run.pool, split_dir, k))
            train_only(fold_cfg)
        _mark_done(run, k)


def train_folds(run: CVRun, done: Dict[int, FoldResult], split_dir: str,
                launch: FoldLaunch) -> None:
    """The folds stage: train the chosen folds not finished earlier (``done``)."""
    todo = [k for k in run.chosen if not done[k]]
    for k in run.chosen:
        if done[k]:
            run.log(f'fold {k}: finished earlier ({done[k][0]})')
    if launch.subprocesses:
        _train_in_subprocesses(run, todo, split_dir, launch)
    else:
        _train_in_process(run, todo, split_dir)
