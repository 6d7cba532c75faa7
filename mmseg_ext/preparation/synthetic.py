"""Write the synthetic data sets into a folder safely (``tools/make_synthetic_handbone.py``).

The generators (:mod:`mmseg_ext.datasets.synthetic`) write into any folder; here the
data set is built in a hidden sibling folder and moved into place only when complete,
so an interruption leaves the target untouched.

The output folder is the tool's through its manifest (:mod:`mmseg_ext.io.ownership`):
``force`` replaces ``train/`` and ``test/`` only when everything in them is what this
tool wrote (unchanged since); a user's file there, or a non-empty folder without the
manifest, is refused and nothing is changed. Files the tool never listed elsewhere in
the folder are kept. The swap is all-or-none and signal-atomic
(:func:`mmseg_ext.io.staged_dir.replace_folders`).
"""
from __future__ import annotations

import os
import os.path as osp
import shutil
from typing import Optional, Tuple

from ..datasets.synthetic import SyntheticHandBone, make_handbone_dataset
from ..io.deferred_signals import signals_deferred
from ..io.output_errors import make_parent, output_error, writing
from ..io.ownership import Manifest
from ..io.staged_dir import replace_folders
from ..io.staging import release_staging, staging_folder
from ..utils.errors import InvalidArgumentError, OutputError, OutputExistsError
from ..utils.readers import max_pixels

#: The folders the hand-bone generator writes under its root.
HANDBONE_SPLITS = ('train', 'test')
#: the owner name in the output folder's manifest
TOOL = 'make_synthetic_handbone'
#: the smallest image side the generator draws
MIN_SIDE = 16


def check_size(size: Tuple[int, int]) -> None:
    """Refuse an image size the generator cannot draw or that exceeds the pixel cap
    (:func:`~mmseg_ext.utils.readers.max_pixels`: the largest image any reader of the
    project accepts; a bigger one would only exhaust the memory).

    Raises:
        InvalidArgumentError: a side below :data:`MIN_SIDE` or ``H * W`` over the cap.
    """
    h, w = (int(v) for v in size)
    if min(h, w) < MIN_SIDE:
        raise InvalidArgumentError('size', f'each side must be >= {MIN_SIDE}, got {h}x{w}')
    cap = max_pixels()
    if h * w > cap:
        raise InvalidArgumentError('size', f'{h}x{w} is {h * w} pixels, over the limit of '
                                   f'{cap} pixels per image')


def write_synthetic_handbone(out: str, num_patients: int = 8, images_per_patient: int = 2,
                             size: Tuple[int, int] = (256, 256), num_test_patients: int = 1,
                             seed: int = 0, force: bool = False,
                             progress: bool = True) -> SyntheticHandBone:
    """Write a synthetic hand-bone set (competition layout) to ``out``.

    ``out`` must be missing or empty; with ``force`` a non-empty ``out`` keeps its other
    files and only its ``train/`` and ``test/`` are replaced.

    Raises:
        InvalidArgumentError: a negative count, fewer than one image per patient, or a
            size out of range (:func:`check_size`).
        OutputExistsError: ``out`` is not empty and ``force`` is off.
        OutputError: with ``force``, ``out`` holds files this tool did not write (no
            manifest), or ``train/``/``test/`` hold a file it did not write or that
            changed since (named).
    """
    if num_patients < 0:
        raise InvalidArgumentError('patients', f'must be >= 0, got {num_patients}')
    if num_test_patients < 0:
        raise InvalidArgumentError('test_patients', f'must be >= 0, got {num_test_patients}')
    if images_per_patient < 1:
        raise InvalidArgumentError('images_per_patient', f'must be >= 1, got '
                                   f'{images_per_patient}')
    check_size(size)
    out = osp.abspath(out)
    if osp.exists(out) and not osp.isdir(out):
        raise OutputError(f'{out}: exists and is not a folder')
    non_empty = osp.isdir(out) and bool(os.listdir(out))
    if non_empty and not force:
        raise OutputExistsError(out, 'folder is not empty')
    manifest = _claim(out) if non_empty else None
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
            _install(tmp, out, manifest)
    finally:
        release_staging(tmp)
        if osp.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    info.root = out
    return info


def _claim(out: str) -> Manifest:
    """The manifest of the non-empty ``out``, after checking that ``train/`` and
    ``test/`` there are entirely this tool's (so ``force`` may replace them)."""
    manifest = Manifest.check_claimable(out, TOOL)
    if manifest is None:  # only the tool's bookkeeping in it
        manifest = Manifest(out, TOOL)
    for name in HANDBONE_SPLITS:
        manifest.check_replaceable(osp.join(out, name))
    return manifest


def _install(tmp: str, out: str, manifest: Optional[Manifest]) -> None:
    """Move the generated folders from ``tmp`` into ``out`` with their manifest.

    A new or empty ``out``: the manifest is written into ``tmp``, which is renamed to
    ``out``. Otherwise (``manifest``, checked by :func:`_claim`): ``train/`` and
    ``test/`` are swapped in and the manifest updated, as one commit.
    """
    made = Manifest(tmp, TOOL)
    for name in HANDBONE_SPLITS:
        if osp.isdir(osp.join(tmp, name)):
            made.record(osp.join(tmp, name), save=False)
    if manifest is None:
        made.save()
        with signals_deferred():
            if osp.isdir(out):
                os.rmdir(out)  # empty
            os.rename(tmp, out)
        return
    stale = [name for name in HANDBONE_SPLITS
             if not osp.isdir(osp.join(tmp, name)) and osp.lexists(osp.join(out, name))]
    for name in stale:  # the tool's own (checked by _claim): replaced by nothing
        os.mkdir(osp.join(tmp, name))
    pairs = [(osp.join(tmp, name), osp.join(out, name)) for name in HANDBONE_SPLITS
             if osp.isdir(osp.join(tmp, name))]

    def save_manifest() -> None:
        for name in stale:
            os.rmdir(osp.join(out, name))
        for name in HANDBONE_SPLITS:
            manifest.entries = {r: e for r, e in manifest.entries.items()
                                if r != name and not r.startswith(name + '/')}
        manifest.entries.update(made.entries)
        manifest.save()

    replace_folders(pairs, after_publish=save_manifest)
