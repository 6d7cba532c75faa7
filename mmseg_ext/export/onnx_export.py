"""Checkpoint -> ``model.onnx`` + ``model.onnx.json`` (``tools/export.py``).

:func:`export_onnx` builds the model of a config, loads the checkpoint only when it fits
that model (a checkpoint of another config is refused, as by ``tools/inference.py``),
exports its whole-image forward with probabilities out (:mod:`.graph`), runs the ONNX
file once in onnxruntime against torch on an input of another size than the one traced,
and publishes the graph and its sidecar together: both or neither, each under a
temporary name first, never over an existing file without ``force``.

The sidecar (:mod:`mmseg_ext.inference.onnx_backend`) records what inference needs: the
classes, the task, the data preprocessor (mean, std, channel order, test-time padding),
the test pipeline and the scale of its resize, ``flip_swap_classes``, the tuned
post-processing when given (:mod:`.tuned`), the digest of the ONNX file and its own,
and under ``export`` the source checkpoint's path and sha256 (a folder predicted by the
export names that checkpoint as its model, :mod:`mmseg_ext.inference.source`).
"""
from __future__ import annotations

import contextlib
import hashlib
import math
import os
import os.path as osp
import tempfile
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..datasets.transforms.pipeline_geometry import first_resize
from ..inference.onnx_backend import (
    INPUT_NAME,
    LOGITS_NAME,
    PROBS_NAME,
    SIDECAR_FORMAT,
    SIDECAR_VERSION,
    is_onnx_model,
    open_session,
    preprocess_of,
    require_onnxruntime,
    sidecar_path,
    sidecar_text,
)
from ..io.output_errors import output_error
from ..io.paths import check_output_apart, file_sha256
from ..utils.errors import CheckpointError, ConfigError, InvalidArgumentError, OutputError
from ..utils.per_class import PerClassSpec
from .graph import OPSET, ProbabilityGraph, export_graph, require_exporter
from .tuned import tuned_postprocess

#: largest fixed input side (pixels)
MAX_SIDE = 16384
#: the verification at export fails above this difference of probabilities
EXPORT_TOLERANCE = 1e-4


@dataclass
class ExportSummary:
    onnx: str
    sidecar: str
    classes: int
    task: str
    input_shape: List[Optional[int]]
    max_abs_diff: float
    megabytes: float
    seconds: float


def slide_problem(test_cfg: Optional[dict]) -> Optional[str]:
    """Why a model tested window by window cannot be one whole-image graph (None when
    it is tested on the whole image)."""
    mode = (test_cfg or {}).get('mode', 'whole')
    if mode == 'whole':
        return None
    return (f"test_cfg.mode={mode!r}: the model is tested window by window; the ONNX graph "
            "is one whole-image forward, whose scores would differ from the validated ones")


def _align(value: int, step: int) -> int:
    return int(math.ceil(value / step) * step)


def _check_shape(shape: Optional[Sequence[int]], divisor: int) -> Optional[Tuple[int, int]]:
    if shape is None:
        return None
    if len(shape) != 2 or any(isinstance(v, bool) or int(v) != v for v in shape):
        raise InvalidArgumentError('shape', f'{shape}: expected two whole numbers H W')
    h, w = (int(v) for v in shape)
    if min(h, w) < 1 or max(h, w) > MAX_SIDE:
        raise InvalidArgumentError('shape', f'{h} {w}: each side in [1, {MAX_SIDE}]')
    if h % divisor or w % divisor:
        raise InvalidArgumentError('shape', f'{h} {w}: the model pads test images to a '
                                   f'multiple of {divisor}; give sides divisible by it')
    return h, w


def _plain(value):
    """JSON-ready copy of config values (tuples to lists, ConfigDicts to dicts)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _verify(onnx_path: str, graph: ProbabilityGraph, shape: Tuple[int, int, int, int],
            config: str) -> Tuple[float, int]:
    """``(max absolute difference of probs between onnxruntime and torch, logit
    channels)`` on one random input of ``shape``."""
    session = open_session(onnx_path, ['CPUExecutionProvider'])
    x = torch.from_numpy(np.random.default_rng(0).standard_normal(shape).astype(np.float32))
    with torch.no_grad():
        expected, logits = (t.numpy() for t in graph(x))
    got = session.run([PROBS_NAME], {INPUT_NAME: x.numpy()})[0]
    if got.shape != expected.shape:
        raise ConfigError(f'{config}: the exported graph gives {got.shape} for an input '
                          f'of {shape}, torch {expected.shape}; not published')
    return float(np.abs(got - expected).max()), int(logits.shape[1])


def _with_metadata(path: str, meta: Dict[str, str]) -> bytes:
    """The ONNX file's bytes with ``meta`` added to its ``metadata_props``."""
    import onnx
    model = onnx.load(path)
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    return model.SerializeToString()


#: the tool whose outputs the export's files are (their ownership records name it)
OWNER = 'export'


def publish_files(files: Dict[str, bytes], force: bool = False,
                  owner: Optional[str] = OWNER) -> None:
    """Publish files that belong together (the ONNX graph and its sidecar): all or none,
    each written under a hidden temporary name beside its target first, one writer per
    output (:func:`~mmseg_ext.io.output_lock.output_lock`), no existing file replaced
    without ``force``, and with ``force`` only ``owner``'s own unchanged files (their
    ownership records, :mod:`mmseg_ext.io.owned_file`, committed with them).

    This is :func:`~mmseg_ext.io.file_sets.atomic_write_files` for bytes: it reuses that
    module's commit step (the earlier versions kept aside until every file is published,
    put back on an error, signals deferred).

    Raises:
        OutputExistsError: a target exists and ``force`` is off (nothing written).
        OutputError: a target is not ``owner``'s to replace, or cannot be written
            (nothing published).
    """
    from ..io.atomic import check_new_output, temp_beside
    from ..io.file_sets import _publish_together
    from ..io.output_lock import output_lock
    from ..io.owned_file import (
        commit_record,
        discard_record,
        stage_record,
    )
    with contextlib.ExitStack() as locks:
        for path in files:
            locks.enter_context(output_lock(path))
        for path in files:
            check_new_output(path, force, owner)
        staged: List[Tuple[str, str]] = []
        records: List[Tuple[str, str]] = []
        current = next(iter(files), '')
        try:
            for current, data in files.items():
                fd, tmp = temp_beside(current)
                staged.append((tmp, current))
                with open(fd, 'wb') as f:
                    f.write(data)
                if owner is not None:
                    records.append((stage_record(tmp, current, owner), current))

            def commit_records() -> None:
                for record, path in records:
                    commit_record(record, path)

            _publish_together(staged, force, [], commit_records)
            staged = []
        except OSError as exc:
            if isinstance(exc, OutputError):
                raise
            raise output_error(current, exc) from None
        finally:
            for tmp, _ in staged:
                with contextlib.suppress(OSError):
                    os.remove(tmp)
            for record, _ in records:
                discard_record(record)


def export_onnx(config: str, checkpoint: str, out: str,
                shape: Optional[Sequence[int]] = None,
                thresholds: PerClassSpec = None, min_area: PerClassSpec = None,
                keep_largest: PerClassSpec = None, cv_dir: Optional[str] = None,
                connectivity: Optional[int] = None, cfg_options: Optional[dict] = None,
                force: bool = False, opset: int = OPSET) -> ExportSummary:
    """Export the model of ``config`` with the weights of ``checkpoint`` to ``out``.

    Args:
        out: the ONNX file (``.onnx``); the sidecar is ``out + '.json'``.
        shape: ``(H, W)``: a graph for that input size only; None: batch, height and
            width dynamic.
        thresholds, min_area, keep_largest, connectivity: tuned post-processing
            (:func:`~.tuned.tuned_postprocess`), or ``cv_dir``: a ``tools/cv.py`` work
            dir whose ``tuned/`` files give them.
        force: replace an existing ``out`` and sidecar.

    Raises:
        InvalidArgumentError: ``out`` not ending in ``.onnx``, lying inside an input
            folder or being an input; a bad ``shape`` or tuned value.
        OutputExistsError: ``out`` or its sidecar exists and ``force`` is off.
        CheckpointError: the checkpoint is missing, refused, or of another model.
        ConfigError: the model cannot be exported (slide inference, an operator
            without ONNX conversion: the message names the module).
        EnvironmentCheckError: onnx, onnxscript or onnxruntime is missing.
    """
    start = time.perf_counter()
    from ..inference.predictor import build_predictor
    if not is_onnx_model(out):
        raise InvalidArgumentError('out', f'{out}: an ONNX model file name ends in .onnx')
    if is_onnx_model(checkpoint):
        raise CheckpointError(f'{checkpoint}: already an ONNX model; export reads a torch '
                              'checkpoint (.pth)')
    side = sidecar_path(out)
    require_exporter()
    require_onnxruntime()
    inputs = [config, checkpoint, cv_dir] + [
        v for v in (thresholds, min_area, keep_largest) if isinstance(v, str) and osp.exists(v)]
    for target in (out, side):
        check_output_apart(target, inputs, 'out')
    from ..io.atomic import check_new_output
    for target in (out, side):
        check_new_output(target, force, OWNER)
    predictor = build_predictor(config, checkpoint, device='cpu', cfg_options=cfg_options)
    # the model's identity: inference on the export records it (inference.source)
    checkpoint_sha256 = file_sha256(checkpoint)
    model = predictor.model
    problem = slide_problem(getattr(model, 'test_cfg', None))
    if problem:
        raise ConfigError(f'{config}: cannot export: {problem}')
    if not (hasattr(model, 'encode_decode') and hasattr(model, 'align_corners')):
        raise ConfigError(f'{config}: cannot export a {type(model).__name__}: the export '
                          'needs an EncoderDecoder segmentor (encode_decode, '
                          'align_corners); a training wrapper is not one')
    classes, multi_label = predictor.classes, predictor.multi_label
    predict_with = getattr(model, 'predict_with', None)  # a mean teacher's network
    postprocess = tuned_postprocess(classes, multi_label, thresholds, min_area, keep_largest,
                                    cv_dir, connectivity, checkpoint)
    preprocess = preprocess_of(model.data_preprocessor)
    divisor = int((preprocess.get('test_cfg') or {}).get('size_divisor') or 1)
    fixed = _check_shape(shape, divisor)
    if fixed is not None:
        preprocess['test_cfg'] = dict(size=list(fixed))
    graph = ProbabilityGraph(model, multi_label).eval()
    step = max(32, divisor)
    # traced at batch 2 (a size of 1 would be fixed), checked at batch 1 and, when the
    # size is dynamic, at a size other than the traced one
    trace_shape = (2, 3, *fixed) if fixed else (2, 3, _align(96, step), _align(160, step))
    check_shape = (1, 3, *fixed) if fixed else (1, 3, _align(160, step), _align(96, step))
    # the raw export goes to a private temporary folder: nothing appears beside ``out``
    # (not even its folder) unless both files are published
    with tempfile.TemporaryDirectory(prefix='mmseg_ext-export-') as tmp:
        raw = osp.join(tmp, 'model.onnx')
        batch_dynamic = export_graph(graph, torch.zeros(trace_shape), raw,
                                     dynamic=fixed is None, config=config, opset=opset,
                                     shown=out)
        meta = {'mmseg_ext.sidecar': osp.basename(side), 'mmseg_ext.classes':
                ','.join(classes), 'mmseg_ext.task': predictor.task}
        data = _with_metadata(raw, meta)
        try:
            with open(raw, 'wb') as f:
                f.write(data)
        except OSError as exc:  # the private copy: named as the user's output
            raise output_error(out, exc) from None
        diff, logit_channels = _verify(raw, graph, check_shape, config)
    if not diff <= EXPORT_TOLERANCE:
        raise ConfigError(f'{config}: the exported graph differs from torch by {diff:.2e} '
                          f'(more than {EXPORT_TOLERANCE:g}) on a {check_shape[2]}x'
                          f'{check_shape[3]} input; not published')
    import onnx
    body = dict(
        format=SIDECAR_FORMAT, version=SIDECAR_VERSION, onnx_file=osp.basename(out),
        onnx_sha256=hashlib.sha256(data).hexdigest(), sidecar_sha256='',
        classes=list(classes), num_classes=len(classes), multi_label=multi_label,
        task=predictor.task, logit_channels=logit_channels,
        align_corners=bool(model.align_corners),
        input_shape=[None if batch_dynamic else 1, 3,
                     *([None, None] if fixed is None else fixed)],
        inputs={INPUT_NAME: 'float32 (N, 3, H, W): the image after the test pipeline, '
                'channels ordered, normalised and padded as preprocess says'},
        outputs={PROBS_NAME: 'float32 (N, C, H, W) probabilities (sigmoid per class when '
                 'multi_label, else softmax over classes)',
                 LOGITS_NAME: 'float32 (N, C, H, W) before the activation'},
        preprocess=preprocess,
        test_pipeline=_plain(predictor.test_pipeline or []),
        test_resize=_plain(first_resize(predictor.test_pipeline)),
        flip_swap_classes=[[classes[a], classes[b]] for a, b in predictor.flip_swap_pairs],
        postprocess=postprocess,
        export=dict(config=osp.abspath(config), checkpoint=osp.abspath(checkpoint),
                    checkpoint_sha256=checkpoint_sha256,
                    predict_with=predict_with if isinstance(predict_with, str) else None,
                    opset=opset, torch=torch.__version__, onnx=onnx.__version__,
                    verified_max_abs_diff=diff, verified_input=list(check_shape)))
    publish_files({out: data, side: sidecar_text(body).encode('utf-8')}, force)
    return ExportSummary(out, side, len(classes), predictor.task, body['input_shape'], diff,
                         len(data) / 2 ** 20, time.perf_counter() - start)

