"""The domain errors of mmseg_ext: what the library raises for bad input or a bad request.

Every message is one line that names the file (and record) and the problem, in words
that make sense without a command line: the library never names a CLI flag. The tools
turn these errors into ``error: <message>`` and an exit status in one place
(:mod:`mmseg_ext.utils.cli`), which also renders :class:`InvalidArgumentError` with the
flag of the argument and :class:`OutputExistsError` with the ``--force`` hint.

This module imports nothing outside the standard library, so that the environment check
can use it before torch or mmseg are known to import.
"""
from __future__ import annotations

import signal


class MmsegExtError(Exception):
    """Base class: an expected failure caused by the input or the environment."""


class EnvironmentCheckError(MmsegExtError, ImportError):
    """The Python environment cannot run mmseg_ext; the message says how to fix it."""


class DataError(MmsegExtError, ValueError):
    """An input data file (image, annotation, probability file, CSV) is unusable."""


class DataFileError(DataError):
    """A data file is missing, malformed or inconsistent with its image.

    The message is one line: ``<path>: <problem>`` (plus the annotation id when the
    problem is inside one annotation). It is a :class:`DataError`, so tools print it
    without a traceback, and a ``ValueError`` for library callers.
    """


class ConfigError(MmsegExtError, ValueError):
    """A config file cannot be read or asks for something this install cannot do."""


class CheckpointError(MmsegExtError):
    """A checkpoint is missing, refused by the loader, damaged or does not fit the model."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """A checkpoint path names no file."""

    def __init__(self, path: str, hint: str = ''):
        super().__init__(f'{path}: checkpoint file not found{": " + hint if hint else ""}')
        self.path = path


class MissingWeightsError(CheckpointNotFoundError):
    """A pretrained backbone file that the config names is not there.

    ``weights`` is the name under which the project knows how to fetch the file
    (``'beit-base'``), ``override`` the config setting that trains without it
    (``'model.pretrained=None'``).
    """

    def __init__(self, path: str, weights: str = '', override: str = ''):
        super().__init__(path)
        self.weights = weights
        self.override = override


class DownloadError(MmsegExtError):
    """A file could not be downloaded (offline, HTTP error, checksum mismatch)."""


class StageError(MmsegExtError):
    """A stage of a multi-stage run (a fold's training in another process) failed; the
    message names the stage and where its log is."""


class TrainingDivergedError(MmsegExtError):
    """A training whose loss stopped being a finite number (a learning rate far too
    high, a loss weight out of range): it stops before saving weights that are not."""


class OutputError(MmsegExtError, OSError):
    """An output cannot be written (permissions, read-only disk, no space)."""


class OutputExistsError(OutputError, FileExistsError):
    """An output already exists and the caller did not ask to replace it."""

    def __init__(self, path: str, detail: str = 'already exists'):
        super().__init__(f'{path}: {detail}')
        self.path = path


class InvalidArgumentError(MmsegExtError, ValueError):
    """A function argument is out of its range or inconsistent with the others.

    ``argument`` is the Python parameter name (``'min_votes'``); the CLI shows it as
    the tool's flag (``--min-votes``).
    """

    def __init__(self, argument: str, problem: str):
        super().__init__(f'{argument}: {problem}')
        self.argument = argument
        self.problem = problem


class UsageError(MmsegExtError):
    """A command line whose options do not go together (raised by the tools only)."""


#: the signals that stop a tool (:func:`~mmseg_ext.utils.cli.cli_main` turns them into
#: :class:`Interrupted`): SIGINT (Ctrl-C), SIGTERM (``kill``, a scheduler) and, where the
#: platform has it, SIGHUP (a closed terminal or a dropped ssh session)
STOP_SIGNALS = tuple(s for s in (signal.SIGINT, signal.SIGTERM,
                                 getattr(signal, 'SIGHUP', None)) if s is not None)


class Interrupted(BaseException):
    """The process was asked to stop (a signal of :data:`STOP_SIGNALS`) before it
    finished.

    A ``BaseException``, like ``KeyboardInterrupt``: the signal can arrive inside any
    ``try: ... except Exception`` of a library (tqdm starts its monitor thread in one)
    or of mmseg_ext itself, and must not be swallowed there.
    """

    def __init__(self, signum: int, name: str):
        super().__init__(f'interrupted ({name})')
        self.signum = signum
