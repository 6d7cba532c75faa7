"""File formats around a submission: RLE, probability files, competition CSVs.

* :mod:`.rle` -- run-length encoding with explicit conventions, pycocotools conversion;
* :mod:`.probs` -- per-image probability files (``.npz``) and folders (``index.json``);
* :mod:`.submission` -- competition CSV formats, writer and readers;
* :mod:`.atomic` -- outputs written under a temporary name, never replaced without force;
* :mod:`.checkpoint_backend` -- the same for the checkpoints the trainer writes (an
  mmengine file backend, ``'atomic_local'``);
* :mod:`.images` -- recursive image listing, image sizes from headers.
"""
from ..utils.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    **{name: '.checkpoint_backend' for name in ('ATOMIC_LOCAL_BACKEND', 'AtomicLocalBackend')},
    **{name: '.probs' for name in ('ProbFileError', 'ProbFolder', 'ProbFolderWriter',
                                   'ProbMeta', 'dequantize', 'quantize', 'read_probs',
                                   'write_probs')},
    **{name: '.rle' for name in ('COLUMN_RLE', 'HANDBONE_RLE', 'PORT_RLE', 'RLEConvention',
                                 'RLEError', 'coco_to_mask', 'decode_rle', 'encode_rle',
                                 'mask_runs', 'mask_to_coco', 'parse_rle')},
    **{name: '.submission' for name in ('FORMATS', 'SubmissionWriter', 'get_format')},
    **{name: '.hand_bone_json' for name in ('parse_hand_bone_json', 'read_masks',
                                            'hand_bone_document', 'write_hand_bone_json')},
})
