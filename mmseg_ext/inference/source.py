"""The ``source`` record of a probability folder: which model and views predicted it.

``tools/inference.py`` writes it into the folder's ``index.json``. Besides the paths it
names the checkpoint by content (``checkpoint_sha256``: a copy under another path is
the same model) and the views by what the predictor runs (``views``: a hash of its
pipeline, the model's ``test_cfg`` and the lateral swap pairs, so the same model at
another test scale is another member of an ensemble). How the probabilities were stored
(``out_size``) is recorded apart from both: the ensemble refuses one model and views
given twice whatever their storage
(:func:`~mmseg_ext.ensembling.ensemble.check_one_model_per_folder`).
"""
from __future__ import annotations

import hashlib
import json
import os.path as osp
from typing import Any, Dict

from ..io.paths import file_sha256


def views_hash(predictor: Any) -> str:
    """16 hex of what decides a predictor's probabilities besides its weights: its
    pipeline (test or TTA views, as built), the model's ``test_cfg`` and the lateral
    class pairs a flipped view swaps."""
    test_cfg = getattr(predictor.model, 'test_cfg', None)
    text = json.dumps(dict(pipeline=repr(predictor.pipeline),
                           test_cfg=test_cfg if test_cfg is None else dict(test_cfg),
                           swap=list(predictor.flip_swap_pairs)),
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode('utf-8')).hexdigest()[:16]


def prediction_source(predictor: Any, config: str, checkpoint: str, tta: bool,
                      out_size: str) -> Dict[str, Any]:
    """The ``source`` record of the probabilities ``predictor`` writes (see the module
    docstring).

    Raises:
        DataError: the checkpoint cannot be read.
    """
    return dict(config=osp.abspath(config), checkpoint=osp.abspath(checkpoint), tta=tta,
                out_size=out_size, checkpoint_sha256=file_sha256(checkpoint),
                views=views_hash(predictor))
