"""File formats around a submission: RLE, probability files, competition CSVs.

* :mod:`.rle` -- run-length encoding with explicit conventions, pycocotools conversion;
* :mod:`.probs` -- probability folders (``index.json``), read and written by image key;
  :mod:`.prob_file` -- one per-image probability file (``.npz``); :mod:`.prob_meta` --
  what a file says about its image;
* :mod:`.submission` -- competition CSV formats, writer and readers;
* :mod:`.atomic` -- output files written under a temporary name, never replaced without
  force; :mod:`.file_sets` -- several files as one commit; :mod:`.staged_dir` -- whole
  output folders; :mod:`.staging`, :mod:`.output_errors`, :mod:`.deferred_signals` --
  their hidden names, error lines and signal-atomic commits;
* :mod:`.ownership` -- what a multi-stage tool owns in its work directory;
  :mod:`.work_dir_lock` -- one run per work directory; :mod:`.owned_files` -- a tool's
  set of files in a folder; :mod:`.manifest_records`, :mod:`.folder_manifest` -- the
  manifests that record them;
* :mod:`.checkpoint_backend` -- the same for the checkpoints the trainer writes (an
  mmengine file backend, ``'atomic_local'``);
* :mod:`.images` -- recursive image listing, image sizes from headers.
"""
from ..utils.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    **{name: '.checkpoint_backend' for name in ('ATOMIC_LOCAL_BACKEND', 'AtomicLocalBackend')},
    **{name: '.probs' for name in ('ProbFolder', 'ProbFolderWriter')},
    **{name: '.prob_meta' for name in ('ProbFileError', 'ProbMeta')},
    **{name: '.prob_file' for name in ('dequantize', 'quantize', 'read_probs', 'write_probs')},
    **{name: '.rle' for name in ('COLUMN_RLE', 'HANDBONE_RLE', 'PORT_RLE', 'RLEConvention',
                                 'RLEError', 'coco_to_mask', 'decode_rle', 'encode_rle',
                                 'mask_runs', 'mask_to_coco', 'parse_rle')},
    **{name: '.submission' for name in ('FORMATS', 'SubmissionWriter', 'get_format')},
    **{name: '.hand_bone_json' for name in ('parse_hand_bone_json', 'read_masks',
                                            'hand_bone_document', 'write_hand_bone_json')},
})
