"""Multi-stage runs that resume: the run record, stage markers and training a stage.

The commands that chain trainings and predictions (``tools/self_train.py``,
``tools/cv.py``) share one contract:

* the work directory holds a **run record** (a JSON of the command's parameters). The
  same command run again resumes; another command in that directory is refused,
  naming what differs, unless ``force`` asks to start again;
* a stage folder holds a **done marker** (``done.json``) once its training finished. It
  is a proof, not a name: it records the checkpoint inside the stage folder, that
  checkpoint's fingerprint (size, ``mtime_ns`` and a hash of its first and last MiB,
  :func:`~mmseg_ext.io.ownership.fingerprint`) and the stage's claims (a fold's index
  and the hash of its training list). A stage whose marker proves its claim is not
  trained again; a marker naming a checkpoint outside its folder, a checkpoint whose
  content changed, or other claims is refused (:class:`DataError` naming the marker),
  never taken as the stage's model. A marker whose checkpoint is gone: trained again;
* an unfinished stage resumes from its ``last_checkpoint`` only when that names a file
  this run wrote for the stage: inside the stage folder and listed in the work
  directory's manifest with its identity unchanged (a checkpoint copied in from another
  fold is refused);
* where a stage reads or writes its bookkeeping (``last_checkpoint``, ``done.json``,
  the run record), a special file (FIFO, socket, device) or a folder is refused by name,
  never opened (:func:`check_bookkeeping_file`);
* checkpoints are the last ones a run wrote (never chosen on a validation set);
* the work directory is locked and its outputs are listed as the tool's
  (:mod:`mmseg_ext.io.ownership`).
"""
from __future__ import annotations

import contextlib
import json
import os
import os.path as osp
import re
from typing import Callable, Dict, Iterable, Iterator, Optional, Tuple

from mmengine.config import Config

from ..io.atomic import atomic_write_text
from ..io.ownership import Manifest, fingerprint
from ..utils.errors import DataError, OutputError, OutputExistsError
from ..utils.readers import dumps_json, read_json, read_text, stat_problem

#: written in a stage folder once its training finished
STAGE_DONE = 'done.json'


def check_bookkeeping_file(path: str, what: str) -> bool:
    """Whether the stage file ``path`` (``last_checkpoint``, ``done.json``, a run
    record) exists; refuse one that is not a regular file without opening it (a FIFO
    would block the reader and hang mmengine's writer).

    Args:
        what: the file's role, for the message (``'run record'``).

    Raises:
        OutputError: ``<path>: not a regular file (a FIFO (named pipe)), where this tool
            keeps its <what>; ...``.
    """
    if not osp.lexists(path):
        return False
    problem = stat_problem(path)
    if problem and problem != 'file not found':
        raise OutputError(f'{path}: {problem}, where this tool keeps its {what}; remove '
                          'it and run again')
    return True


def last_checkpoint(work_dir: str) -> str:
    """The checkpoint mmengine's runner wrote last in ``work_dir``."""
    marker = osp.join(work_dir, 'last_checkpoint')
    check_bookkeeping_file(marker, 'last_checkpoint pointer')
    if not osp.isfile(marker):
        raise DataError(f'{work_dir}: no last_checkpoint (the training saved nothing)')
    path = read_text(marker, 'last_checkpoint file').strip()
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
    from .tool_runner import ToolRunner
    own_run_names(cfg)
    runner = ToolRunner.from_cfg(cfg)
    runner.train()
    return {k: float(v) for k, v in (runner.val() or {}).items()}


def train_only(cfg: Config) -> None:
    """Train with the stock runner (validation as the config's loop schedules it)."""
    from .tool_runner import ToolRunner
    own_run_names(cfg)
    ToolRunner.from_cfg(cfg).train()


@contextlib.contextmanager
def owned_output(manifest: Optional[Manifest], path: str, replace: bool = True,
                 accept: Optional[Callable[[str], bool]] = None) -> Iterator[None]:
    """Write ``path`` in the block as the tool's (see
    :meth:`~mmseg_ext.io.ownership.Manifest.recording`); without a manifest, just run
    the block. ``replace=False``: the block trains a stage in the folder ``path``, and
    only the paths a training writes there are listed (:func:`is_training_output`).
    ``accept``: which new paths the block writes (default: every one)."""
    if manifest is None:
        yield
        return
    if accept is None and not replace:
        def accept(item: str) -> bool:
            return is_training_output(path, item)
    with manifest.recording(path, replace=replace, accept=accept):
        yield


#: top-level names a training writes in its work dir: checkpoints, the pointer, the
#: subprocess log of a cv fold, the work dir's lock (log folders and config dumps are
#: checked by :func:`is_training_output`)
_TRAINING_NAMES = re.compile(r'^((iter|epoch)_\d+\.pth|best_[^/]+\.pth|last_checkpoint|'
                             r'train\.log|\.mmseg_ext\.lock)$')


def is_training_output(folder: str, item: str) -> bool:
    """Whether ``item`` (a path at or under the stage folder ``folder``) is one a
    training writes there: :data:`_TRAINING_NAMES`, a log folder and mmengine's files in
    it (:func:`~mmseg_ext.training.tool_runner.is_log_file`), a config dump (a ``.py``
    with its ownership record), or a hidden name made of one of these (an ownership
    record, a file being written)."""
    from ..io.owned_file import record_path
    from .tool_runner import LOG_FOLDER, is_log_file
    rel = osp.relpath(item, folder).replace(os.sep, '/')
    top, _, rest = rel.partition('/')
    if LOG_FOLDER.match(top):
        return not rest or is_log_file(rest, top)
    if rest:
        return False
    if _TRAINING_NAMES.match(top):
        return True
    if top.endswith('.py'):
        return osp.isfile(record_path(osp.join(folder, top)))
    if top.startswith('.') and top != '.':
        base = top[1:]
        return any(is_training_output(folder, osp.join(folder, base[:i]))
                   for i, ch in enumerate(base) if ch == '.' and i > 0)
    return False


def _inside(path: str, folder: str) -> bool:
    real, top = osp.realpath(path), osp.realpath(folder)
    return real.startswith(top.rstrip(os.sep) + os.sep)


def mark_stage_done(stage_dir: str, checkpoint: str, metrics: Dict[str, float],
                    claims: Optional[dict] = None,
                    manifest: Optional[Manifest] = None) -> None:
    """Write the done marker of a finished stage: its checkpoint (inside ``stage_dir``,
    recorded by its name there) with the checkpoint's fingerprint, the metrics, and ``claims`` (JSON-able facts the
    stage's model must have to be reused: ``{'fold': 0, 'train_list': hash}``).

    Raises:
        DataError: the checkpoint is not inside ``stage_dir`` (a caller's mix-up).
    """
    if not _inside(checkpoint, stage_dir):
        raise DataError(f'{checkpoint}: is not inside the stage folder {stage_dir}')
    path = osp.join(stage_dir, STAGE_DONE)
    # the name inside the stage folder, so that a copied or moved work dir still proves
    # its stages (``cp -a work other``)
    inside = osp.relpath(osp.realpath(checkpoint), osp.realpath(stage_dir))
    done = dict(checkpoint=inside, checkpoint_fingerprint=fingerprint(checkpoint),
                metrics=metrics, claims=json.loads(json.dumps(claims or {})))
    with owned_output(manifest, path):
        atomic_write_text(path, dumps_json(done, indent=1), force=True)
    if manifest is not None:
        manifest.precious = True  # a trained stage: never removed by a later refusal


def _copy_in_stage(named: str, stage_dir: str) -> Optional[str]:
    """Where ``named`` (a file of a stage folder elsewhere) lies in ``stage_dir`` when
    ``stage_dir`` is a copy of that folder: the same file name in a stage folder of the
    same name (``A/fold0/iter_8.pth`` -> ``B/fold0/iter_8.pth``); None for a file of a
    folder of another name (``fold1``'s checkpoint is never ``fold0``'s)."""
    if osp.basename(osp.dirname(osp.normpath(named))) != \
            osp.basename(osp.normpath(stage_dir)):
        return None
    return osp.join(stage_dir, osp.basename(named))


def _recorded_checkpoint(record: str, named: str, stage_dir: str, stamp: object
                         ) -> Optional[str]:
    """The checkpoint file a stage record names, inside ``stage_dir``; None when it is
    gone. A relative name is read inside ``stage_dir``. An absolute one (records written
    before names were relative, or a work dir copied with them) is the file of that name
    inside ``stage_dir`` when the recorded fingerprint proves it the same file.

    Raises:
        DataError: the record names a file outside ``stage_dir`` that no file of this
            stage matches (another stage's model), or a relative name leaving it.
    """
    candidate = named if osp.isabs(named) else osp.join(stage_dir, named)
    if not osp.isabs(named) and not _inside(candidate, stage_dir):
        raise DataError(f'{record}: names the checkpoint {named}, which is not in '
                        f'{stage_dir}; refusing to reuse it')
    if osp.isabs(named) and not _inside(named, stage_dir):
        copied = _copy_in_stage(named, stage_dir)
        if copied and osp.isfile(copied) and _same_file_content(copied, stamp):
            return copied
        if not osp.isfile(named):
            return None
        raise DataError(f'{record}: names the checkpoint {named}, which is not in '
                        f'{stage_dir} (another stage\'s model); refusing to reuse it')
    return candidate if osp.isfile(candidate) else None


def _same_file_content(path: str, stamp: object) -> bool:
    """Whether ``path`` has the recorded :func:`fingerprint` (size, time, hashed ends)."""
    try:
        return stamp == fingerprint(path)
    except OSError:
        return False


def stage_result(stage_dir: str, claims: Optional[dict] = None
                 ) -> Optional[Tuple[str, Dict[str, float]]]:
    """``(checkpoint, metrics)`` of a finished stage whose marker proves ``claims``;
    None when there is no marker or its checkpoint is gone (the stage trains again).

    Raises:
        DataError: naming the marker: unreadable; its checkpoint lies outside
            ``stage_dir`` (another stage's model); the checkpoint's content changed
            since the stage finished; or it records other claims (another fold, another
            training list).
    """
    path = osp.join(stage_dir, STAGE_DONE)
    if not check_bookkeeping_file(path, 'stage record'):
        return None
    try:
        done = read_json(path, 'stage record')
        checkpoint, metrics = str(done['checkpoint']), dict(done['metrics'])
        recorded, stamp = done.get('claims', {}), done.get('checkpoint_fingerprint')
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise DataError(f'{path}: not a stage record (unreadable or malformed)') from None
    checkpoint = _recorded_checkpoint(path, checkpoint, stage_dir, stamp)
    if checkpoint is None:
        return None
    if stamp != fingerprint(checkpoint):
        raise DataError(f'{path}: the checkpoint {checkpoint} changed since the stage '
                        'finished (its size, time or content differ from the record); '
                        'refusing to reuse it')
    wanted = json.loads(json.dumps(claims or {}))
    differs = sorted(k for k in wanted if not isinstance(recorded, dict)
                     or recorded.get(k) != wanted[k])
    if differs:
        got = recorded.get(differs[0]) if isinstance(recorded, dict) else None
        raise DataError(f'{path}: records {differs[0]}={got!r}, this stage needs '
                        f'{wanted[differs[0]]!r} (a model of another stage or training '
                        'set); refusing to reuse it')
    return checkpoint, metrics


def _point_inside(marker: str, named: str, stage_dir: str,
                  manifest: Optional[Manifest]) -> str:
    """The checkpoint of a copied or moved work dir: mmengine's ``last_checkpoint``
    holds an absolute path, so in a copy it names the original folder's file. When the
    file of that name inside ``stage_dir`` (:func:`_copy_in_stage`) is one this run wrote (listed in
    ``manifest``, unchanged), the pointer is written again to name it, so that mmengine
    resumes from the copy. Returns that file.

    Raises:
        DataError: no manifest, or the file inside is not the tool's: the pointer names
            another stage's checkpoint.
    """
    inside = _copy_in_stage(named, stage_dir)
    if manifest is None or not inside or not osp.isfile(inside) \
            or not (manifest.owns(marker) and manifest.owns(inside)):
        raise DataError(f'{marker}: names {named}, which is not in {stage_dir} (another '
                        'stage\'s checkpoint); refusing to resume from it')
    with owned_output(manifest, marker):
        atomic_write_text(marker, inside, force=True)
    return inside


def discard_stale_pointer(stage_dir: str, manifest: Optional[Manifest]) -> bool:
    """Remove ``<stage_dir>/last_checkpoint`` when it is this run's own pointer (listed
    in ``manifest``, unchanged) and the checkpoint it names is gone (the user deleted
    it to train the stage again), or, in a copied work dir whose pointer names the
    original folder's checkpoint, the stage's own copy of it is gone: training would
    otherwise refuse to replace a pointer to a deleted checkpoint. A pointer the
    manifest does not list stays (training then names it).

    Returns:
        Whether it was removed.
    """
    marker = osp.join(stage_dir, 'last_checkpoint')
    if manifest is None or not osp.isfile(marker) or osp.islink(marker) \
            or not manifest.owns(marker):
        return False
    try:
        named = read_text(marker, 'last_checkpoint file').strip()
    except (OSError, ValueError):
        return False
    if not named or '\n' in named:
        return False
    if osp.lexists(named):
        # a copied work dir: the pointer names the original folder's checkpoint, and the
        # stage's own copy of it is gone
        copy = None if _inside(named, stage_dir) else _copy_in_stage(named, stage_dir)
        if copy is None or osp.lexists(copy):
            return False
    with owned_output(manifest, marker):
        os.remove(marker)
    return True


def resumable(stage_dir: str, manifest: Optional[Manifest] = None) -> bool:
    """Whether an unfinished stage left a checkpoint to resume from: its
    ``last_checkpoint`` names a file inside ``stage_dir`` that this run wrote (listed in
    ``manifest`` and unchanged since).

    Raises:
        DataError: ``last_checkpoint`` names a file outside ``stage_dir``, or one the
            manifest does not list as the tool's (copied in, or changed since).
        OutputError: ``last_checkpoint`` is a special file or a folder.
    """
    marker = osp.join(stage_dir, 'last_checkpoint')
    if not check_bookkeeping_file(marker, 'last_checkpoint pointer') \
            or not osp.isfile(marker):
        return False
    try:
        path = read_text(marker, 'last_checkpoint file').strip()
    except (OSError, ValueError):
        raise DataError(f'{marker}: unreadable') from None
    if not path:
        return False
    if not osp.isfile(path):
        inside = _copy_in_stage(path, stage_dir)
        if _inside(path, stage_dir) or not inside or not osp.isfile(inside):
            discard_stale_pointer(stage_dir, manifest)
            return False
        # a moved work dir: the original folder is gone, the copy holds the checkpoint
        path = _point_inside(marker, path, stage_dir, manifest)
    elif not _inside(path, stage_dir):
        if discard_stale_pointer(stage_dir, manifest):  # a copy whose checkpoint is gone
            return False
        path = _point_inside(marker, path, stage_dir, manifest)
    if manifest is not None and not (manifest.owns(marker) and manifest.owns(path)):
        which = path if not manifest.owns(path) else marker
        raise DataError(f'{marker}: names {path}, which this run did not write for this '
                        f'stage ({which} is not listed as the tool\'s, or changed since); '
                        'refusing to resume from it')
    return True


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
        OutputError: the record's path holds a folder or a special file.
    """
    path = osp.join(work_dir, record_name)
    if check_bookkeeping_file(path, 'run record'):
        try:
            earlier = read_json(path, 'run record')
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


def same_prob_source(prob_dir: str, source: dict) -> bool:
    """Whether ``prob_dir`` is a finished probability folder made from ``source``
    (reused then; anything else is predicted again)."""
    from ..io.probs import ProbFolder
    try:
        return osp.isfile(osp.join(prob_dir, 'index.json')) and \
            ProbFolder(prob_dir).source == json.loads(json.dumps(source))
    except DataError:
        return False


def write_run_record(work_dir: str, record_name: str, record: dict,
                     manifest: Optional[Manifest] = None) -> None:
    """Write the run record (listed in ``manifest`` as the tool's)."""
    path = osp.join(work_dir, record_name)
    with owned_output(manifest, path):
        atomic_write_text(path, dumps_json(record, indent=1), force=True)
