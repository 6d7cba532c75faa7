"""File formats around a submission: RLE, probability files, competition CSVs.

* :mod:`.rle` -- run-length encoding with explicit conventions, pycocotools conversion;
* :mod:`.probs` -- per-image probability files (``.npz``) and folders (``index.json``);
* :mod:`.submission` -- competition CSV formats, writer and readers;
* :mod:`.atomic` -- outputs written under a temporary name, never replaced without force;
* :mod:`.checkpoint_backend` -- the same for the checkpoints the trainer writes (an
  mmengine file backend, ``'atomic_local'``);
* :mod:`.images` -- recursive image listing, image sizes from headers.
"""
from .checkpoint_backend import ATOMIC_LOCAL_BACKEND, AtomicLocalBackend
from .probs import (
    ProbFileError,
    ProbFolder,
    ProbFolderWriter,
    ProbMeta,
    dequantize,
    quantize,
    read_probs,
    write_probs,
)
from .rle import (
    COLUMN_RLE,
    HANDBONE_RLE,
    PORT_RLE,
    RLEConvention,
    RLEError,
    coco_to_mask,
    decode_rle,
    encode_rle,
    mask_runs,
    mask_to_coco,
    parse_rle,
)
from .submission import FORMATS, HAND_BONE_CLASSES, PORT_CLASSES, TRASH_CLASSES, SubmissionWriter

__all__ = [
    'ATOMIC_LOCAL_BACKEND', 'AtomicLocalBackend',
    'ProbFileError', 'ProbFolder', 'ProbFolderWriter', 'ProbMeta', 'dequantize', 'quantize',
    'read_probs', 'write_probs', 'COLUMN_RLE', 'HANDBONE_RLE', 'PORT_RLE', 'RLEConvention',
    'RLEError', 'coco_to_mask', 'decode_rle', 'encode_rle', 'mask_runs', 'mask_to_coco',
    'parse_rle', 'FORMATS', 'HAND_BONE_CLASSES', 'PORT_CLASSES', 'TRASH_CLASSES',
    'SubmissionWriter',
]
