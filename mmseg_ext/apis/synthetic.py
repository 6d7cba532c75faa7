"""Write the synthetic data sets into a folder safely (``tools/make_synthetic_handbone.py``).

The generators (:mod:`mmseg_ext.datasets.synthetic`) write into any folder; here the
data set is built in a hidden sibling folder and moved into place only when complete,
so an interruption leaves the target untouched.
"""
from __future__ import annotations

import os
import os.path as osp
import shutil
from typing import Tuple

from ..datasets.synthetic import SyntheticHandBone, make_handbone_dataset
from ..io.atomic import make_parent, output_error, release_staging, staging_folder, writing
from ..utils.errors import InvalidArgumentError, OutputError, OutputExistsError

#: The folders the hand-bone generator writes under its root.
HANDBONE_SPLITS = ('train', 'test')


def write_synthetic_handbone(out: str, num_patients: int = 8, images_per_patient: int = 2,
                             size: Tuple[int, int] = (256, 256), num_test_patients: int = 1,
                             seed: int = 0, force: bool = False,
                             progress: bool = True) -> SyntheticHandBone:
    """Write a synthetic hand-bone set (competition layout) to ``out``.

    ``out`` must be missing or empty; with ``force`` a non-empty ``out`` keeps its other
    files and only its ``train/`` and ``test/`` are replaced.

    Raises:
        InvalidArgumentError: a negative count or fewer than one image per patient.
        OutputExistsError: ``out`` is not empty and ``force`` is off.
    """
    if num_patients < 0:
        raise InvalidArgumentError('patients', f'must be >= 0, got {num_patients}')
    if num_test_patients < 0:
        raise InvalidArgumentError('test_patients', f'must be >= 0, got {num_test_patients}')
    if images_per_patient < 1:
        raise InvalidArgumentError('images_per_patient', f'must be >= 1, got '
                                   f'{images_per_patient}')
    out = osp.abspath(out)
    if osp.exists(out) and not osp.isdir(out):
        raise OutputError(f'{out}: exists and is not a folder')
    non_empty = osp.isdir(out) and bool(os.listdir(out))
    if non_empty and not force:
        raise OutputExistsError(out, 'folder is not empty')
    make_parent(out)
    try:
        tmp = staging_folder(out, 'partial-')
    except OSError as exc:
        raise output_error(out, exc) from None
    try:
        with writing(out, tmp):
            info = make_handbone_dataset(
                tmp, num_patients=num_patients, images_per_patient=images_per_patient,
                size=size, num_test_patients=num_test_patients, seed=seed,
                progress=progress)
            _install(tmp, out, replace=non_empty)
    finally:
        release_staging(tmp)
        if osp.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    info.root = out
    return info


def _install(tmp: str, out: str, replace: bool) -> None:
    """Move the generated folders from ``tmp`` into ``out``."""
    if not replace:
        if osp.isdir(out):
            os.rmdir(out)  # empty
        os.rename(tmp, out)
        return
    for name in HANDBONE_SPLITS:
        target = osp.join(out, name)
        if osp.isdir(target):
            shutil.rmtree(target)
        elif osp.exists(target):
            os.remove(target)
        if osp.isdir(osp.join(tmp, name)):
            os.rename(osp.join(tmp, name), target)
