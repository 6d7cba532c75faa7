"""The runner the tools build: mmengine's ``Runner``, with a config dump that keeps user files.

mmengine's ``Runner`` dumps the config it runs as ``<work_dir>/<config file name>`` when
it starts, replacing whatever file has that name. A work dir is a folder the tools only
add to, and it may hold inputs: the config itself (``--work-dir`` the config's own
folder), or an edited copy of it that the user keeps there. :class:`ToolRunner` writes
the dump with an ownership record (:mod:`mmseg_ext.io.owned_file`) and replaces an
existing file of that name only when it is a dump a tool run wrote and is unchanged
since (a resumed run, a second test of one model). Any other file stays as it is; this
run's config is then dumped into its own log folder (``<work_dir>/<timestamp>/``) and
the log says where.

A work dir holds one run at a time: rank 0 of a :class:`ToolRunner` takes the work
dir's :class:`~mmseg_ext.io.work_dir_lock.WorkDirLock` before mmengine writes anything
there (its log folder, checkpoints, the ``last_checkpoint`` pointer) and gives it back
when ``train``/``val``/``test`` return. A second run in that work dir is refused with
``<work_dir>: in use by another run (pid N)``. A work dir this process already holds
(``tools/cv.py``'s own) is not locked twice.
"""
from __future__ import annotations

import contextlib
import logging
import os
import os.path as osp
import re
from typing import Optional

from mmengine.dist import master_only
from mmengine.logging import print_log
from mmengine.runner import Runner

from ..io.atomic import atomic_write_text
from ..io.made_folders import first_missing, remove_empty_parents
from ..io.owned_file import replace_problem
from ..io.work_dir_lock import HELD_WORK_DIRS, WorkDirLock

#: the owner recorded beside a config dump
CONFIG_DUMP_OWNER = 'config dump'

#: where each launcher puts the process's global rank before ``init_process_group``
_RANK_VARIABLES = {'pytorch': 'RANK', 'slurm': 'SLURM_PROCID', 'mpi': 'OMPI_COMM_WORLD_RANK'}


def launch_rank(launcher: str) -> int:
    """The global rank this process will have under ``launcher`` (0 without one), read
    from the launcher's environment before the process group exists."""
    variable = _RANK_VARIABLES.get(launcher)
    value = os.environ.get(variable, '0') if variable else '0'
    return int(value) if value.strip().isdigit() else 0


def lock_work_dir(work_dir: Optional[str], launcher: str) -> Optional[WorkDirLock]:
    """Take ``work_dir``'s lock on rank 0, unless this process holds it already.

    Returns:
        The lock to release, or None (another rank, or held by this process).

    Raises:
        OutputError: another run holds the work dir, or its lock file cannot be made.
    """
    if not work_dir or launch_rank(launcher) != 0:
        return None
    if osp.abspath(work_dir) in HELD_WORK_DIRS:
        return None
    from ..io.ownership import foreign_place_problem
    from ..utils.errors import OutputError
    problem = foreign_place_problem(work_dir)
    if problem:  # a probability folder, another tool's work dir: never written into
        raise OutputError(problem)
    return WorkDirLock(work_dir).acquire()


def check_checkpoint_pointer(work_dir: str, resume: bool) -> None:
    """Refuse to start a training whose ``<work_dir>/last_checkpoint`` mmengine would
    overwrite although it is not a pointer a training run wrote.

    mmengine writes that one-line file directly (``open(..., 'w')``), following a
    symbolic link and into every hard link. So it must be a regular file of one name,
    and, unless the run resumes from it,
    name a checkpoint written through the tools' checkpoint backend (its ownership
    record, :data:`~mmseg_ext.io.checkpoint_backend.CHECKPOINT_OWNER`).

    Raises:
        OutputError: naming the file and why.
    """
    from ..io.checkpoint_backend import training_checkpoint_problem
    from ..utils.errors import OutputError
    from ..utils.readers import stat_problem
    pointer = osp.join(work_dir, 'last_checkpoint')
    if not osp.lexists(pointer):
        return
    if osp.islink(pointer) or stat_problem(pointer):
        why = 'a symbolic link' if osp.islink(pointer) else stat_problem(pointer)
        raise OutputError(f'{pointer}: {why}; training writes this pointer there and '
                          'would write through it: remove it, or use another work dir')
    if os.lstat(pointer).st_nlink > 1:
        why = (f'hard-linked to {os.lstat(pointer).st_nlink - 1} other name(s) (a '
               'snapshot of the work dir made with cp -l?)')
        raise OutputError(f'{pointer}: {why}; training writes this pointer there and '
                          'would write through it: remove it, or use another work dir')
    if resume:
        return
    try:
        with open(pointer, encoding='utf-8', errors='replace') as f:
            target = f.read(4096).strip()
    except OSError:
        target = ''
    if target and '\n' not in target and not osp.lexists(target):
        raise OutputError(f'{pointer}: not a pointer a training run wrote, or one to a '
                          f'deleted checkpoint (it names {target[:200]!r}, which does not '
                          'exist); training would replace it: move it away to train from '
                          'the start, or use another work dir')
    if not target or training_checkpoint_problem(target):
        raise OutputError(f'{pointer}: not a pointer a training run wrote (it names '
                          f'{target[:80]!r}); training would replace it: move it away, '
                          'or use another work dir')


def check_checkpoint_folder(cfg, work_dir: str) -> None:
    """Refuse to start a training whose checkpoint folder holds another training run's
    checkpoints (:func:`_check_start_weights_kept`: or its own starting weights under a
    checkpoint's name): with ``default_hooks.checkpoint.out_dir`` the hook saves into
    ``<out_dir>/<base name of the work dir>``, which two work dirs of one base name
    share, and this run would replace the other's ``iter_N.pth`` of the same names.
    (The checkpoint backend refuses each such write too; this refuses before any
    training time is spent.)

    Raises:
        OutputError: naming a checkpoint of another run and that run's work dir.
    """
    from ..io.checkpoint_backend import checkpoint_run
    from ..utils.errors import OutputError
    hook = (cfg.get('default_hooks') or {}).get('checkpoint') or {}
    if not isinstance(hook, dict) or '://' in str(hook.get('out_dir') or ''):
        return
    out_dir = hook.get('out_dir')
    folder = osp.join(str(out_dir), osp.basename(str(work_dir).rstrip(osp.sep))) \
        if out_dir else str(work_dir)
    _check_start_weights_kept(cfg, folder, hook)
    args = hook.get('backend_args')
    if not isinstance(args, dict) or not args.get('run'):
        return
    run = args['run']
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return
    for name in names:
        path = osp.join(folder, name)
        other = checkpoint_run(path) if name.endswith('.pth') else None
        if other and other != run and out_dir:
            raise OutputError(
                f'{path}: a checkpoint of the training run in {other}, in the folder '
                f'this run saves its checkpoints to ({folder}, '
                'default_hooks.checkpoint.out_dir); this run (work dir '
                f'{run}) would replace its files of the same names: give the runs work '
                'dirs of different names, or another out_dir')
        if other and other != run:
            raise OutputError(
                f'{path}: a checkpoint saved by the training run in {other}, not by a run '
                f'in this work dir ({run}): the folder was copied or moved from there, '
                'and this run would replace its checkpoints of the same names; resume '
                f'or train in {other}, or use a new work dir')


def _check_start_weights_kept(cfg, folder: str, hook: dict) -> None:
    """Refuse a training whose starting weights (``load_from``, not resumed) lie in its
    checkpoint folder under a name the checkpoint hook writes (``iter_N.pth`` by its
    ``filename_tmpl``, ``best_*.pth``): a run in the work dir that saved them would
    replace them with its own checkpoint of that name.

    Raises:
        OutputError: naming the file.
    """
    import re

    from ..utils.errors import OutputError
    load_from = cfg.get('load_from')
    if not load_from or cfg.get('resume') or '://' in str(load_from) \
            or not osp.isfile(str(load_from)):
        return
    if osp.realpath(osp.dirname(osp.abspath(str(load_from)))) != osp.realpath(folder):
        return
    template = hook.get('filename_tmpl') or None
    steps = [re.escape(template).replace(re.escape('{}'), r'\d+')] if isinstance(
        template, str) else [r'(iter|epoch)_\d+\.pth']
    name = osp.basename(str(load_from))
    if any(re.fullmatch(step, name) for step in steps + [r'best_.*\.pth']):
        raise OutputError(f'{load_from}: the starting weights of this run (load_from) '
                          'lie in the folder it saves its checkpoints to, under a name '
                          'its checkpoint hook writes, and would be replaced by its own '
                          'checkpoint: copy them out of the folder and load them from '
                          'there, or train in a new work dir')


def remove_refused_work_dir(work_dir: str, own_names: set, log_name: str = '',
                            log_extra: set = frozenset()) -> bool:
    """Remove ``work_dir``, made by a run that was then refused, when it holds nothing
    but ``own_names`` (that run's lock, config dump and log folder) and its log folder
    ``log_name`` holds nothing but what mmengine writes there (:func:`_log_files_only`);
    anything else (a checkpoint, a file someone put there meanwhile) keeps the whole
    folder as it is.

    Returns:
        Whether the folder was removed.
    """
    import shutil
    try:
        names = set(os.listdir(work_dir))
    except OSError:
        return False
    if not names <= own_names:
        return False
    if log_name in names and not _log_files_only(osp.join(work_dir, log_name), log_name,
                                                 log_extra):
        return False
    try:
        for name in names:
            path = osp.join(work_dir, name)
            if osp.isdir(path) and not osp.islink(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
        os.rmdir(work_dir)
    except OSError:
        return False  # what is left stays; the next run claims or names it
    return True


def _logged_training(log_dir: str, timestamp: str) -> bool:
    """Whether the log folder holds a training record: a non-empty file of a
    visualisation backend in ``vis_data`` (``scalars.json``, a TensorBoard event file;
    not the config) or an ``Iter(train)`` / ``Epoch(train)`` line in the text log."""
    vis = osp.join(log_dir, 'vis_data')
    with contextlib.suppress(OSError):
        for name in os.listdir(vis):
            path = osp.join(vis, name)
            if name != 'config.py' and osp.isfile(path) and osp.getsize(path) > 0:
                return True
    with contextlib.suppress(OSError):
        with open(osp.join(log_dir, f'{timestamp}.log'), encoding='utf-8',
                  errors='replace') as f:
            return any('Iter(train)' in line or 'Epoch(train)' in line for line in f)
    return False


def _identities(folder: str, names: set) -> dict:
    """``{name: (size, mtime_ns, inode)}`` of the entries ``names`` of ``folder``, not
    following links (an entry that cannot be read is left out)."""
    found = {}
    for name in names:
        with contextlib.suppress(OSError):
            st = os.lstat(osp.join(folder, name))
            found[name] = (st.st_size, st.st_mtime_ns, st.st_ino)
    return found


def _wait_for_a_new_log_name(held: set, limit_s: float = 2.0) -> None:
    """Wait (at most ``limit_s``) until the current second names no folder the work
    dir already holds: mmengine names the run's log folder by the second it starts and
    writes into it even when it exists (a folder of the user's, or of a run started in
    the same second)."""
    import time
    deadline = time.monotonic() + limit_s
    while time.strftime('%Y%m%d_%H%M%S', time.localtime()) in held \
            and time.monotonic() < deadline:
        time.sleep(0.1)


def remove_refused_log_folder(work_dir: str, log_name: str, extra: set = frozenset()
                              ) -> bool:
    """Remove a refused run's own log folder ``<work_dir>/<log_name>`` from a work dir
    it did not make, when the folder holds nothing but what mmengine writes there
    (:func:`_log_files_only`) and the names in ``extra`` (relative to the folder: the
    run's config dump, when a user file had its name in the work dir); the work dir and
    everything else in it stay.

    Returns:
        Whether the folder was removed.
    """
    import shutil
    path = osp.join(work_dir, log_name) if log_name else ''
    if not path or osp.islink(path) or not osp.isdir(path) \
            or not _log_files_only(path, log_name, extra):
        return False
    try:
        shutil.rmtree(path)
    except OSError:
        return False
    return True


#: the name mmengine gives a run's log folder in its work dir (the run's timestamp)
LOG_FOLDER = re.compile(r'^\d{8}_\d{6}$')


def is_log_file(rel: str, timestamp: str) -> bool:
    """Whether ``rel`` (a path inside the log folder ``<work_dir>/<timestamp>``) is one
    mmengine writes there: ``<timestamp>.log`` (one per rank), ``vis_data/`` with the
    config, ``<timestamp>.json``, ``scalars.json`` and TensorBoard event files."""
    stamp = re.escape(timestamp)
    return bool(re.match(rf'^({stamp}(_rank\d+)?\.log|vis_data|vis_data/(config\.py|'
                         rf'scalars\.json|{stamp}\.json|events\.out\.tfevents\.[^/]+))$',
                         rel))


def _log_files_only(log_dir: str, timestamp: str, extra: set = frozenset()) -> bool:
    """Whether the run's log folder ``<work_dir>/<timestamp>`` holds only what mmengine
    writes there (:func:`is_log_file`) and the relative names in ``extra``."""
    if osp.islink(log_dir):
        return False
    for dirpath, dirs, files in os.walk(log_dir):
        for name in dirs + files:
            rel = osp.relpath(osp.join(dirpath, name), log_dir).replace(os.sep, '/')
            if not is_log_file(rel, timestamp) and rel not in extra:
                return False
    return True


def check_custom_keys(cfg, model) -> None:
    """Warn, in one line, about each ``optim_wrapper.paramwise_cfg.custom_keys`` entry
    that matches no parameter of ``model``: mmengine applies an entry to the parameters
    whose name contains it, so a misspelt module name changes nothing. Not refused:
    mmseg's own configs carry entries for parameters some settings of a backbone do
    not make (Swin's ``absolute_pos_embed``)."""
    wrapper = cfg.get('optim_wrapper') if cfg is not None else None
    paramwise = wrapper.get('paramwise_cfg') if isinstance(wrapper, dict) else None
    custom = paramwise.get('custom_keys') if isinstance(paramwise, dict) else None
    if not isinstance(custom, dict) or not custom:
        return
    module = getattr(model, 'module', model)  # under a distributed wrapper
    names = [name for name, _ in module.named_parameters()]
    unused = [str(key) for key in custom if not any(str(key) in name for name in names)]
    if unused:
        some = ', '.join(names[:3]) + (', ...' if len(names) > 3 else '')
        print_log(f'{cfg.filename or "the config"}: optim_wrapper.paramwise_cfg.custom_keys '
                  f'{", ".join(unused)} match no parameter of the model and change nothing '
                  f'(an entry applies to the parameter names that contain it: {some})',
                  logger='current', level=logging.WARNING)


def _built_class(exc: BaseException) -> Optional[str]:
    """The class whose construction raised ``exc`` inside mmengine's ``build_from_cfg``
    (the innermost such build on the traceback), None when it was raised elsewhere."""
    name = None
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_name == 'build_from_cfg' \
                and code.co_filename.endswith(osp.join('registry', 'build_functions.py')):
            built = tb.tb_frame.f_locals.get('obj_cls')
            name = getattr(built, '__name__', None) or name
        elif name is not None and code.co_name == 'build_dataloader':
            name = 'a data loader'  # a loop builds its loader, not from a registry
        tb = tb.tb_next
    return name


def component_error(exc: BaseException, config: Optional[str]) -> Optional[Exception]:
    """A :class:`ConfigError` for an exception that a component's class raised while
    mmengine built it from the config (inside its registry's ``build_from_cfg``): a
    value the class refuses (``rule='bigger'``, a negative learning rate, a loss
    option it asserts against), given in one line naming the config and the class
    instead of a traceback. None for any other exception."""
    from ..utils.errors import ConfigError, MmsegExtError
    if isinstance(exc, MmsegExtError) or not isinstance(
            exc, (TypeError, ValueError, AssertionError, KeyError)):
        return None
    built = _built_class(exc)
    if built is None:
        return None
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    line = ' '.join(text.split()) or type(exc).__name__
    return ConfigError(f'{config or "the config"}: {built} cannot be built from its '
                       f'settings: {line[:1000]}')


class ToolRunner(Runner):
    """mmengine's ``Runner`` whose :meth:`dump_config` never replaces a user file.

    Build it as the runner itself: ``ToolRunner.from_cfg(cfg)``. :meth:`train` first
    checks the ``last_checkpoint`` pointer mmengine will write
    (:func:`check_checkpoint_pointer`).
    """

    #: dump the config into the run's log folder, never as ``<work_dir>/<name>``: a
    #: run that only tests (``tools/test.py --work-dir`` a training's work dir) must
    #: not replace the dump that describes the checkpoints there
    dumps_into_log_folder = False

    def __init__(self, *args, **kwargs):
        work_dir = kwargs['work_dir'] if 'work_dir' in kwargs else args[1]
        launcher = kwargs.get('launcher', 'none')
        #: the work dir did not exist: this run made it (rank 0), see :meth:`_refused`;
        #: and the highest folder on the way that it made
        self._made_work_dir = bool(work_dir) and launch_rank(launcher) == 0 \
            and not osp.lexists(work_dir)
        self._made_top = first_missing(work_dir) if self._made_work_dir else None
        #: what the work dir held before this run: a log folder of the same name (the
        #: same second) is not this run's to remove
        self._held_before = set(os.listdir(work_dir)) if work_dir and osp.isdir(work_dir) \
            else set()
        #: and the identity of its ``last_checkpoint`` pointer, which mmengine rewrites
        #: itself when it saves a checkpoint (:meth:`_checkpoints_changed`)
        self._held_identity = _identities(work_dir, {'last_checkpoint'} & self._held_before)
        self._cleans_up = launch_rank(launcher) == 0
        from ..io.checkpoint_backend import CHANGED_BY_THIS_PROCESS
        #: where this run's entries in the backend's record of changes begin
        self._changes_start = len(CHANGED_BY_THIS_PROCESS)
        _wait_for_a_new_log_name(self._held_before)
        self._work_dir_lock = lock_work_dir(work_dir, launcher)
        try:
            super().__init__(*args, **kwargs)
        except BaseException as exc:
            config = kwargs.get('cfg')
            built = component_error(exc, getattr(config, 'filename', None))
            self._refused(built or exc, work_dir)
            if built is not None:
                raise built from None
            raise
        from ..engine.finite_loss import FiniteLossHook
        from ..engine.split_overlap import ValidationOverlapHook
        from .image_suffix_case import ImageSuffixCaseHook
        from .pseudo_label_images import PseudoLabelImageHook
        self.register_hook(FiniteLossHook())
        self.register_hook(ValidationOverlapHook())
        self.register_hook(PseudoLabelImageHook())
        self.register_hook(ImageSuffixCaseHook())

    def setup_env(self, env_cfg: dict) -> None:
        """mmengine's ``setup_env``, which fixes the run's timestamp; a timestamp that
        names a folder the work dir held before the run (a user's, or another run's
        started in the same second) is refused, since mmengine would write its log and
        config into that folder.

        Raises:
            OutputError: naming the folder.
        """
        super().setup_env(env_cfg)
        if self._timestamp in getattr(self, '_held_before', ()):
            from ..utils.errors import OutputError
            raise OutputError(
                f'{osp.join(self._work_dir, self._timestamp)}: already exists, and this '
                'run would write its log there (mmengine names a log folder by the '
                'second the run starts); move it away, or use another work dir')

    def release_work_dir(self) -> None:
        """Give the work dir's lock back (no-op when this runner holds none)."""
        lock, self._work_dir_lock = getattr(self, '_work_dir_lock', None), None
        if lock is not None:
            lock.release()

    def _refused(self, exc: BaseException, work_dir: Optional[str] = None) -> None:
        """Give the lock back, and undo what the failed run did to its work dir when it
        changed nothing there but its own config dump and log folder (no checkpoint
        saved, none replaced: :meth:`_changed_beyond_own`):

        - any failure, an interrupt included, puts back the earlier run's config dump
          that this run replaced, so it still describes that run's checkpoints;
        - any failure before the first training record (a refusal, an error while the
          runner or its data loaders were built, a stop signal) also removes the run's
          own new files: the whole work dir when it made that, else its log folder and
          its unchanged config dump. After training began, its log stays.
        """
        work_dir = work_dir or getattr(self, '_work_dir', None)
        try:
            if not work_dir or not getattr(self, '_cleans_up', True):
                return
            refused = not self._trained()
            if self._made_work_dir:
                if refused and remove_refused_work_dir(
                        work_dir, self._own_names(work_dir), self._log_name(work_dir),
                        self._dump_in_log(work_dir)):
                    remove_empty_parents(work_dir, self._made_top)
                return
            if getattr(self, '_held_before', None) is None \
                    or self._checkpoints_changed(work_dir):
                return
            self._restore_replaced_dump()
            if refused:
                self._remove_new_own_files(work_dir)
        finally:
            self.release_work_dir()

    def _trained(self) -> bool:
        """Whether the run logged training progress (an ``Iter(train)`` or
        ``Epoch(train)`` record in its log folder): from then on its log is worth
        keeping. A run refused at its first iterations, before a record, logged
        nothing worth keeping; a resume refused before an iteration ran never did."""
        if getattr(self, '_resume_refused', False):
            return False  # mmengine set the iteration before the resume failed
        loop = self.__dict__.get('_train_loop')
        if loop is None or isinstance(loop, dict) or not getattr(loop, 'iter', 0):
            return False
        log_dir = getattr(self, '_log_dir', None)
        return bool(log_dir) and _logged_training(log_dir, osp.basename(log_dir))

    def _checkpoints_changed(self, work_dir: str) -> bool:
        """Whether this run saved or removed a checkpoint in its work dir (through the
        checkpoint backend: :data:`~mmseg_ext.io.checkpoint_backend.CHANGED_BY_THIS_PROCESS`)
        or its ``last_checkpoint`` pointer changed: then its config dump describes
        them, and nothing of the run is undone. Files the run did not write (a user's
        note or checkpoint copy, another tool's staging folder) do not count."""
        from ..io.checkpoint_backend import CHANGED_BY_THIS_PROCESS
        folder = osp.abspath(work_dir)
        start = getattr(self, '_changes_start', 0)
        if any(osp.dirname(path) == folder for path in CHANGED_BY_THIS_PROCESS[start:]):
            return True
        pointer = 'last_checkpoint'
        before = getattr(self, '_held_identity', {}).get(pointer)
        return _identities(work_dir, {pointer}).get(pointer) != before

    def _remove_new_own_files(self, work_dir: str) -> None:
        """In a work dir the user had, remove the refused run's new log folder and its
        new config dump with the ownership record (only while the dump is still what
        the run wrote). The lock file stays, as after every run."""
        from ..io.work_dir_lock import LOCK
        try:
            new = set(os.listdir(work_dir)) - self._held_before
        except OSError:
            return
        log_name = self._log_name(work_dir)
        if log_name in new:
            remove_refused_log_folder(work_dir, log_name, self._dump_in_log(work_dir))
        for name in sorted((new & self._own_names(work_dir)) - {LOCK, log_name}):
            path = osp.join(work_dir, name)
            if osp.isfile(path) and not osp.islink(path):
                with contextlib.suppress(OSError):
                    os.remove(path)

    def _dump_in_log(self, work_dir: str) -> set:
        """The config dump's name inside the run's log folder when it was dumped there
        (a test run; a user's file of that name in the work dir), else nothing."""
        dumped = getattr(self, '_dumped_to', '')
        log_name = self._log_name(work_dir)
        if dumped and log_name and osp.dirname(osp.abspath(dumped)) == \
                osp.join(osp.abspath(work_dir), log_name):
            return {osp.basename(dumped)}
        return set()

    def _restore_replaced_dump(self) -> None:
        """Put back the earlier run's config dump that this refused run replaced, so
        the dump beside that run's checkpoints still describes them."""
        replaced, self._replaced_dump = getattr(self, '_replaced_dump', None), None
        if replaced is None:
            return
        target, text = replaced
        if replace_problem(target, CONFIG_DUMP_OWNER):
            return  # changed meanwhile: not this run's to touch
        from ..utils.errors import MmsegExtError
        with contextlib.suppress(OSError, MmsegExtError):
            atomic_write_text(target, text, force=True, owner=CONFIG_DUMP_OWNER)

    def _own_names(self, work_dir: str, unchanged_only: bool = True) -> set:
        """What this run writes in its work dir before training: the lock, the config
        dump with its ownership record (with ``unchanged_only``, only while the dump is
        what the run wrote: a dump the user edited is theirs), the log folder."""
        from ..io.owned_file import record_path
        from ..io.work_dir_lock import LOCK
        names = {LOCK, self._log_name(work_dir)} - {''}
        cfg = getattr(self, 'cfg', None)
        if cfg is not None and cfg.filename:
            dump = osp.join(work_dir, osp.basename(cfg.filename))
            if not unchanged_only or not osp.lexists(dump) \
                    or not replace_problem(dump, CONFIG_DUMP_OWNER):
                names.update({osp.basename(dump), osp.basename(record_path(dump))})
        return names

    def _released(self, call):
        """``call()``, then the work dir given back; a refused run's own work dir is
        removed (:meth:`_refused`)."""
        try:
            result = call()
        except BaseException as exc:
            built = component_error(exc, getattr(getattr(self, 'cfg', None), 'filename',
                                                 None))
            self._refused(built or exc)
            if built is not None:
                raise built from None
            raise
        self.release_work_dir()
        return result

    def _log_name(self, work_dir: str) -> str:
        """The name of this run's log folder in ``work_dir`` (``''``: none yet)."""
        log_dir = getattr(self, '_log_dir', None)
        if log_dir and osp.dirname(osp.abspath(log_dir)) == osp.abspath(work_dir):
            return osp.basename(log_dir)
        return ''

    def train(self):
        def train():
            if self.rank == 0:
                check_checkpoint_pointer(self.work_dir, bool(self._resume))
                check_checkpoint_folder(self.cfg, self.work_dir)
            check_custom_keys(self.cfg, self.model)
            return super(ToolRunner, self).train()
        return self._released(train)

    def resume(self, filename: str, *args, **kwargs) -> None:
        """mmengine's ``resume``; a checkpoint without the training state it reads
        (``meta``, ``message_hub``: a bare ``state_dict`` saved by hand, a model of
        ``get_weights``) is named instead of a ``KeyError``.

        Raises:
            CheckpointError: naming ``filename`` and the missing entry.
        """
        from ..utils.errors import CheckpointError
        try:
            super().resume(filename, *args, **kwargs)
        except ValueError as exc:  # torch: the optimizer's parameter groups changed
            self._resume_refused = True
            raise CheckpointError(
                f'{filename}: its optimizer state does not fit this run\'s optimizer '
                f'({" ".join(str(exc).split())}): the optimizer settings changed since '
                'it was saved (paramwise_cfg, custom_keys, the optimizer type); resume '
                'with the settings that saved it, or load it as weights (load_from)'
            ) from None
        except (KeyError, TypeError) as exc:
            self._resume_refused = True
            missing = f' (no {exc.args[0]!r})' if isinstance(exc, KeyError) else ''
            raise CheckpointError(
                f'{filename}: not a checkpoint a training run saved{missing}, so there '
                'is nothing to resume from it; start a new training, or load it as '
                'weights (load_from)') from None
        except BaseException:
            self._resume_refused = True  # no iteration of this run ran
            raise
        self._check_resumed_within_schedule(filename)

    def _check_resumed_within_schedule(self, filename: str) -> None:
        """A checkpoint saved past the end of this run's schedule trains nothing (mmengine
        ends at once with exit 0, no validation, no checkpoint): refused, naming both;
        one saved at the end says so in the log.

        Raises:
            CheckpointError: the checkpoint's iteration (epoch) is past ``max_iters``
                (``max_epochs``).
        """
        from mmengine.runner import EpochBasedTrainLoop

        from ..utils.errors import CheckpointError
        loop = self.train_loop
        unit, done, last = ('epoch', 'epoch', 'max_epochs') \
            if isinstance(loop, EpochBasedTrainLoop) else ('iteration', 'iter', 'max_iters')
        now, end = getattr(loop, done, None), getattr(loop, last, None)
        if isinstance(now, int) and isinstance(end, int):
            if now > end:
                self._resume_refused = True
                raise CheckpointError(
                    f'{filename}: saved at {unit} {now}, past this run\'s train_cfg.{last}'
                    f'={end}, so resuming trains nothing; set {last} above {now} to '
                    'train on, or start a new training from it as weights (load_from)')
            if now == end:
                print_log(f'{filename}: saved at {unit} {now}, the end of this run\'s '
                          f'schedule (train_cfg.{last}={end}): nothing left to train',
                          logger='current', level=logging.WARNING)

    def val(self):
        return self._released(super().val)

    def test(self):
        return self._released(super().test)

    @master_only
    def dump_config(self) -> None:
        """Dump the config to ``<work_dir>/<config name>`` (see the module doc), or into
        this run's log folder when a file of that name there is not a tool's dump, or
        when this runner only tests (:attr:`dumps_into_log_folder`)."""
        name = (osp.basename(self.cfg.filename) if self.cfg.filename
                else f'{self.timestamp}.py')
        if self.dumps_into_log_folder:
            target = osp.join(self.log_dir, name)
            if not osp.lexists(target):  # a log folder is new: never replaced
                atomic_write_text(target, self.cfg.dump())
                self._dumped_to = target
            return
        target = osp.join(self.work_dir, name)
        problem = replace_problem(target, CONFIG_DUMP_OWNER) if osp.lexists(target) else ''
        if problem:
            kept = target
            target = osp.join(self.log_dir, name)
            print_log(f'{kept}: {problem}; kept as it is, and the config of this run is '
                      f'dumped to {target}', logger='current', level=logging.WARNING)
            if osp.lexists(target):  # a log folder is new: not expected, never replaced
                return
            atomic_write_text(target, self.cfg.dump())
            self._dumped_to = target
            return
        if osp.lexists(target):  # an earlier run's dump: put back if this run is refused
            with contextlib.suppress(OSError, UnicodeDecodeError):
                with open(target, encoding='utf-8') as f:
                    self._replaced_dump = (target, f.read())
        atomic_write_text(target, self.cfg.dump(), force=True, owner=CONFIG_DUMP_OWNER)
        self._dumped_to = target


class TestToolRunner(ToolRunner):
    """A :class:`ToolRunner` for a run that only tests: its config dump goes into its
    log folder, so the work dir's dump keeps describing the training there."""

    dumps_into_log_folder = True
