"""Multi-stage runs that resume: the run record, stage markers and training a stage.

The commands that chain trainings and predictions (``tools/self_train.py``,
``tools/cv.py``) share one contract:

* the work directory holds a **run record** (a JSON of the command's parameters). The
  same command run again resumes; another command in that directory is refused,
  naming what differs, unless ``force`` asks to start again;
* a stage folder holds a **done marker** once its training finished; a stage with a
  marker whose checkpoint exists is not trained again;
* checkpoints are the last ones a run wrote (never chosen on a validation set).
"""
from __future__ import annotations

import json
import os.path as osp
from typing import Dict, Iterable, Optional, Tuple

from mmengine.config import Config

from ..io.atomic import atomic_write_text
from ..utils.errors import DataError, OutputExistsError

#: written in a stage folder once its training finished
STAGE_DONE = 'done.json'


def last_checkpoint(work_dir: str) -> str:
    """The checkpoint mmengine's runner wrote last in ``work_dir``."""
    marker = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(marker):
        raise DataError(f'{work_dir}: no last_checkpoint (the training saved nothing)')
    with open(marker) as f:
        path = f.read().strip()
    if not osp.isfile(path):
        raise DataError(f'{marker}: names {path}, which does not exist')
    return path


def own_run_names(cfg: Config) -> None:
    """Give a runner of ``cfg`` its own logger, message hub and visualizer.

    mmengine keeps them as named singletons: the logger and message hub are named after
    the start second, the visualizer ``'visualizer'``. A second runner in the same
    process (the next fold, the student after the teacher) would otherwise get the
    first one's visualizer, writing its scalars into the first run's ``vis_data``, and,
    started in the same second, its log file too.
    """
    import uuid
    tag = f'{osp.basename(osp.normpath(str(cfg.work_dir)))}_{uuid.uuid4().hex[:8]}'
    cfg.experiment_name = tag
    if cfg.get('visualizer'):
        cfg.visualizer.name = f'{cfg.visualizer.get("name", "visualizer")}_{tag}'


def train_and_validate(cfg: Config) -> Dict[str, float]:
    """Train with the stock runner; return the validation metrics of the final model."""
    from mmengine.runner import Runner
    own_run_names(cfg)
    runner = Runner.from_cfg(cfg)
    runner.train()
    return {k: float(v) for k, v in (runner.val() or {}).items()}


def train_only(cfg: Config) -> None:
    """Train with the stock runner (validation as the config's loop schedules it)."""
    from mmengine.runner import Runner
    own_run_names(cfg)
    Runner.from_cfg(cfg).train()


def mark_stage_done(stage_dir: str, checkpoint: str, metrics: Dict[str, float]) -> None:
    """Write the done marker of a finished stage."""
    atomic_write_text(osp.join(stage_dir, STAGE_DONE),
                      json.dumps(dict(checkpoint=checkpoint, metrics=metrics), indent=1),
                      force=True)


def stage_result(stage_dir: str) -> Optional[Tuple[str, Dict[str, float]]]:
    """``(checkpoint, metrics)`` of a finished stage, else None (no marker, or its
    checkpoint is gone)."""
    try:
        with open(osp.join(stage_dir, STAGE_DONE), encoding='utf-8') as f:
            done = json.load(f)
        if osp.isfile(done['checkpoint']):
            return done['checkpoint'], dict(done['metrics'])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def check_run_record(work_dir: str, record_name: str, record: dict, force: bool,
                     what: str, outputs: Iterable[str] = ()) -> bool:
    """Whether ``work_dir`` holds an unfinished run of the same command (resume it).

    Args:
        record_name: file name of the record in ``work_dir``.
        record: the parameters of this command (JSON-able).
        what: the kind of run, for messages (``'self-training'``).
        outputs: paths an earlier run of this kind writes; without a record they are
            refused (an older run, or one whose record was deleted).

    Raises:
        OutputExistsError: without ``force``, the work dir holds a run of another
            command (the message names the parameters that differ), or outputs of a
            run without a record.
    """
    path = osp.join(work_dir, record_name)
    if osp.isfile(path):
        try:
            with open(path, encoding='utf-8') as f:
                earlier = json.load(f)
        except (OSError, ValueError):
            earlier = {}
        if not isinstance(earlier, dict):
            earlier = {}
        if earlier == record:
            return not force
        if not force:
            differs = sorted(k for k in set(record) | set(earlier)
                             if record.get(k) != earlier.get(k))
            raise OutputExistsError(path, f'records another {what} run in this work '
                                    f'directory (it differs in {", ".join(differs)})')
        return False
    if not force:
        for earlier_out in outputs:
            if osp.exists(earlier_out):
                raise OutputExistsError(earlier_out, f'exists from an earlier {what} run '
                                        'in this work directory')
    return False


def write_run_record(work_dir: str, record_name: str, record: dict) -> None:
    atomic_write_text(osp.join(work_dir, record_name), json.dumps(record, indent=1),
                      force=True)
