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
"""
from __future__ import annotations

import logging
import os.path as osp

from mmengine.dist import master_only
from mmengine.logging import print_log
from mmengine.runner import Runner

from ..io.atomic import atomic_write_text
from ..io.owned_file import replace_problem

#: the owner recorded beside a config dump
CONFIG_DUMP_OWNER = 'config dump'


def check_checkpoint_pointer(work_dir: str, resume: bool) -> None:
    """Refuse to start a training whose ``<work_dir>/last_checkpoint`` mmengine would
    overwrite although it is not a pointer a training run wrote.

    mmengine writes that one-line file directly (``open(..., 'w')``), following a
    symbolic link. So it must be a regular file, and, unless the run resumes from it,
    name a checkpoint written through the tools' checkpoint backend (its ownership
    record, :data:`~mmseg_ext.io.checkpoint_backend.CHECKPOINT_OWNER`).

    Raises:
        OutputError: naming the file and why.
    """
    from ..io.checkpoint_backend import CHECKPOINT_OWNER
    from ..utils.errors import OutputError
    from ..utils.readers import stat_problem
    pointer = osp.join(work_dir, 'last_checkpoint')
    if not osp.lexists(pointer):
        return
    if osp.islink(pointer) or stat_problem(pointer):
        why = 'a symbolic link' if osp.islink(pointer) else stat_problem(pointer)
        raise OutputError(f'{pointer}: {why}; training writes this pointer there and '
                          'would write through it: remove it, or use another work dir')
    if resume:
        return
    try:
        with open(pointer, encoding='utf-8', errors='replace') as f:
            target = f.read(4096).strip()
    except OSError:
        target = ''
    if not target or replace_problem(target, CHECKPOINT_OWNER):
        raise OutputError(f'{pointer}: not a pointer a training run wrote (it names '
                          f'{target[:80]!r}); training would replace it: move it away, '
                          'or use another work dir')


class ToolRunner(Runner):
    """mmengine's ``Runner`` whose :meth:`dump_config` never replaces a user file.

    Build it as the runner itself: ``ToolRunner.from_cfg(cfg)``. :meth:`train` first
    checks the ``last_checkpoint`` pointer mmengine will write
    (:func:`check_checkpoint_pointer`).
    """

    def train(self):
        if self.rank == 0:
            check_checkpoint_pointer(self.work_dir, bool(self._resume))
        return super().train()

    @master_only
    def dump_config(self) -> None:
        """Dump the config to ``<work_dir>/<config name>`` (see the module doc), or into
        this run's log folder when a file of that name there is not a tool's dump."""
        name = (osp.basename(self.cfg.filename) if self.cfg.filename
                else f'{self.timestamp}.py')
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
            return
        atomic_write_text(target, self.cfg.dump(), force=True, owner=CONFIG_DUMP_OWNER)
