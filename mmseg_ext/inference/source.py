"""The ``source`` record of a probability folder: which model and views predicted it.

``tools/inference.py`` writes it into the folder's ``index.json``. Besides the paths it
names the model by content (``checkpoint_sha256``: a copy under another path is the same
model) and the views by what changes the probabilities (``views``,
:func:`views_hash`: the same model at another test scale or with another input
normalisation is another member of an ensemble; at another threshold it is not), with
the version of the formula that hash was made by (``views_version``,
:data:`VIEWS_VERSION`; a record without it is version 1, written before the formula
took the data preprocessor in). Two hashes of one checkpoint made by different versions
cannot be compared: the ensemble refuses them (the older folder is to be predicted
again). How the probabilities were stored (``out_size``) is recorded apart from both: the ensemble
refuses one model and views given twice whatever their storage
(:func:`~mmseg_ext.ensembling.ensemble.check_one_model_per_folder`).

An exported ONNX model (``tools/export.py``) is its source checkpoint's model: its
sidecar records that checkpoint's sha256 (``export.checkpoint_sha256``), and the record
of a folder it predicted carries that as ``checkpoint_sha256``; ``checkpoint`` names the
file that was run (the ``.onnx``), ``onnx_sha256`` its own bytes and ``exported_from``
the checkpoint path the sidecar records. A sidecar written before that field existed
leaves the ``.onnx``'s own sha256 as the identity (another model than its checkpoint).

Records are read back by :func:`model_identity` (one model's fields) and
:func:`member_models` (an ensemble's members, which its record nests). A field is used
only when it has the expected type and a sane length (a string for ``config``,
``checkpoint``, ``views`` and ``out_size``, 64 hex digits for ``checkpoint_sha256``, a
bool for ``tta``, a whole number from 1 to :data:`MAX_VIEWS_VERSION` for
``views_version``); any other value counts as absent, so a foreign or edited record
makes the folder's model unknown (never an error). A ``views_version`` given with
another value makes ``views`` count as absent too (a hash of an unknown formula).
:func:`compact_source` is what an
ensemble copies of a member's record: the record itself when it is a small JSON object,
else only its valid fields.
"""
from __future__ import annotations

import hashlib
import json
import os.path as osp
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from ..io.paths import file_sha256

#: the version of :func:`views_hash`'s formula, recorded as ``views_version``: 1 (no
#: field) hashed the pipeline and the test_cfg with its threshold, without the data
#: preprocessor; 2 hashes what :func:`views_hash` says. Raise it whenever the formula
#: changes, so that folders written before are not taken for other views.
VIEWS_VERSION = 2
#: a recorded ``views_version`` above this counts as absent (a foreign or edited record)
MAX_VIEWS_VERSION = 1_000_000
#: ``test_cfg`` keys that act after the probabilities: the multi-label thresholds
#: (``MultiLabelPostProcessMixin``) and the class names they may be given by. Left out
#: of :func:`views_hash`; every other key is kept.
POSTPROCESS_KEYS = frozenset({'threshold', 'classes'})
#: ``test_cfg`` keys read only by window-by-window (slide) inference
WINDOW_KEYS = ('crop_size', 'stride')
#: the longest text a record field may hold (a path); longer counts as absent
MAX_TEXT = 4096
#: an ensemble's nested members are followed this deep ...
MAX_DEPTH = 8
#: ... and this many records in all, per folder; past either the rest is unknown
MAX_RECORDS = 1000
#: a member record up to this size (as JSON) is copied whole into an ensemble's record
COPY_LIMIT = 256 * 1024
#: how much of a value an error message shows
SHOWN = 200

_SHA256 = re.compile(r'[0-9a-fA-F]{64}\Z')
#: the fields of a model's record kept when the record is not copied whole
_KEPT = ('config', 'checkpoint', 'tta', 'out_size', 'checkpoint_sha256', 'views',
         'views_version', 'onnx_sha256', 'exported_from', 'mixed_size')


def shown(text: Any, limit: int = SHOWN) -> str:
    """``text`` for a message: at most ``limit`` characters, its middle cut out (a
    path keeps its file name)."""
    text = str(text)
    if len(text) <= limit:
        return text
    head = limit // 2
    return f'{text[:head]}...{text[len(text) - (limit - head - 3):]}'


# ---------------------------------------------------------------- writing the record
def inference_settings(test_cfg: Optional[Any]) -> Dict[str, Any]:
    """The part of a segmentor's ``test_cfg`` that decides its probabilities: ``mode``
    (default ``'whole'``), ``crop_size`` and ``stride`` in a window-by-window mode, and
    any key this project does not know as post-processing. Left out:
    :data:`POSTPROCESS_KEYS` (``threshold``, ``classes``: they turn probabilities into
    masks) and the window keys in ``'whole'`` mode (not read there)."""
    items = dict(test_cfg or {})
    kept = {k: v for k, v in items.items() if k not in POSTPROCESS_KEYS}
    kept['mode'] = items.get('mode', 'whole')
    if kept['mode'] == 'whole':
        for key in WINDOW_KEYS:
            kept.pop(key, None)
    return kept


def preprocess_settings(model: Any) -> Optional[Dict[str, Any]]:
    """The settings of the data preprocessor ``model`` runs at test time: mean, std,
    channel order, padding value and test-time padding (``size`` / ``size_divisor``),
    as an export records them (:func:`~.onnx_backend.preprocess_of`); the segmentation
    padding value is left out (it pads labels, not images). None when the model has no
    data preprocessor."""
    dp = getattr(model, 'data_preprocessor', None)
    if dp is None:
        return None
    from .onnx_backend import preprocess_of
    try:
        settings = preprocess_of(dp)
    except (AttributeError, TypeError, ValueError):  # not a SegDataPreProcessor
        return dict(type=type(dp).__name__, repr=repr(dp))
    settings.pop('seg_pad_val', None)
    if type(dp).__name__ != 'SegDataPreProcessor':  # a subclass may do more
        settings['type'] = type(dp).__name__
    return settings


def views_hash(predictor: Any) -> str:
    """16 hex of what decides a predictor's probabilities besides its weights:

    * its pipeline (test or TTA views, as built);
    * the segmentor's inference settings (:func:`inference_settings`: ``test_cfg``
      ``mode``, and ``crop_size``/``stride`` when it is not ``'whole'``; not
      ``threshold`` or ``classes``, which act after the probabilities);
    * the data preprocessor's settings (:func:`preprocess_settings`: mean, std,
      ``bgr_to_rgb``/``rgb_to_bgr``, ``pad_val``, test ``size``/``size_divisor``);
    * the lateral class pairs a flipped view swaps;
    * which network of a training wrapper predicts (a mean teacher's ``predict_with``).

    The torch segmentor and its ONNX export (:class:`~.onnx_backend.OnnxSegmentor`,
    whole-image, its preprocessor rebuilt from the sidecar) hash alike. This is
    version :data:`VIEWS_VERSION` of the formula: a change here raises it.
    """
    model = predictor.model
    net = getattr(model, 'predictor', None)  # a wrapper predicts with one segmentor
    if net is None or not hasattr(net, 'test_cfg'):
        net = model
    predict_with = getattr(model, 'predict_with', None)
    text = json.dumps(dict(pipeline=repr(predictor.pipeline),
                           inference=inference_settings(getattr(net, 'test_cfg', None)),
                           preprocess=preprocess_settings(model),
                           swap=[list(p) for p in predictor.flip_swap_pairs],
                           network=predict_with if isinstance(predict_with, str) else None),
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode('utf-8')).hexdigest()[:16]


def prediction_source(predictor: Any, config: str, checkpoint: str, tta: bool,
                      out_size: str) -> Dict[str, Any]:
    """The ``source`` record of the probabilities ``predictor`` writes (see the module
    docstring). ``checkpoint``: the file run, a ``.pth`` or an exported ``.onnx``.

    Raises:
        DataError: the checkpoint cannot be read.
    """
    from .onnx_backend import exported_checkpoint, is_onnx_model
    record = dict(config=osp.abspath(config), checkpoint=osp.abspath(checkpoint), tta=tta,
                  out_size=out_size, checkpoint_sha256=file_sha256(checkpoint),
                  views=views_hash(predictor), views_version=VIEWS_VERSION)
    sidecar = getattr(predictor.model, 'sidecar', None)
    if is_onnx_model(checkpoint) and isinstance(sidecar, dict):
        record['onnx_sha256'] = record['checkpoint_sha256']
        path, sha256 = exported_checkpoint(sidecar)
        if sha256 is not None:  # the model is its source checkpoint's
            record['checkpoint_sha256'] = sha256
            record['exported_from'] = path
    return record


# ---------------------------------------------------------------- reading it back
def _text(record: dict, key: str, limit: int = MAX_TEXT) -> Optional[str]:
    value = record.get(key)
    return value if isinstance(value, str) and 0 < len(value) <= limit else None


def _sha256(record: dict, key: str) -> Optional[str]:
    value = record.get(key)
    return value.lower() if isinstance(value, str) and _SHA256.match(value) else None


def _version(record: dict, key: str) -> Optional[int]:
    value = record.get(key)
    return value if type(value) is int and 1 <= value <= MAX_VIEWS_VERSION else None


def _valid_fields(record: dict) -> Dict[str, Any]:
    """The fields of :data:`_KEPT` that have their expected type and length; ``views``
    only with a valid ``views_version`` or none (version 1)."""
    out: Dict[str, Any] = {}
    for key in _KEPT:
        if key in ('checkpoint_sha256', 'onnx_sha256'):
            value = _sha256(record, key)
        elif key == 'tta':
            value = record.get(key) if isinstance(record.get(key), bool) else None
        elif key == 'views_version':
            value = _version(record, key)
        else:
            value = _text(record, key)
        if value is not None:
            out[key] = value
    if 'views_version' in record and 'views_version' not in out:
        out.pop('views', None)  # a hash of an unknown formula: cannot be compared
    return out


@dataclass(frozen=True)
class ModelRecord:
    """One model's identity as a ``source`` record gives it.

    ``key``: ``('content', checkpoint_sha256, views, views_version)``, or for records
    written before those were, ``('paths', config, checkpoint, tta)``; ``checkpoint`` and ``out_size``
    when the record gives them (for messages and the rule of stored sizes);
    ``views_version``: the formula ``views`` was hashed by (:data:`VIEWS_VERSION`; 1
    for a record without the field, None for a model told by paths); ``tta`` when the
    record gives it. Two ``views`` of different versions are never equal: the pixels
    decide (:class:`~mmseg_ext.ensembling.ensemble.SameValues`), or, inside an ensemble
    where the pixels are averaged away, the ensemble refuses them."""
    key: Tuple
    checkpoint: Optional[str]
    out_size: Optional[str]
    views_version: Optional[int] = None
    tta: Optional[bool] = None

    @property
    def by_content(self) -> bool:
        return self.key[0] == 'content'


def model_identity(record: Any) -> Optional[ModelRecord]:
    """The model a ``source`` record names, or None when it names none (an ensemble's
    record, another writer's, or one whose fields have other types or absurd lengths:
    see the module docstring)."""
    if not isinstance(record, dict):
        return None
    fields = _valid_fields(record)
    checkpoint, out_size = fields.get('checkpoint'), fields.get('out_size')
    if 'checkpoint_sha256' in fields and 'views' in fields:
        version = fields.get('views_version', 1)
        return ModelRecord(('content', fields['checkpoint_sha256'], fields['views'],
                            version), checkpoint, out_size, version, fields.get('tta'))
    # by paths: the checkpoint's, and the config and TTA flag when given; a field given
    # with another type makes the record unknown (it cannot be compared)
    if checkpoint and all(key in fields for key in ('config', 'tta') if key in record
                          and record[key] is not None):
        return ModelRecord(('paths', fields.get('config'), checkpoint, fields.get('tta')),
                           checkpoint, out_size)
    return None


def member_models(record: Any) -> List[Tuple[ModelRecord, Optional[str]]]:
    """The models a folder's ``source`` record holds, with the member folder each came
    through: ``[(model, None)]`` for one model's predictions, and for an ensemble (its
    record lists ``ensemble: [{probs, weight, source}, ...]``) its members' models,
    followed into nested ensembles, with the ``probs`` of the outermost member. At most
    :data:`MAX_DEPTH` levels and :data:`MAX_RECORDS` records are read; beyond, the
    rest counts as unknown."""
    found: List[Tuple[ModelRecord, Optional[str]]] = []
    stack: List[Tuple[Any, int, Optional[str]]] = [(record, 0, None)]
    visited = 0
    while stack and visited < MAX_RECORDS:
        item, depth, via = stack.pop()
        visited += 1
        model = model_identity(item)
        if model is not None:
            found.append((model, via))
            continue
        members = item.get('ensemble') if isinstance(item, dict) else None
        if not isinstance(members, list) or depth >= MAX_DEPTH:
            continue
        for entry in reversed(members[:MAX_RECORDS]):
            if isinstance(entry, dict):
                probs = via or _text(entry, 'probs') or '(a member without a folder path)'
                stack.append((entry.get('source'), depth + 1, probs))
    return found


def _json_size(record: Any) -> Optional[int]:
    try:
        return len(json.dumps(record, default=str))
    except (TypeError, ValueError, RecursionError):
        return None


def compact_source(record: Any, strict: bool = False, depth: int = 0) -> Dict[str, Any]:
    """What an ensemble's record keeps of a member's ``source``: the record itself when
    it is a JSON object of at most :data:`COPY_LIMIT` characters; otherwise (a list, a
    string, an oversized object) only its valid model fields (:func:`model_identity`),
    its nested members compacted the same way (bounded as :func:`member_models`),
    ``fold_thresholds`` marked when the record held some (a calibrated fold vote), and
    ``omitted`` saying what was left out."""
    if record is None:  # a folder without a record
        return {}
    size = _json_size(record)
    if not strict and isinstance(record, dict) and size is not None and size <= COPY_LIMIT:
        return record
    from ..io.probs import _holds_calibrated
    out: Dict[str, Any] = _valid_fields(record) if isinstance(record, dict) else {}
    members = record.get('ensemble') if isinstance(record, dict) else None
    if isinstance(members, list) and depth < MAX_DEPTH:
        out['ensemble'] = []
        for entry in members[:MAX_RECORDS // 10]:
            if isinstance(entry, dict):
                weight = entry.get('weight')
                out['ensemble'].append(dict(
                    probs=_text(entry, 'probs'),
                    weight=weight if isinstance(weight, (int, float)) and not
                    isinstance(weight, bool) else None,
                    source=compact_source(entry.get('source'), True, depth + 1)))
    if _holds_calibrated(record):
        out['fold_thresholds'] = 'present in the original record (omitted)'
    if not strict or not isinstance(record, dict) or size is None or size > COPY_LIMIT:
        kind = {dict: 'object', list: 'array', str: 'string'}.get(type(record),
                                                                  type(record).__name__)
        what = f'a JSON {kind}' if size is None else f'a JSON {kind} of {size} characters'
        out['omitted'] = (f'the member\'s source record ({what}) was not copied whole; '
                          'only its valid model fields are kept')
    return out
