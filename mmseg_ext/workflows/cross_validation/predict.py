"""Probability folders of a fold model and their record: the prediction source.

A folder records what it is the prediction of (:func:`prediction_source`: config,
checkpoint and its fingerprint, the images' names, sizes and modification times). A
finished folder of the same source is reused; any other is predicted again.
"""
from __future__ import annotations

import hashlib
import os.path as osp
from typing import Callable, Optional, Sequence

from ...io.ownership import Manifest, files_stamp, fingerprint
from ...training.stages import owned_output, same_prob_source
from ...utils.errors import DataError
from .run import TOOL

Log = Callable[[str], None]


def checkpoint_stamp(path: str) -> str:
    """The checkpoint's fingerprint (:func:`~mmseg_ext.io.ownership.fingerprint`): a
    retrained or replaced model under the same file name is another model."""
    return fingerprint(path)


def prediction_source(config: str, checkpoint: str, img_dir: str,
                      images: Sequence[str], tta: bool, **extra) -> dict:
    """What a probability folder is the prediction of: the config, the checkpoint and
    its fingerprint, the images' names and fingerprints (size, time, content). A folder is
    reused only for the same source, so an image replaced in place under the same name
    (or a checkpoint rewritten under the same name) is predicted again.

    Raises:
        DataError: an image is gone.
    """
    try:
        stamp = files_stamp(img_dir, list(images))
    except OSError as exc:
        raise DataError(f'{exc.filename or img_dir}: cannot read the image '
                        f'({exc.strerror or exc})') from None
    return dict(config=osp.abspath(config), checkpoint=osp.abspath(checkpoint),
                checkpoint_stamp=checkpoint_stamp(checkpoint),
                images=hashlib.sha256('\n'.join(images).encode()).hexdigest()[:16],
                inputs=stamp, tta=tta, **extra)


def predict_folder(config: str, checkpoint: str, img_dir: str, images: Sequence[str],
                   out_dir: str, source: dict, device: Optional[str], tta: bool,
                   cfg_options: Optional[dict], progress: bool, log: Log,
                   manifest: Optional[Manifest] = None) -> None:
    """Probabilities of ``images`` under ``img_dir`` into ``out_dir`` (kept when a
    finished folder of the same ``source`` is there; replaced only when it is the
    tool's, see :meth:`~mmseg_ext.io.ownership.Manifest.check_replaceable`)."""
    from ...inference.predictor import build_predictor, infer_folder, resolve_device
    with owned_output(manifest, out_dir):
        if same_prob_source(out_dir, source):
            log(f'{out_dir}: finished earlier')
            return
        if osp.isdir(out_dir):
            log(f'{out_dir}: made from other images or another model; predicting again')
        predictor = build_predictor(config, checkpoint, resolve_device(device),
                                    cfg_options=cfg_options, tta=tta)
        infer_folder(predictor, img_dir, out_dir, images=images, source=source,
                     force=True, progress=progress, tool=TOOL)
