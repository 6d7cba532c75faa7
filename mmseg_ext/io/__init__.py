"""File formats around a submission: RLE, probability files, competition CSVs.

* :mod:`.rle` -- run-length encoding with explicit conventions, pycocotools conversion;
* :mod:`.probs` -- per-image probability files (``.npz``) and folders (``index.json``);
* :mod:`.submission` -- competition CSV formats, writer and readers;
* :mod:`.atomic` -- outputs written under a temporary name, never replaced without force;
* :mod:`.checkpoint_backend` -- the same for the checkpoints the trainer writes (an
  mmengine file backend, ``'atomic_local'``);
* :mod:`.images` -- recursive image listing, image sizes from headers.
"""
