"""One cross-validation run in its locked work dir, and its run record ``cv.json``.

The record holds the command (config path and content hash, K, seed, group regex, a
hash of the fold assignment). The same command again resumes; another one is refused
unless ``force``, which first removes what the earlier run listed as its own.
"""
from __future__ import annotations

import hashlib
import json
import os.path as osp
from dataclasses import dataclass
from functools import cached_property
from typing import Callable, Dict, List, Optional

import numpy as np
from mmengine.config import Config

from ...io.ownership import Manifest
from ...training.stages import check_run_record, write_run_record
from .pool import Pool

#: the run record in the work dir
RUN_RECORD = 'cv.json'
#: the tool named in the work directory's manifest
TOOL = 'tools/cv.py'

Log = Callable[[str], None]


@dataclass
class CVRun:
    """What every stage of one run reads: the config, the pool and its folds
    (``fold_of_image``: ``(N,)`` int64, the validation fold of each pool image), the
    folds this run trains (``chosen``), the locked work dir and its manifest."""
    config: str
    cfg: Config
    cfg_options: Optional[dict]
    pool: Pool
    fold_of_image: np.ndarray
    num_folds: int
    chosen: List[int]
    work_dir: str
    manifest: Manifest
    resume: bool
    force: bool
    device: Optional[str]
    tta: bool
    progress: bool
    log: Log
    plan: Optional[object] = None  # a tta_choice.ViewPlan: TTA chosen per class

    def fold_dir(self, k: int) -> str:
        return osp.join(self.work_dir, f'fold{k}')

    @property
    def split_dir(self) -> str:
        return osp.join(self.work_dir, 'splits')

    @cached_property
    def fold_of(self) -> Dict[str, int]:
        """``{image key: validation fold}`` of every pool image."""
        return {key: int(self.fold_of_image[i]) for i, key in enumerate(self.pool.keys)}

    @property
    def complete(self) -> bool:
        """Whether this run holds every fold (the OOF and test stages need all)."""
        return len(self.chosen) == self.num_folds


def run_record(config: str, config_hash: str, num_folds: int, seed: int,
               group_regex: Optional[str], fold_of_image: np.ndarray,
               extra_train: Optional[str] = None) -> dict:
    """The command a work dir's ``cv.json`` records (``extra_train``: the stamp of the
    extra training sets, :meth:`~.pool.Pool.extra_stamp`, when there are any)."""
    record = dict(config=osp.abspath(config), config_hash=config_hash,
                  num_folds=num_folds, seed=seed, group_regex=group_regex,
                  splits=hashlib.sha256(json.dumps(fold_of_image.tolist()).encode())
                  .hexdigest()[:16])
    if extra_train is not None:
        record['extra_train'] = extra_train
    return record


def check_record(work_dir: str, record: dict, num_folds: int, force: bool) -> bool:
    """Whether ``work_dir`` holds an unfinished run of the same command (resume it).

    Raises:
        OutputExistsError: another command's run (or its outputs without a record),
            without ``force``.
    """
    outputs = [osp.join(work_dir, d) for d in
               ['splits', 'oof_probs', 'tuned'] + [f'fold{k}' for k in range(num_folds)]]
    return check_run_record(work_dir, RUN_RECORD, record, force, 'cross-validation',
                            outputs)


def clear_earlier_run(manifest: Manifest, log: Optional[Log] = None) -> None:
    """Remove what an earlier run listed as its own in the work dir (``force``): every
    listed output that is unchanged (folds' checkpoints, markers, logs and
    probabilities, the merged, tuned and test outputs). Nothing is removed by name:
    files the tool did not list stay.

    Raises:
        OutputError: a listed file changed since the tool wrote it (nothing removed).
    """
    removed = manifest.remove_all()
    if log is not None and removed:
        log(f'{manifest.work_dir}: removed {len(removed)} outputs of the earlier run')


def start_run(run: CVRun, record: dict) -> None:
    """Resume, or clear the earlier run (``force``); then write ``cv.json``."""
    if run.resume:
        run.log(f'resuming the cross-validation run in {run.work_dir}: finished folds '
                'are kept')
    elif run.force:
        clear_earlier_run(run.manifest, run.log)
    write_run_record(run.work_dir, RUN_RECORD, record, run.manifest)
