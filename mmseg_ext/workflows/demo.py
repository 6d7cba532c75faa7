"""The project's main job on an embedded default: the multi-label hand-bone demo.

``tools/demo.py`` (the README's first command, through ``tools/quickstart.sh``) runs
:func:`run_demo`:

1. writes a synthetic hand-bone data set in the exact competition layout
   (``train/DCM``, ``train/outputs_json``, ``test/DCM``);
2. trains the small multi-label CPU config on patient-level fold 0 and validates it with
   the competition Dice (:class:`~mmseg_ext.evaluation.MultiLabelDiceMetric`);
3. predicts probabilities for the test images, writes the hand-bone submission CSV and
   checks it with the submission validator.

The demo owns its work dir (its manifest, :mod:`mmseg_ext.io.ownership`): a rerun
writes the outputs again and keeps the earlier run's, hidden, until the new ones are
complete (:func:`~mmseg_ext.io.rerun_aside.kept_aside`): a rerun that fails or is
interrupted puts the earlier demo back, and one killed outright is finished or undone by
the next run (:func:`~mmseg_ext.io.rerun_aside.recover_previous`). The demo lists only
the paths it writes (:class:`DemoNames`); a folder with files the demo did not write is
refused before anything is touched.
"""
from __future__ import annotations

import os
import os.path as osp
import re
import time
from dataclasses import dataclass
from typing import Dict, Optional

from mmengine.hooks import Hook

from ..io.owned_file import RECORD_TAIL

DEMO_CONFIG = 'custom_configs/demo/unet-s5-tiny_multilabel_1xb4-1500i_handbone-synth-128x128.py'
#: synthetic data: 12 training patients x 2 hands, 2 test patients, 256x256 images
DEMO_DATA = dict(num_patients=12, images_per_patient=2, num_test_patients=2,
                 size=(256, 256), seed=0)


@dataclass
class DemoResult:
    work_dir: str
    checkpoint: str
    metrics: Dict[str, float]
    metrics_file: str
    probs_dir: str
    submission: str
    submission_rows: int


class _LastValidation(Hook):
    """Keeps the metrics of the latest validation, so the demo does not validate a
    second time after training."""

    priority = 'VERY_LOW'

    def __init__(self) -> None:
        self.metrics: Dict[str, float] = {}

    def after_val_epoch(self, runner, metrics: Optional[Dict[str, float]] = None) -> None:
        self.metrics = dict(metrics or {})


#: the owner named in the demo work dir's manifest
TOOL = 'demo'


def _repo_root() -> str:
    return osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def run_demo(work_dir: str = 'work_dirs/demo_handbone', config: Optional[str] = None,
             max_iters: Optional[int] = None, progress: bool = True) -> DemoResult:
    """Generate data, train, validate, predict the test split and write the submission.

    ``work_dir`` is the demo's own (see the module doc): a new or empty folder, or the
    work dir of an earlier demo run, whose listed outputs are replaced once this run
    is complete.

    Args:
        work_dir: where data, logs, checkpoint, probabilities and the CSV go.
        config: the demo config (default :data:`DEMO_CONFIG` of this checkout).
        max_iters: override the config's training length (tests use a few iterations).
        progress: show progress bars.

    Raises:
        OutputError: ``work_dir`` holds files the demo did not write, or an output of
            the earlier run changed since (nothing is removed then).
    """
    from ..io.ownership import owned_work_dir
    from ..io.rerun_aside import KILLED, kept_aside, recover_previous
    from ..utils.errors import OutputError
    config = config or osp.join(_repo_root(), DEMO_CONFIG)
    names = DemoNames(work_dir, osp.basename(config))
    with owned_work_dir(work_dir, TOOL) as manifest:
        # a rerun killed outright (SIGKILL): finished or undone first (what it left
        # beside the earlier demo is moved aside, never deleted, and named)
        recover_previous(manifest)
        others = [n for n in _not_bookkeeping(work_dir) if n not in manifest.entries]
        killed = [n for n in others if n == KILLED or n.startswith(KILLED + '-')]
        if killed:
            raise OutputError(f'{osp.join(work_dir, killed[0])}: what a rerun killed '
                              'outright left (its partial outputs, and anything put in the '
                              'work dir meanwhile), moved there by a later run; look '
                              'through it, remove it, and run again')
        if others:  # checked before the earlier run's outputs are touched
            raise OutputError(f'{osp.join(work_dir, others[0])}: was not written by the '
                              'demo; not writing beside it (move it away, or use another '
                              'work directory)')
        # the earlier demo stays (hidden) until this one is complete; refused, with
        # nothing moved, when one of its outputs changed
        with kept_aside(manifest):
            try:
                return _run_demo(work_dir, config, max_iters, progress, names)
            finally:
                # only what this run wrote: a file someone put here meanwhile stays
                # theirs (unlisted: never removed, and named by the next run)
                for name in _not_bookkeeping(work_dir):
                    manifest.record(osp.join(work_dir, name), save=False,
                                    accept=names.written)
                manifest.save()


#: outputs of the demo at fixed names of its work dir
_FIXED = ('data', 'test_probs', 'submission.csv', 'val_metrics.json', 'last_checkpoint')
_CHECKPOINT = re.compile(r'^iter_\d+\.pth$')


class DemoNames:
    """Which paths of the demo's work dir this run wrote (:meth:`written`), to list at
    its end: the fixed outputs, its checkpoints and config dump with their ownership
    records, and its log folder with only mmengine's files in it. Inside ``data/`` and
    ``test_probs/``, published folders, only what their own manifests list is ever
    considered (:func:`~mmseg_ext.io.ownership.own_walk`).
    """

    def __init__(self, work_dir: str, config_name: str):
        self.work_dir = work_dir
        self.config_name = config_name
        #: the runner's timestamp, the name of this run's log folder, once known
        self.timestamp: Optional[str] = None
        #: a log folder named from this moment on can be this run's (the runner makes it
        #: before the run learns its name)
        self.started = time.strftime('%Y%m%d_%H%M%S', time.localtime(time.time() - 1))

    def written(self, item: str) -> bool:
        from ..io.owned_file import record_path
        from ..training.tool_runner import LOG_FOLDER, is_log_file
        rel = osp.relpath(item, self.work_dir).replace(os.sep, '/')
        top, _, rest = rel.partition('/')
        if top in _FIXED:
            return True
        if top == self.timestamp or (self.timestamp is None and LOG_FOLDER.match(top)
                                     and top >= self.started):
            return not rest or is_log_file(rest, top)
        if rest:
            return False
        if top == self.config_name or _CHECKPOINT.match(top):
            return osp.isfile(record_path(osp.join(self.work_dir, top)))
        if top.startswith('.') and top.endswith(RECORD_TAIL):
            named = top[1:-len(RECORD_TAIL)]
            return (named == self.config_name or bool(_CHECKPOINT.match(named))) and \
                osp.isfile(osp.join(self.work_dir, named))
        return False


def _not_bookkeeping(work_dir: str) -> list:
    """The names in ``work_dir`` besides its manifest and lock, sorted."""
    from ..io.manifest_records import MANIFEST
    from ..io.rerun_aside import PREVIOUS
    from ..io.work_dir_lock import LOCK
    return sorted(n for n in os.listdir(work_dir) if n not in (MANIFEST, LOCK, PREVIOUS))


def _run_demo(work_dir: str, config: str, max_iters: Optional[int], progress: bool,
              names: DemoNames) -> DemoResult:
    """:func:`run_demo` in its own work dir (locked and cleared)."""
    from ..inference.predictor import build_predictor, infer_folder
    from ..io.atomic import atomic_write_text
    from ..preparation.synthetic import write_synthetic_handbone
    from ..submission.check import check_submission
    from ..submission.make import make_submission
    from ..training.runner import train_config
    from ..training.tool_runner import ToolRunner
    from ..utils.errors import DataError
    from ..utils.readers import dumps_json

    data_root = osp.join(work_dir, 'data')
    write_synthetic_handbone(data_root, progress=progress, **DEMO_DATA)  # with its manifest

    options = {
        'train_dataloader.dataset.data_root': osp.join(data_root, 'train'),
        'val_dataloader.dataset.data_root': osp.join(data_root, 'train'),
        'test_dataloader.dataset.data_root': osp.join(data_root, 'train'),
    }
    if max_iters is not None:
        warmup = min(50, max(1, max_iters // 2))  # the demo config warms up for 50
        options.update({'train_cfg.max_iters': max_iters,
                        'train_cfg.val_interval': max_iters,
                        'default_hooks.checkpoint.interval': max_iters,
                        'param_scheduler.0.end': warmup,
                        'param_scheduler.1.begin': warmup,
                        # one iteration: warm-up only (the decay must not be empty)
                        'param_scheduler.1.end': max(max_iters, warmup + 1)})
    cfg = train_config(config, work_dir=work_dir, cfg_options=options)
    runner = ToolRunner.from_cfg(cfg)
    names.timestamp = runner.timestamp  # this run's log folder
    last_val = _LastValidation()
    runner.register_hook(last_val)
    runner.train()  # the training loop validates at its last iteration
    if not last_val.metrics:
        raise DataError(f'{config}: training ended without a validation at its last '
                        'iteration (train_cfg.val_interval / val_begin)')
    metrics = {k: float(v) for k, v in last_val.metrics.items()}
    checkpoint = osp.join(work_dir, f'iter_{cfg.train_cfg.max_iters}.pth')
    metrics_file = osp.join(work_dir, 'val_metrics.json')
    atomic_write_text(metrics_file, dumps_json(metrics, indent=2), force=True)

    test_images = osp.join(data_root, 'test', 'DCM')
    probs_dir = osp.join(work_dir, 'test_probs')
    predictor = build_predictor(config, checkpoint, cfg_options=options)
    infer_folder(predictor, test_images, probs_dir, force=True, progress=progress,
                 tool=TOOL)
    submission = osp.join(work_dir, 'submission.csv')
    summary = make_submission(probs_dir, 'handbone', submission, img_dir=test_images,
                              force=True, progress=progress, owner=None)  # the manifest
    report = check_submission(submission, 'handbone', img_dir=test_images)
    if not report.ok:
        raise DataError(f'{submission}: the demo wrote an invalid submission: '
                        f'{report.errors[0]}')
    return DemoResult(work_dir, checkpoint, metrics, metrics_file, probs_dir, submission,
                      summary.rows)
