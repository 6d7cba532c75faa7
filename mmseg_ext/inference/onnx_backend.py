"""An exported ONNX model run by onnxruntime in place of the torch segmentor.

``tools/export.py`` (:mod:`mmseg_ext.export`) writes ``model.onnx`` and beside it the
sidecar ``model.onnx.json`` (:func:`sidecar_path`). This module reads them back for
``tools/inference.py``:

* the **sidecar** (:data:`SIDECAR_FORMAT`, version :data:`SIDECAR_VERSION`) says what
  inference needs besides the graph: class names, multi-label or not, the data
  preprocessor's mean/std, channel order and padding, the test pipeline and its scale,
  ``flip_swap_classes``, the tuned post-processing when one was given, and two digests:
  ``onnx_sha256`` (the exported file) and ``sidecar_sha256`` (the sidecar's own content,
  :func:`sidecar_digest`). Its ``export`` object names the source checkpoint (path and,
  since it was added, ``checkpoint_sha256``: the model's identity in a probability
  folder's record, :func:`exported_checkpoint`) and the network a training wrapper
  predicts with (``predict_with``). :func:`read_sidecar` refuses a sidecar that is missing,
  edited after export, of another format or version, or whose ONNX file was swapped or
  lists another number of classes than the graph outputs;
* the **graph** takes the data preprocessor's output, ``input``: float32
  ``(N, 3, H, W)`` (normalised, channels in the model's order, padded as the sidecar's
  ``preprocess.test_cfg`` says), and gives ``probs`` (``(N, C, H, W)``: sigmoid per class
  for a multi-label model, softmax over classes otherwise) and ``logits`` (the same before
  the activation: one channel for a stock binary head whose ``probs`` are ``[1 - p, p]``);
* :class:`OnnxSegmentor` stands in for the segmentor in
  :class:`~.predictor.ProbabilityPredictor`: the stock data preprocessor built from the
  sidecar, onnxruntime, then the segmentor's own geometry (padding cut off, flips undone,
  logits resized bilinearly to the requested size,
  :func:`~mmseg_ext.models.segmentors.postprocess.logits_to_original`). The activation
  comes after the resize, as on the torch path, so both backends give the same
  probabilities at every output size and in every TTA view.

onnxruntime is an optional dependency (``requirements/export.txt``); without it
:func:`require_onnxruntime` raises one :class:`EnvironmentCheckError` with the fix.
"""
from __future__ import annotations

import hashlib
import json
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..io.paths import file_sha256
from ..utils.errors import (
    CheckpointError,
    DataError,
    EnvironmentCheckError,
    InvalidArgumentError,
)
from ..utils.readers import check_regular_file, read_json

#: the ``format`` field of every sidecar
SIDECAR_FORMAT = 'mmseg_ext.onnx-sidecar'
#: the sidecar version this code writes and reads
SIDECAR_VERSION = 1
#: graph input and output names
INPUT_NAME = 'input'
PROBS_NAME = 'probs'
LOGITS_NAME = 'logits'
#: the one-line fix when the optional packages are missing
EXPORT_HINT = ('pip install -r requirements/export.txt (or pip install -e .[export]; '
               'tools/install.sh installs it unless EXPORT=no)')


def is_onnx_model(path: str) -> bool:
    """Whether ``path`` names an exported model (``.onnx``) rather than a checkpoint."""
    return str(path).lower().endswith('.onnx')


def sidecar_path(onnx_path: str) -> str:
    """``model.onnx`` -> ``model.onnx.json``, the sidecar beside it."""
    return onnx_path + '.json'


def require_onnxruntime():
    """``onnxruntime``, or one :class:`EnvironmentCheckError` naming the fix."""
    try:
        import onnxruntime
    except ImportError as exc:
        raise EnvironmentCheckError(f'running an ONNX model needs onnxruntime, which does '
                                    f'not import here ({exc}); {EXPORT_HINT}') from None
    return onnxruntime


def sidecar_digest(body: Dict[str, Any]) -> str:
    """Hex SHA-256 of a sidecar's content without its ``sidecar_sha256`` field, as
    canonical JSON (sorted keys, no spaces): any edit of a value changes it."""
    content = {k: v for k, v in body.items() if k != 'sidecar_sha256'}
    text = json.dumps(content, sort_keys=True, separators=(',', ':'), ensure_ascii=False)
    return hashlib.sha256(text.encode('utf-8')).hexdigest()


def sidecar_text(body: Dict[str, Any]) -> str:
    """The sidecar file's text: ``body`` with its ``sidecar_sha256`` filled in."""
    body = dict(body)
    body['sidecar_sha256'] = sidecar_digest(body)
    return json.dumps(body, indent=2, ensure_ascii=False) + '\n'


#: fields every sidecar has, with their JSON types
_REQUIRED = {'format': str, 'version': int, 'onnx_sha256': str, 'sidecar_sha256': str,
             'classes': list, 'multi_label': bool, 'num_classes': int, 'logit_channels': int,
             'align_corners': bool, 'preprocess': dict, 'input_shape': list,
             'test_pipeline': list, 'flip_swap_classes': list}


def read_sidecar(onnx_path: str) -> Dict[str, Any]:
    """The sidecar of ``onnx_path``, checked against itself and the ONNX file's bytes.

    Raises:
        DataError: no sidecar, not strict JSON, another format or version, a missing
            field, content edited after export (``sidecar_sha256``), or an ONNX file that
            is not the one exported with it (``onnx_sha256``).
    """
    side = sidecar_path(onnx_path)
    if not osp.lexists(side):
        raise DataError(f'{side}: sidecar not found (the export writes it beside '
                        f'{osp.basename(onnx_path)}; export the model again)')
    body = read_json(side, 'ONNX sidecar')
    if not isinstance(body, dict) or body.get('format') != SIDECAR_FORMAT:
        raise DataError(f'{side}: not an mmseg_ext ONNX sidecar (format '
                        f'{body.get("format") if isinstance(body, dict) else None!r})')
    if body.get('version') != SIDECAR_VERSION:
        raise DataError(f'{side}: sidecar version {body.get("version")!r}; this mmseg_ext '
                        f'reads version {SIDECAR_VERSION}')
    for key, kind in _REQUIRED.items():
        if not isinstance(body.get(key), kind) or (kind is int and isinstance(body[key], bool)):
            raise DataError(f'{side}: field {key!r} is missing or not a {kind.__name__}')
    if sidecar_digest(body) != body['sidecar_sha256']:
        raise DataError(f'{side}: edited after export (its content does not match its '
                        'sidecar_sha256); export the model again instead of editing it')
    if len(body['classes']) != body['num_classes']:
        raise DataError(f'{side}: {len(body["classes"])} class names for num_classes '
                        f'{body["num_classes"]}')
    return body


def exported_checkpoint(sidecar: Dict[str, Any]) -> Tuple[Optional[str], Optional[str]]:
    """``(path, sha256)`` of the checkpoint a sidecar says the model was exported from;
    the sha256 is None for a sidecar written before it was recorded (or holding
    something else than 64 hex digits there), the path None when it is not a string."""
    export = sidecar.get('export')
    if not isinstance(export, dict):
        return None, None
    path, sha256 = export.get('checkpoint'), export.get('checkpoint_sha256')
    path = path if isinstance(path, str) and 0 < len(path) <= 4096 else None
    ok = isinstance(sha256, str) and len(sha256) == 64 and \
        all(c in '0123456789abcdefABCDEF' for c in sha256)
    return path, sha256.lower() if ok else None


def check_onnx_file(onnx_path: str, sidecar: Dict[str, Any],
                    output_classes: Optional[int]) -> None:
    """Refuse an ONNX file that is not the one its sidecar describes.

    Args:
        output_classes: the class dimension the graph declares for ``probs`` (None when
            it is not a fixed number).

    Raises:
        DataError: another class count than the sidecar lists, or other bytes than were
            exported (``onnx_sha256``).
    """
    side = sidecar_path(onnx_path)
    if output_classes is not None and output_classes != sidecar['num_classes']:
        raise DataError(f'{onnx_path}: the model outputs {output_classes} classes but its '
                        f'sidecar {osp.basename(side)} lists {sidecar["num_classes"]} '
                        f'({", ".join(map(str, sidecar["classes"][:4]))}'
                        f'{", ..." if sidecar["num_classes"] > 4 else ""}); the .onnx and '
                        'the sidecar come from different exports')
    if file_sha256(onnx_path) != sidecar['onnx_sha256']:
        raise DataError(f'{onnx_path}: not the file exported with its sidecar '
                        f'{osp.basename(side)} (sha256 differs); keep the two files of one '
                        'export together')


def onnx_providers(device: Optional[str]) -> List[str]:
    """onnxruntime execution providers for a torch-style device string: ``None``
    (CUDA when this onnxruntime has it, else CPU), ``cpu``, ``cuda``/``cuda:N``.

    Raises:
        InvalidArgumentError: of ``device``: a CUDA device where this onnxruntime has no
            CUDA provider, or a device that is neither.
    """
    ort = require_onnxruntime()
    available = ort.get_available_providers()
    if device is None:
        return ['CUDAExecutionProvider', 'CPUExecutionProvider'] \
            if 'CUDAExecutionProvider' in available else ['CPUExecutionProvider']
    kind = str(device).split(':')[0]
    if kind == 'cpu':
        return ['CPUExecutionProvider']
    if kind == 'cuda':
        if 'CUDAExecutionProvider' not in available:
            raise InvalidArgumentError('device', f'{device!r}: this onnxruntime has no CUDA '
                                       f'provider ({", ".join(available)}); install '
                                       'onnxruntime-gpu or use cpu')
        return ['CUDAExecutionProvider', 'CPUExecutionProvider']
    raise InvalidArgumentError('device', f'{device!r}: an ONNX model runs on cpu or cuda')


def open_session(onnx_path: str, providers: Sequence[str], threads: int = 0):
    """An onnxruntime ``InferenceSession`` of ``onnx_path`` (``threads`` intra-op
    threads; 0: onnxruntime's default).

    Raises:
        DataError: the file is not an ONNX model onnxruntime can load.
    """
    ort = require_onnxruntime()
    check_regular_file(onnx_path, 'ONNX model')
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: no notices on every run
    if threads:
        options.intra_op_num_threads = int(threads)
    try:
        return ort.InferenceSession(onnx_path, options, providers=list(providers))
    except Exception as exc:  # noqa: BLE001  (onnxruntime raises its own kinds)
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ''
        raise DataError(f'{onnx_path}: onnxruntime cannot load it ({type(exc).__name__}'
                        f'{": " + first if first else ""})') from None


def declared_classes(session) -> Optional[int]:
    """The class dimension the graph declares for ``probs`` (None: not fixed)."""
    outputs = {o.name: o for o in session.get_outputs()}
    out = outputs.get(PROBS_NAME) or session.get_outputs()[0]
    shape = out.shape
    return shape[1] if len(shape) == 4 and isinstance(shape[1], int) else None


def build_preprocessor(preprocess: Dict[str, Any]):
    """The stock ``SegDataPreProcessor`` the sidecar describes (normalise, channel order,
    test-time padding), in eval mode."""
    from mmseg.models.data_preprocessor import SegDataPreProcessor
    return SegDataPreProcessor(mean=preprocess.get('mean'), std=preprocess.get('std'),
                               pad_val=preprocess.get('pad_val', 0),
                               seg_pad_val=preprocess.get('seg_pad_val', 255),
                               bgr_to_rgb=bool(preprocess.get('bgr_to_rgb', False)),
                               rgb_to_bgr=bool(preprocess.get('rgb_to_bgr', False)),
                               test_cfg=preprocess.get('test_cfg') or None).eval()


class OnnxSegmentor:
    """The part of a segmentor :class:`~.predictor.ProbabilityPredictor` uses
    (``test_step``, ``multi_label``, ``eval``, ``to``), run by onnxruntime.

    Args:
        session: an onnxruntime ``InferenceSession`` of the exported graph.
        sidecar: its checked sidecar (:func:`read_sidecar`).
        path: the ONNX file, for messages.
    """

    def __init__(self, session, sidecar: Dict[str, Any], path: str):
        self.session = session
        self.sidecar = sidecar
        self.path = path
        self.multi_label = bool(sidecar['multi_label'])
        self.align_corners = bool(sidecar['align_corners'])
        self.logit_channels = int(sidecar['logit_channels'])
        self.data_preprocessor = build_preprocessor(sidecar['preprocess'])
        export = sidecar.get('export')
        predict_with = export.get('predict_with') if isinstance(export, dict) else None
        # the network of a training wrapper that was exported (views_hash reads it)
        self.predict_with = predict_with if isinstance(predict_with, str) else None
        shape = sidecar['input_shape']  # [N, 3, H, W], None where dynamic
        self.fixed_size = tuple(shape[2:]) if all(isinstance(v, int) for v in shape[2:]) \
            else None
        #: the config's ``model.test_cfg`` (set by :func:`onnx_model_for_config`):
        #: ``mode='slide'`` runs the graph on ``crop_size`` windows ``stride`` apart,
        #: as the torch segmentor does
        self.test_cfg: Dict[str, Any] = {}

    def eval(self) -> OnnxSegmentor:
        return self

    def to(self, device) -> OnnxSegmentor:  # noqa: ARG002  (the session has its providers)
        return self

    def run(self, inputs: np.ndarray) -> np.ndarray:
        """``(N, C', H, W)`` logits of a preprocessed float32 ``(N, 3, H, W)`` batch."""
        if self.fixed_size is not None and tuple(inputs.shape[2:]) != self.fixed_size:
            raise ValueError(f'{self.path}: a {inputs.shape[2]}x{inputs.shape[3]} batch '
                             f'for a graph of {self.fixed_size[0]}x{self.fixed_size[1]}')
        logits = self.session.run([LOGITS_NAME], {INPUT_NAME: inputs})[0]
        if logits.ndim != 4 or logits.shape[1] != self.logit_channels:
            raise DataError(f'{self.path}: the model output has shape {logits.shape}; its '
                            f'sidecar expects {self.logit_channels} channels')
        return logits

    def run_slide(self, inputs: np.ndarray) -> np.ndarray:
        """``(N, C', H, W)`` logits of a preprocessed ``(N, 3, H, W)`` batch from windows
        of ``test_cfg.crop_size`` every ``test_cfg.stride`` pixels, averaged where they
        overlap (the windows of mmseg's ``slide_inference``: the last one in each
        direction ends at the border; a window larger than the image is the image)."""
        crop, stride = self.test_cfg.get('crop_size'), self.test_cfg.get('stride')
        h_crop, w_crop = (int(v) for v in crop)
        h_stride, w_stride = (int(v) for v in stride)
        n, _, height, width = inputs.shape
        summed = np.zeros((n, self.logit_channels, height, width), np.float32)
        count = np.zeros((1, 1, height, width), np.float32)
        rows = max(height - h_crop + h_stride - 1, 0) // h_stride + 1
        cols = max(width - w_crop + w_stride - 1, 0) // w_stride + 1
        for row in range(rows):
            for col in range(cols):
                y2 = min(row * h_stride + h_crop, height)
                x2 = min(col * w_stride + w_crop, width)
                y1, x1 = max(y2 - h_crop, 0), max(x2 - w_crop, 0)
                window = self._window_logits(inputs[:, :, y1:y2, x1:x2])
                summed[:, :, y1:y2, x1:x2] += window
                count[:, :, y1:y2, x1:x2] += 1
        return summed / count

    def _window_logits(self, window: np.ndarray) -> np.ndarray:
        """Logits of one window at its own size (a fixed-size graph runs only windows
        of its size: :func:`_slide_settings` checks the crop, this the image)."""
        height, width = window.shape[2:]
        if self.fixed_size is not None and (height, width) != self.fixed_size:
            # the torch segmentor runs an image smaller than the crop as it is; padding
            # it to the graph's size would change the probabilities
            raise DataError(f'{self.path}: exported for {self.fixed_size[0]}x'
                            f'{self.fixed_size[1]} inputs; an image of {height}x{width} '
                            'is smaller than the slide window, and the graph cannot run it '
                            'at its own size (export without a fixed shape)')
        logits = self.run(np.ascontiguousarray(window))
        if logits.shape[2:] != window.shape[2:]:
            logits = torch.nn.functional.interpolate(
                torch.from_numpy(logits), size=window.shape[2:], mode='bilinear',
                align_corners=self.align_corners).numpy()
        return logits

    @torch.no_grad()
    def test_step(self, data: Dict[str, Any]) -> list:
        """Samples with ``seg_logits`` at each sample's ``ori_shape``, as the torch
        segmentor's ``test_step`` gives them (a stock one-channel binary head: the
        sigmoid applied, as its ``postprocess_result`` does)."""
        from mmengine.structures import PixelData

        from ..models.segmentors.postprocess import logits_to_original
        if self.fixed_size is not None:  # padding to the size cannot shrink an image
            for image in data['inputs']:
                if image.shape[-2] > self.fixed_size[0] or image.shape[-1] > self.fixed_size[1]:
                    raise DataError(f'{self.path}: exported for inputs of at most '
                                    f'{self.fixed_size[0]}x{self.fixed_size[1]}; the test '
                                    f'pipeline gives {image.shape[-2]}x{image.shape[-1]} '
                                    '(export without a fixed shape, or at this size)')
        data = self.data_preprocessor(data, False)
        inputs = data['inputs'].float().contiguous().numpy()
        if self.test_cfg.get('mode', 'whole') == 'slide':
            logits = torch.from_numpy(self.run_slide(inputs))
        else:
            logits = torch.from_numpy(self.run(inputs))
        samples = data['data_samples']
        for i, sample in enumerate(samples):
            out = logits_to_original(logits[i:i + 1], sample.metainfo, self.align_corners)
            if not self.multi_label and out.shape[0] == 1:
                out = out.sigmoid()
            sample.set_data({'seg_logits': PixelData(data=out)})
        return samples


def _same(a, b) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True,
                                                                    default=str)


def check_sidecar_fits(sidecar: Dict[str, Any], classes: Sequence[str], multi_label: bool,
                       preprocess: Dict[str, Any], onnx_path: str, config: str,
                       test_resize: Optional[Dict[str, Any]] = None) -> None:
    """Refuse a model exported from another config than ``config``: other class names,
    another task, other input preprocessing (normalisation, channel order, pad value), or
    another test resize (``test_resize``: the config's first resize step,
    :func:`~mmseg_ext.datasets.transforms.pipeline_geometry.first_resize`), the scale the
    export was verified at.

    Raises:
        CheckpointError: naming the first difference.
    """
    where = f'{onnx_path}: exported from another config than {config}'
    if list(sidecar['classes']) != list(classes):
        raise CheckpointError(f'{where} (classes {sidecar["classes"][:3]}... against '
                              f'{list(classes)[:3]}...)')
    if bool(sidecar['multi_label']) != bool(multi_label):
        raise CheckpointError(f'{where} (multi-label {sidecar["multi_label"]}, the config '
                              f'{multi_label})')
    for key in ('mean', 'std', 'bgr_to_rgb', 'rgb_to_bgr', 'pad_val'):
        if not _same(sidecar['preprocess'].get(key), preprocess.get(key)):
            raise CheckpointError(f'{where} (data_preprocessor {key} '
                                  f'{sidecar["preprocess"].get(key)} against '
                                  f'{preprocess.get(key)})')
    exported = sidecar.get('test_resize')
    if not _same(exported, test_resize):
        raise CheckpointError(f'{where} (test resize {json.dumps(exported, default=str)} '
                              f'at export, the config {json.dumps(test_resize, default=str)})'
                              '; export it again from this config, or infer with the '
                              'config it was exported from')


def preprocess_of(data_preprocessor) -> Dict[str, Any]:
    """What the sidecar records of a built ``SegDataPreProcessor``: mean, std (None when
    it does not normalise), channel order, padding values and its test-time padding
    (``test_cfg``: ``size`` / ``size_divisor``)."""
    dp = data_preprocessor
    normalise = bool(getattr(dp, '_enable_normalize', False))
    channel_swap = bool(getattr(dp, '_channel_conversion', False))
    test_cfg = dict(getattr(dp, 'test_cfg', None) or {})
    for key in ('size',):
        if test_cfg.get(key) is not None:
            test_cfg[key] = [int(v) for v in test_cfg[key]]
    def values(t: torch.Tensor) -> List[float]:  # float32 written as it prints (123.675)
        return [float(str(np.float32(v))) for v in t.view(-1).tolist()]

    return dict(
        mean=values(dp.mean) if normalise else None,
        std=values(dp.std) if normalise else None,
        bgr_to_rgb=channel_swap, rgb_to_bgr=False,
        pad_val=float(getattr(dp, 'pad_val', 0)),
        seg_pad_val=int(getattr(dp, 'seg_pad_val', 255)),
        test_cfg=test_cfg or None)


def load_onnx_segmentor(onnx_path: str, device: Optional[str] = None, threads: int = 0
                        ) -> Tuple[OnnxSegmentor, Dict[str, Any]]:
    """Open an exported model after checking its sidecar and its bytes.

    The checks come in the order that names the problem best: the sidecar (present,
    not edited), the class count the graph declares against the sidecar's, then the
    file's digest.

    Raises:
        EnvironmentCheckError: onnxruntime is not installed.
        DataError: see :func:`read_sidecar`, :func:`check_onnx_file`, :func:`open_session`.
        InvalidArgumentError: of ``device`` (:func:`onnx_providers`).
    """
    providers = onnx_providers(device)
    check_regular_file(onnx_path, 'ONNX model')
    sidecar = read_sidecar(onnx_path)
    session = open_session(onnx_path, providers, threads)
    check_onnx_file(onnx_path, sidecar, declared_classes(session))
    names = {o.name for o in session.get_outputs()}
    if LOGITS_NAME not in names or INPUT_NAME not in {i.name for i in session.get_inputs()}:
        raise DataError(f'{onnx_path}: the graph has no {INPUT_NAME!r} input or no '
                        f'{LOGITS_NAME!r} output (not exported by mmseg_ext)')
    return OnnxSegmentor(session, sidecar, onnx_path), sidecar


def onnx_model_for_config(cfg, onnx_path: str, config: str = 'the config',
                          device: Optional[str] = None,
                          config_classes: Optional[Sequence[str]] = None,
                          test_pipeline: Optional[Sequence[dict]] = None
                          ) -> Tuple[OnnxSegmentor, Tuple[str, ...]]:
    """The exported model at ``onnx_path`` and its class names, refused when it was
    exported from another config than ``cfg`` (:func:`check_sidecar_fits`: the class
    names ``config_classes`` the config's data sets give, when they give any, the task,
    the input preprocessing and the first resize of ``test_pipeline``, the config's).

    Raises:
        CheckpointError: exported from another config.
        DataError, EnvironmentCheckError, InvalidArgumentError: see
            :func:`load_onnx_segmentor`.
    """
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    from ..config.tta import is_multi_label_config
    model, sidecar = load_onnx_segmentor(onnx_path, device)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    dp_cfg = cfg.model.get('data_preprocessor') or cfg.get('data_preprocessor')
    preprocess = preprocess_of(MODELS.build(dp_cfg)) if dp_cfg else {}
    from ..datasets.transforms.pipeline_geometry import first_resize
    check_sidecar_fits(sidecar, config_classes or sidecar['classes'],
                       is_multi_label_config(cfg.model), preprocess, onnx_path, config,
                       first_resize(test_pipeline))
    model.test_cfg = _slide_settings(cfg.model, config, model)
    return model, tuple(str(c) for c in sidecar['classes'])


def _slide_settings(model_cfg, config: str, model: OnnxSegmentor) -> Dict[str, Any]:
    """The ``test_cfg`` of the config's segmentor (inside a semi-supervised wrapper:
    its ``segmentor``'s) as the ONNX model runs it: ``mode`` ``'whole'`` or
    ``'slide'`` (checked by :func:`~mmseg_ext.config.checks.slide_problem`; a graph of a
    fixed input size slides only windows of that size).

    Raises:
        ConfigError: another mode, bad window sizes, or windows of another size than a
            fixed-shape export's.
    """
    from ..config.checks import slide_problem
    from ..utils.errors import ConfigError
    inner = model_cfg
    while isinstance(inner.get('segmentor'), dict):
        inner = inner['segmentor']
    settings = dict(inner.get('test_cfg') or {})
    mode = settings.get('mode', 'whole')
    if mode not in ('whole', 'slide'):
        raise ConfigError(f'{config}: model.test_cfg.mode is {mode!r}; an ONNX model runs '
                          "'whole' or 'slide'")
    problem = slide_problem(settings)
    if problem:
        raise ConfigError(f'{config}: model.test_cfg.{problem}')
    if mode == 'slide' and model.fixed_size is not None \
            and tuple(settings['crop_size']) != tuple(model.fixed_size):
        raise ConfigError(f'{model.path}: exported for {model.fixed_size[0]}x'
                          f'{model.fixed_size[1]} inputs, so it slides only windows of that '
                          f'size (the config\'s crop_size is {tuple(settings["crop_size"])}); '
                          'export without a fixed shape, or at the crop size')
    return settings
