"""Checkpoint -> probability files (``tools/inference.py``).

The model and its test pipeline come from the config, as ``tools/test.py`` would build
them; annotation loaders are removed from the pipeline so unlabelled test images work.
Each image runs through the segmentor's own ``test_step`` (its data preprocessor, its
``postprocess_result``: padding removed, flips undone, logits resized bilinearly), and the
logits become probabilities:

* multi-label segmentors (class attribute ``multi_label = True``): ``sigmoid`` per class;
* multi-class: ``softmax`` over classes; a stock one-channel binary model (whose
  ``postprocess_result`` already applies the sigmoid) becomes ``[1 - p, p]``.

Output size: the segmentor resizes its logits to the sample's ``ori_shape``; this module
sets that to the requested size before ``test_step``, so the logits are resized once, by
the model, bilinearly: ``native`` (default) = the test pipeline's resized image
(``img_shape``, the model's input resolution), ``original`` = the image's size, or a
fixed ``(H, W)``.

``tta=True`` builds the views with the config's ``tta_pipeline`` (checked by
:func:`~.tta.check_tta_config`) and averages their probabilities (mmseg's
``SegTTAModel`` averages the same softmax/sigmoid values but keeps only the argmax);
``native`` is then the size the *test* pipeline gives the image, whatever the views'.
"""
from __future__ import annotations

import copy
import logging
import os.path as osp
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.logging import print_log
from tqdm import tqdm

from ..config.checks import check_checkpoint_classes, check_test_cfg_classes
from ..config.model import build_bare_model
from ..config.tta import (
    check_tta_config,
    config_classes,
    config_datasets,
    config_test_pipeline,
)
from ..datasets.transforms.pipeline_geometry import pipeline_errors, resized_shape
from ..io.images import IMG_SUFFIXES, list_images, parse_size, skipped_note
from ..io.paths import check_output_apart, file_sha256
from ..io.probs import ProbFolderWriter
from ..models.segmentors.postprocess import set_class_names
from ..models.segmentors.seg_tta import unswap_flipped
from ..utils.errors import ConfigError, DataError, InvalidArgumentError

OutSize = Union[str, Tuple[int, int]]


#: largest stored probability map per side: (C, 16384, 16384) float32 is already 1 GiB
#: a class; a larger request is a typo, not a plan, and would fail deep in an allocation
MAX_OUT_SIDE = 16384


def parse_out_size(text: str) -> OutSize:
    """``native`` | ``original`` | ``H,W`` / ``HxW`` / ``N`` (square) -> size spec
    (each side 1..:data:`MAX_OUT_SIDE`)."""
    text = text.strip().lower()
    if text in ('native', 'original'):
        return text
    nums = parse_size(text)
    if nums is None or min(nums) < 1:
        raise InvalidArgumentError('out_size', f'{text!r}: expected native, original, H,W '
                                   'or N')
    if max(nums) > MAX_OUT_SIDE:
        raise InvalidArgumentError('out_size', f'{text!r}: at most {MAX_OUT_SIDE} pixels a '
                                   'side')
    return nums[0], nums[1]


def resolve_device(device: Optional[str] = None) -> str:
    """The torch device to run on: ``device`` when torch has it here, else (``None``)
    ``cuda:0`` when a GPU is visible and ``cpu`` otherwise.

    Raises:
        InvalidArgumentError: of ``device``: not a device string torch knows, a CUDA
            device on a machine where torch sees none, or an index past the last GPU.
    """
    if device is None:
        return 'cuda:0' if torch.cuda.is_available() else 'cpu'
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise InvalidArgumentError('device', f'{device!r} is not a torch device (cpu, '
                                   'cuda, cuda:N)') from None
    if dev.type == 'cuda':
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise InvalidArgumentError('device', f'{device!r}: torch sees no CUDA GPU on '
                                       'this machine; use cpu')
        if dev.index is not None and dev.index >= count:
            raise InvalidArgumentError('device', f'{device!r}: this machine has {count} '
                                       f'GPU(s), cuda:0..cuda:{count - 1}')
    elif dev.type != 'cpu':
        raise InvalidArgumentError('device', f'{device!r}: only cpu and cuda devices are '
                                   'supported')
    return str(dev)


def _drop_annotation_loaders(pipeline: List) -> List:
    """Copy of a pipeline without transforms that load ground truth (any ``type`` whose
    name contains ``Annotation``), also inside ``TestTimeAug``'s transform lists."""
    out = []
    for t in pipeline:
        t = copy.deepcopy(t)
        kind = t.get('type', '') if isinstance(t, dict) else ''
        if isinstance(kind, str) and 'annotation' in kind.lower():
            continue
        if kind == 'TestTimeAug':
            groups = [_drop_annotation_loaders(list(g)) for g in t['transforms']]
            t['transforms'] = [g for g in groups if g]
        out.append(t)
    return out


def _is_multi_label(model) -> bool:
    return bool(getattr(type(model), 'multi_label', False) or
                getattr(model, 'multi_label', False))


class ProbabilityPredictor:
    """A segmentor and its test (or TTA) pipeline, producing class probabilities.

    Args:
        model: a built segmentor in eval mode (``BaseSegmentor``), weights loaded.
        pipeline: test pipeline config (list of transform dicts); annotation loaders are
            dropped. With ``tta=True``, the ``tta_pipeline`` (a ``TestTimeAug`` inside).
        classes: class names, one per output channel.
        tta: whether ``pipeline`` yields several views per image.
        test_pipeline: with ``tta``, the config's test pipeline: its resizing steps give
            the ``native`` output size (the views are at other scales).
        flip_swap_pairs: channel index pairs a horizontal flip exchanges (the data
            set's ``flip_swap_classes``): swapped back in flipped TTA views.
    """

    def __init__(self, model, pipeline: Sequence[dict], classes: Sequence[str],
                 tta: bool = False, test_pipeline: Optional[Sequence[dict]] = None,
                 flip_swap_pairs: Sequence[Tuple[int, int]] = ()):
        from mmengine.dataset import Compose
        self.model = model
        self.pipeline = Compose(_drop_annotation_loaders(list(pipeline)))
        self.test_pipeline = list(test_pipeline) if test_pipeline else None
        self.flip_swap_pairs = tuple(tuple(p) for p in flip_swap_pairs)
        self.classes = tuple(classes)
        self.tta = tta
        self.multi_label = _is_multi_label(model)
        self.task = 'multi-label' if self.multi_label else 'multi-class'

    def _views(self, img_path: str) -> List[Tuple[torch.Tensor, object]]:
        with pipeline_errors(img_path):  # a 1xN image that a resize rounds to 0 rows
            data = self.pipeline(dict(img_path=img_path))
        if data is None:
            raise DataError(f'{img_path}: the test pipeline dropped the image')
        inputs, samples = data['inputs'], data['data_samples']
        if isinstance(inputs, (list, tuple)):
            return list(zip(inputs, samples))
        return [(inputs, samples)]

    def _to_probs(self, logits: torch.Tensor, where: str) -> torch.Tensor:
        logits = logits.float()
        n = logits.shape[0]
        if self.multi_label:
            probs = logits.sigmoid()
        elif n == 1 and len(self.classes) == 2:
            # stock one-channel binary head: postprocess_result already applied sigmoid
            probs = torch.cat([1 - logits, logits], dim=0)
        else:
            probs = logits.softmax(dim=0)
        if probs.shape[0] != len(self.classes):
            raise DataError(f'{where}: the model outputs {probs.shape[0]} channels for '
                            f'{len(self.classes)} classes {list(self.classes)}')
        return probs

    def _target(self, img_path: str, views, out_size: OutSize) -> Tuple[int, int]:
        ori_shape = tuple(int(v) for v in views[0][1].ori_shape[:2])
        if out_size == 'original':
            return ori_shape
        if out_size == 'native' and self.tta and self.test_pipeline:
            with pipeline_errors(img_path):
                return resized_shape(self.test_pipeline, ori_shape)
        if out_size == 'native':
            shapes = [tuple(int(v) for v in s.img_shape[:2]) for _, s in views]
            return max(shapes, key=lambda s: s[0] * s[1])
        return int(out_size[0]), int(out_size[1])

    @torch.no_grad()
    def predict_views(self, img_path: str, out_size: OutSize = 'native'
                      ) -> Tuple[List[torch.Tensor], List[dict], Tuple[int, int]]:
        """Each view's ``(C, h, w)`` probabilities (flips undone, lateral channels
        swapped back), in the order the pipeline yields the views (``TestTimeAug``: the
        product of its branches, the first branch varying slowest), with each view's
        metainfo and the image's original ``(H, W)``."""
        views = self._views(img_path)
        ori_shape = tuple(int(v) for v in views[0][1].ori_shape[:2])
        target = self._target(img_path, views, out_size)
        out, metas = [], []
        for inputs, sample in views:
            sample.set_metainfo({'ori_shape': target})
            result = self.model.test_step(dict(inputs=[inputs], data_samples=[sample]))[0]
            logits = result.seg_logits.data
            if logits.dim() == 2:
                logits = logits[None]
            if tuple(logits.shape[-2:]) != target:  # a segmentor that ignores ori_shape
                logits = F.interpolate(logits[None].float(), size=target, mode='bilinear',
                                       align_corners=False)[0]
            probs = self._to_probs(logits, img_path)
            if self.flip_swap_pairs:
                probs = unswap_flipped(probs, {**sample.metainfo,
                                               'flip_swap_pairs': self.flip_swap_pairs})
            out.append(probs)
            metas.append(dict(sample.metainfo))
        return out, metas, ori_shape

    def predict(self, img_path: str, out_size: OutSize = 'native'
                ) -> Tuple[np.ndarray, Tuple[int, int]]:
        """``((C, h, w) float32 probabilities, original (H, W))`` of one image file."""
        views, _, ori_shape = self.predict_views(img_path, out_size)
        acc = views[0].clone()
        for probs in views[1:]:
            acc += probs
        acc /= len(views)
        return acc.cpu().numpy(), ori_shape


#: where a tool that predicts looks for class names first
TEST_FIRST = ('test_dataloader', 'val_dataloader', 'train_dataloader')


def _classes_of(model, cfg, checkpoint: dict, path: str = 'the checkpoint',
                config: str = 'the config') -> Tuple[str, ...]:
    """The checkpoint's class names (its list checked against ``model``), else the
    config's.

    Raises:
        ConfigError: neither names any (the message names ``config`` and ``path``, the
            checkpoint, and the setting that gives them, as ``tools/test.py`` does)."""
    from ..utils.checkpoint import checkpoint_class_names
    classes = checkpoint_class_names(checkpoint, path, model) \
        or config_classes(cfg, TEST_FIRST)
    if not classes:
        raise ConfigError(f'{config}: test_dataloader.dataset names no classes, and '
                          f'{path} does not either (meta.dataset_meta.classes), so the '
                          'probabilities cannot be named: set '
                          'test_dataloader.dataset.metainfo.classes')
    return tuple(str(c) for c in classes)


def flip_swap_pairs_of(cfg: Config, classes: Sequence[str], config: str = 'the config'
                       ) -> Tuple[Tuple[int, int], ...]:
    """Channel index pairs of the ``flip_swap_classes`` a data set of ``cfg`` names in
    its metainfo (the test set's first), resolved against ``classes``.

    Raises:
        ConfigError: a name that is not a class.
    """
    from ..utils.class_names import class_pair_indices
    for loader, dataset in config_datasets(cfg, TEST_FIRST):
        names = (dataset.get('metainfo') or {}).get('flip_swap_classes')
        if names:
            try:
                return class_pair_indices(names, classes,
                                          f'{config}: {loader}.dataset.metainfo'
                                          '.flip_swap_classes')
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
    return ()


def build_predictor(config: str, checkpoint: str, device: Optional[str] = 'cpu',
                    cfg_options: Optional[dict] = None, tta: bool = False,
                    tta_pipeline: Optional[Sequence[dict]] = None) -> ProbabilityPredictor:
    """Build the segmentor of ``config``, load ``checkpoint`` and the test pipeline.

    ``checkpoint`` may be an exported ``.onnx`` model (with its sidecar beside it,
    :mod:`.onnx_backend`): onnxruntime then runs it in place of the segmentor, with the
    same pipeline, views and output (``device`` None: CUDA when this onnxruntime has it).
    ``tta_pipeline`` (with ``tta``): these views instead of the config's TTA pipeline
    (the caller built them from the test pipeline and checked the config).

    The checkpoint's class list (``meta.dataset_meta.classes``) is checked when it is
    read (distinct names, one per class of the model: a
    :class:`~mmseg_ext.utils.errors.CheckpointError` naming the checkpoint) and against
    the config's data set as ``tools/test.py`` checks it (a
    :class:`~mmseg_ext.utils.errors.ConfigError`), before any image is predicted."""
    from ..config.loading import load_config
    from ..utils.checkpoint import check_checkpoint_file, load_into_model
    from .onnx_backend import is_onnx_model, onnx_model_for_config
    check_checkpoint_file(checkpoint)
    cfg = load_config(config, cfg_options)
    check_test_cfg_classes(cfg, config, TEST_FIRST, cfg_options)
    if tta and tta_pipeline is None:
        check_tta_config(cfg, config)
    test_pipeline = config_test_pipeline(cfg)
    if is_onnx_model(checkpoint):
        named = config_classes(cfg, TEST_FIRST) or None
        model, classes = onnx_model_for_config(cfg, checkpoint, config, device, named,
                                               test_pipeline)
    else:
        model = build_bare_model(cfg)
        ckpt = load_into_model(model, checkpoint, config)
        model.cfg = cfg
        model.to(device)
        model.eval()
        classes = _classes_of(model, cfg, ckpt, checkpoint, config)
        # as tools/test.py: the checkpoint's classes are the config's data set's, in
        # order, when the config names any (else the checkpoint's are trusted)
        check_checkpoint_classes(cfg, ckpt, config, checkpoint, loaders=TEST_FIRST)
        # as mmseg.apis.init_model: thresholds by class name resolve against the
        # checkpoint's names (a test_cfg.classes in another order is refused)
        set_class_names(model, classes, config)
    if not test_pipeline and not tta:
        raise ConfigError(f'{config}: no test pipeline (test_dataloader.dataset.pipeline '
                          'or test_pipeline)')
    pipeline = (list(tta_pipeline) if tta_pipeline is not None else cfg.tta_pipeline) \
        if tta else test_pipeline
    return ProbabilityPredictor(model, pipeline, classes, tta=tta,
                                test_pipeline=test_pipeline,
                                flip_swap_pairs=flip_swap_pairs_of(cfg, classes, config))


@dataclass
class InferenceSummary:
    out_dir: str
    images: int
    classes: int
    task: str
    seconds: float


def infer_folder(predictor: ProbabilityPredictor, img_dir: str, out_dir: str,
                 out_size: OutSize = 'native', dtype: str = 'uint8', force: bool = False,
                 suffixes: Sequence[str] = IMG_SUFFIXES, source: Optional[Dict] = None,
                 compresslevel: int = 1, progress: bool = True,
                 images: Optional[Sequence[str]] = None,
                 tool: str = 'tools/inference.py') -> InferenceSummary:
    """Write one probability file per image under ``img_dir`` (recursive) to ``out_dir``.

    The folder appears only when every image is done (written under a temporary name,
    then renamed); ``force`` replaces an existing probability folder that ``tool`` (the
    name recorded in the folder's manifest) wrote, unchanged. ``images`` (paths relative
    to ``img_dir``) restricts the run to those images.
    """
    start = time.perf_counter()
    if images is None:
        skipped: List[str] = []
        images = list_images(img_dir, suffixes, skipped)
        note = skipped_note(img_dir, skipped, suffixes)
        if note:
            print_log(note, logger='current', level=logging.WARNING)
    else:
        images = list(images)
        absent = [rel for rel in images if not osp.isfile(osp.join(img_dir, rel))]
        if absent:
            raise DataError(f'{osp.join(img_dir, absent[0])}: image not found '
                            f'({len(absent)} of the {len(images)} listed images are absent)')
    if not images:
        raise DataError(f'{img_dir}: no images ({", ".join(suffixes)})')
    check_output_apart(out_dir, [img_dir], 'out_dir')
    with ProbFolderWriter(out_dir, predictor.classes, predictor.task, dtype=dtype,
                          source=source, force=force, compresslevel=compresslevel,
                          tool=tool) as w:
        for rel in tqdm(images, desc='inference', unit='img', disable=not progress):
            probs, ori_shape = predictor.predict(osp.join(img_dir, rel), out_size)
            w.write(probs, rel, ori_shape, img_sha256=file_sha256(osp.join(img_dir, rel)))
        w.commit()
    return InferenceSummary(out_dir, len(images), len(predictor.classes), predictor.task,
                            time.perf_counter() - start)
