"""Fold trainings as commands in other processes: their launch plan (GPUs, ranks per
fold, the command that trains one fold) and :func:`run_commands`, which runs them as
many at once as the GPUs hold."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

from ...io.ownership import held_work_dirs_env
from ...utils.errors import InvalidArgumentError, StageError

Log = Callable[[str], None]
#: ``(fold config file, fold work dir, ranks, resume) -> argv`` of one fold's training
FoldCommandFn = Callable[[str, str, int, bool], List[str]]


@dataclass
class FoldCommand:
    """A fold's training as a command: ``argv`` run with ``env`` added, output to
    ``log``; ``devices`` is how many GPUs it takes."""
    fold: int
    argv: List[str]
    log: str
    devices: int = 1


def run_commands(commands: Sequence[FoldCommand], gpus: int, log: Log,
                 port_base: int = 29500) -> None:
    """Run the commands, as many at once as ``gpus`` GPUs hold (``gpus <= 1``: one
    after the other); each gets its own ``CUDA_VISIBLE_DEVICES`` and rendezvous port.

    Raises:
        StageError: a command failed (after the running ones finished); the message
            names the fold and its log.
    """
    free = list(range(max(gpus, 1)))
    too_big = [c for c in commands if c.devices > len(free)]
    if too_big:  # a caller's bug: cross_validate checks the request first
        raise ValueError(f'fold {too_big[0].fold} needs {too_big[0].devices} devices, '
                         f'{len(free)} exist')
    pending = list(commands)
    running: List[Tuple[FoldCommand, subprocess.Popen, List[int], object]] = []
    failed: List[Tuple[FoldCommand, int]] = []
    try:
        while pending or running:
            while pending and len(free) >= pending[0].devices and not failed:
                cmd = pending.pop(0)
                ids, free = free[:cmd.devices], free[cmd.devices:]
                # PYTHON: the launch scripts start this interpreter, not python from PATH
                # the work dirs this process holds: the fold's training may train in
                # them (ToolRunner checks whose folder it trains in)
                env = dict(os.environ, **held_work_dirs_env(), PORT=str(port_base + ids[0]),
                           PYTHON=sys.executable or os.environ.get('PYTHON', 'python'))
                if gpus >= 1:
                    env['CUDA_VISIBLE_DEVICES'] = ','.join(map(str, ids))
                out = open(cmd.log, 'a', encoding='utf-8')
                log(f'fold {cmd.fold}: {" ".join(cmd.argv)} (log: {cmd.log})')
                proc = subprocess.Popen(cmd.argv, env=env, stdout=out,
                                        stderr=subprocess.STDOUT)
                running.append((cmd, proc, ids, out))
            if failed and not running:
                break
            finished = None
            while finished is None:
                for item in running:
                    if item[1].poll() is not None:
                        finished = item
                        break
                else:
                    time.sleep(0.2)
            running.remove(finished)
            cmd, proc, ids, out = finished
            out.close()
            free = sorted(free + ids)
            if proc.returncode != 0:
                failed.append((cmd, proc.returncode))
    finally:
        for _cmd, proc, _, out in running:  # interrupted: stop what still runs
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            out.close()
    if failed:
        cmd, code = failed[0]
        reason = _last_error_line(cmd.log)
        raise StageError(f'fold {cmd.fold}: training failed (exit status {code})'
                         f'{f": {reason}" if reason else ""}; its log is {cmd.log}')


def _last_error_line(log: str) -> str:
    """The fold's own ``error:`` line (what the training said, without the prefix),
    the last in its log; ``''`` when there is none or the log cannot be read."""
    try:
        with open(log, encoding='utf-8', errors='replace') as f:
            lines = [line.rstrip('\n') for line in f if line.startswith('error: ')]
    except OSError:
        return ''
    return lines[-1][len('error: '):][:500] if lines else ''


def check_ranks_per_fold(ranks_per_fold: int, gpus: int, cuda: int) -> None:
    """Refuse more ranks per fold than the machine has, before anything runs: with CUDA,
    at most the GPUs given (``gpus``, at least 1) and visible (``cuda``); without, at
    most the CPUs (``os.cpu_count()``), one process each.

    Raises:
        InvalidArgumentError: of ``ranks_per_fold``, naming the range.
    """
    if cuda:
        most = max(min(gpus, cuda), 1)
        if ranks_per_fold > most:
            raise InvalidArgumentError('ranks_per_fold', f'{ranks_per_fold} is outside '
                                       f'[0, {most}]: ranks per fold need as many GPUs; '
                                       f'{min(gpus, cuda) or 1} are given ({cuda} visible)')
        return
    cpus = os.cpu_count() or 1
    if ranks_per_fold > cpus:
        raise InvalidArgumentError('ranks_per_fold', f'{ranks_per_fold} is outside '
                                   f'[0, {cpus}]: without CUDA each rank is a CPU process '
                                   f'and this machine has {cpus} CPUs')


def cuda_count() -> int:
    """The CUDA devices torch sees (0 without CUDA)."""
    import torch
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


@dataclass
class FoldLaunch:
    """How the folds train: in this process one after the other, or as ``fold_command``
    processes (``subprocesses``) on ``gpus`` GPUs, ``ranks_per_fold`` ranks each."""
    gpus: int
    ranks_per_fold: int
    subprocesses: bool
    fold_command: Optional[FoldCommandFn]


def plan_launch(gpus: int, ranks_per_fold: int, cuda: int,
                fold_command: Optional[FoldCommandFn], log: Log) -> FoldLaunch:
    """The launch of the folds on this machine (``cuda`` GPUs visible).

    Raises:
        InvalidArgumentError: of ``fold_command``: other processes are needed and none
            is given.
    """
    requested_gpus, gpus = gpus, min(gpus, cuda)
    subprocesses = ranks_per_fold > 0 or gpus > 1
    if gpus <= 1 and not subprocesses and cuda < 2 and requested_gpus > 1:
        log(f'{requested_gpus} GPUs asked for, torch sees {cuda}: the folds train one '
            'after the other')
    if subprocesses and fold_command is None:
        raise InvalidArgumentError('fold_command', 'training folds in other processes '
                                   'needs the command that trains one')
    return FoldLaunch(gpus, ranks_per_fold, subprocesses, fold_command)
