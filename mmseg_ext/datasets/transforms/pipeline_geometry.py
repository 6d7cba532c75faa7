"""Where a test or TTA pipeline puts an image, computed without reading one.

Test-time augmentation only helps at the scale the model was trained and tested at:
``Resize(scale_factor=r)`` views must be ``r`` times the *test* scale, not ``r`` times
the original image. mmseg's stock ``tta_pipeline`` resizes the original image, so with a
``test_pipeline`` that resizes a 2048 px image to 512 its views are 1536-2560 px. This
module runs only the resizing steps of a pipeline config (any transform whose ``type``
contains ``Resize``) on a blank image of a given size and reports the shapes, so a
config can be checked before a model is built (:func:`tta_scale_mismatch`).

Shapes are ``(H, W)`` in pixels; a view is one path through ``TestTimeAug``'s branches.
"""
from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

Shape = Tuple[int, int]

#: image sizes ``(H, W)`` a TTA pipeline is checked at: a competition X-ray, a
#: landscape photo and a small frame, so a fixed resize scale cannot hide a mismatch
PROBE_SHAPES: Tuple[Shape, ...] = ((2048, 2048), (768, 1024), (180, 240))
#: a view may differ from ``ratio x test shape`` by this fraction (rounding, divisors)
RATIO_TOLERANCE = 0.05


def _type_name(step) -> str:
    kind = step.get('type', '') if isinstance(step, dict) else type(step).__name__
    return kind if isinstance(kind, str) else getattr(kind, '__name__', str(kind))


def is_resize_step(step) -> bool:
    """Whether a pipeline step changes the image size (``Resize``, ``RandomResize``,
    ``ResizeShortestEdge``, ``ResizeToMultiple``, ...)."""
    return 'resize' in _type_name(step).lower()


def first_resize(pipeline: Optional[Sequence]) -> Optional[Dict[str, Any]]:
    """The first resize step of a test pipeline as ``{type, scale, keep_ratio}`` (or
    ``scale_factor``; values as the config gives them), None when it does not resize.
    What an exported model's sidecar records and inference compares."""
    for step in pipeline or []:
        if isinstance(step, dict) and is_resize_step(step):
            keep = {k: step[k] for k in ('scale', 'scale_factor', 'keep_ratio') if k in step}
            return dict(type=_type_name(step), **keep)
    return None


def _apply_resizes(steps: Iterable, results: dict) -> dict:
    from mmseg.registry import TRANSFORMS
    for step in steps:
        if is_resize_step(step):
            transform = TRANSFORMS.build(dict(step)) if isinstance(step, dict) else step
            results = transform(results)
    return results


def _blank(shape: Shape) -> dict:
    h, w = int(shape[0]), int(shape[1])
    return dict(img=np.zeros((h, w, 3), np.uint8), img_shape=(h, w), ori_shape=(h, w))


def resized_shape(pipeline: Sequence, shape: Shape) -> Shape:
    """``(H, W)`` of an image of ``shape`` after the resizing steps of ``pipeline``
    (steps inside a ``TestTimeAug`` are not run)."""
    results = _apply_resizes([s for s in pipeline if _type_name(s) != 'TestTimeAug'],
                             _blank(shape))
    return tuple(int(v) for v in results['img'].shape[:2])


@dataclass
class TTAView:
    """One TTA view: the steps chosen in each ``TestTimeAug`` branch and its shape."""
    steps: Tuple[str, ...]
    shape: Shape


def _describe(step) -> str:
    if not isinstance(step, dict):
        return _type_name(step)
    args = ', '.join(f'{k}={v}' for k, v in step.items()
                     if k in ('scale', 'scale_factor', 'prob', 'direction'))
    return f'{_type_name(step)}({args})'


def tta_views(tta_pipeline: Sequence, shape: Shape) -> List[TTAView]:
    """Every view the ``TestTimeAug`` of ``tta_pipeline`` makes of an image of ``shape``,
    with the resizing steps before, inside and after it applied in order."""
    before: List = []
    after: List = []
    branches: List[List] = []
    for step in tta_pipeline:
        if _type_name(step) == 'TestTimeAug':
            branches = [list(b) for b in step['transforms']]
        elif branches:
            after.append(step)
        else:
            before.append(step)
    start = _apply_resizes(before, _blank(shape))
    views = []
    for combo in itertools.product(*branches) if branches else [()]:
        results = _apply_resizes([*combo, *after], dict(start))
        views.append(TTAView(tuple(_describe(s) for s in combo),
                             tuple(int(v) for v in results['img'].shape[:2])))
    return views


def tta_ratios(tta_pipeline: Sequence) -> Tuple[float, ...]:
    """The scale ratios a TTA pipeline names: the ``scale_factor`` of the resizing steps
    inside its ``TestTimeAug`` (``(1.0,)`` when it names none)."""
    ratios = set()
    for step in tta_pipeline:
        if _type_name(step) != 'TestTimeAug':
            continue
        for branch in step['transforms']:
            for t in branch:
                factor = t.get('scale_factor') if isinstance(t, dict) else None
                if is_resize_step(t) and factor is not None:
                    factors = factor if isinstance(factor, (tuple, list)) else [factor]
                    ratios.update(float(f) for f in factors)
    return tuple(sorted(ratios)) or (1.0,)


def _fits(view: Shape, test: Shape, ratio: float) -> bool:
    return all(abs(v - ratio * t) <= max(2.0, RATIO_TOLERANCE * ratio * t)
               for v, t in zip(view, test))


def _fmt(shape: Shape) -> str:
    return f'{shape[1]}x{shape[0]}'


def tta_scale_mismatch(test_pipeline: Sequence, tta_pipeline: Sequence,
                       probe_shapes: Sequence[Shape] = PROBE_SHAPES) -> Optional[str]:
    """Say how the TTA views miss the test scale, or ``None`` when every view is one of
    the named ratios (:func:`tta_ratios`) times the test pipeline's shape, for each of
    ``probe_shapes``. Sizes in the message are ``WxH``."""
    ratios = tta_ratios(tta_pipeline)
    for shape in probe_shapes:
        test = resized_shape(test_pipeline, shape)
        views = tta_views(tta_pipeline, shape)
        if any(not any(_fits(v.shape, test, r) for r in ratios) for v in views):
            sizes = sorted({v.shape for v in views}, key=lambda s: s[0] * s[1])
            seen = ', '.join(f'{_fmt(s)} ({s[0] / test[0]:.2f}x)' for s in sizes)
            return (f'for a {_fmt(shape)} image the test pipeline gives {_fmt(test)} but '
                    f'the TTA views are {seen} of it, while the TTA pipeline names the '
                    f'ratios {", ".join(f"{r:g}" for r in ratios)}; resize as the test '
                    'pipeline does before TestTimeAug (docs/multilabel_models.md, '
                    '"Test-time augmentation")')
    return None


#: an image whose long side is this many times its short side is "narrow": a keep-ratio
#: resize to a usual scale rounds its short side to 0 pixels
NARROW_RATIO = 256


@contextlib.contextmanager
def pipeline_errors(img_path: str) -> Iterator[None]:
    """Run a data pipeline on one image with its failures named: an OpenCV error (a
    keep-ratio ``Resize`` of a 1xN or Nx1 image rounds a side to 0 and ``cv2.resize``
    fails), or any other exception of a transform that is not a domain error, becomes
    one :class:`~mmseg_ext.utils.errors.DataFileError` naming the image and its size."""
    from ...io.images import image_size
    from ...utils.errors import DataFileError, MmsegExtError
    try:
        yield
    except (MmsegExtError, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001  (cv2.error, AssertionError, ValueError, ...)
        lines = str(exc).strip().splitlines()
        detail = f'{type(exc).__name__}: {lines[-1][:200]}' if lines else type(exc).__name__
        try:
            h, w = image_size(img_path)
        except MmsegExtError:
            raise DataFileError(f'{img_path}: the pipeline failed ({detail})') from None
        hint = ''
        if max(h, w) >= NARROW_RATIO * min(h, w):
            hint = ('; a keep-ratio resize rounds the short side of an image this narrow '
                    'to 0 pixels: crop or pad it to a less extreme aspect ratio')
        raise DataFileError(f'{img_path}: the pipeline cannot process this {h}x{w} (H x W) '
                            f'image ({detail}){hint}') from None
