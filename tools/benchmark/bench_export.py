"""Every shipped config exported to ONNX and run by both backends on the same images.

    python tools/benchmark/bench_export.py [CONFIG ...] [--images 3] [--size 360 480]
        [--threads 1] [--full-size] [--markdown]

For each config under ``custom_configs/`` (default: all): the model is built with random
weights (no pretrained file; the large backbones scaled down as the test suite scales
them, ``tests/config_smoke.py``, unless ``--full-size``), its last layer scaled up so that
its probabilities spread as a trained model's do, saved as a checkpoint and exported by
``tools/export.py``'s own function; then ``tools/inference.py``'s predictor runs the
checkpoint (torch) and the ``.onnx`` (onnxruntime) on the same random images. Printed per
config: the max absolute difference of the probabilities, the Dice between the
thresholded masks (multi-label: ``p > 0.5`` per class; multi-class: the argmax, one mask
per class; pooled over classes and images), and the CPU milliseconds per image of each
backend (image to probabilities at the model's size, the fastest of 2 passes after a
warm-up), with ``--threads`` threads each. Configs whose model is the same after scaling
(the same ``model`` and test pipeline) are measured once and share the row's figures.
A config that cannot be exported gets the one-line reason instead.
"""
import argparse
import contextlib
import glob
import io
import json
import os.path as osp
import sys
import tempfile
import time

import _common  # noqa: F401  (import path)

from mmseg_ext.utils.cli import number_in_range  # noqa: E402

REPO = _common.ROOT
sys.path.insert(0, osp.join(REPO, 'tests'))

#: scaled-down backbones by backbone type (the keys of tests/config_smoke.SHRINK)
SHRINK_BY_BACKBONE = {'BEiT': 'beit', 'SwinTransformer': 'swin', 'HRNet': 'hrnet'}


def shipped_configs():
    root = osp.join(REPO, 'custom_configs')
    return sorted(osp.relpath(p, root) for p in glob.glob(osp.join(root, '**', '*.py'),
                                                           recursive=True)
                  if '_base_' not in p)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('configs', nargs='*', help='configs under custom_configs/ (default: all)')
    p.add_argument('--images', type=number_in_range(int, 1), default=3)
    p.add_argument('--size', nargs=2, type=number_in_range(int, 8, 4096), default=(360, 480),
                   metavar=('H', 'W'), help='random image size before the test pipeline')
    p.add_argument('--threads', type=number_in_range(int, 1), default=1)
    p.add_argument('--full-size', action='store_true', help='the backbones as configured')
    p.add_argument('--markdown', action='store_true', help='print a Markdown table')
    return p.parse_args(argv)


def cfg_options(config, full_size):
    """The ``--cfg-options`` that build ``config`` bare and (unless ``full_size``) small."""
    from config_smoke import SHRINK

    from mmseg_ext.config.loading import read_config
    cfg = read_config(config)
    model = cfg.get('model') or {}
    backbone = (model.get('backbone') or {}).get('type')
    options = {}
    if backbone == 'TimmEncoder':
        options['model.backbone.pretrained'] = False
    if model.get('pretrained') is not None:
        options['model.pretrained'] = None
    if not full_size:
        if backbone in SHRINK_BY_BACKBONE:
            options.update(SHRINK[SHRINK_BY_BACKBONE[backbone]])
        elif backbone == 'ResNetV1c' and (model.get('backbone') or {}).get('depth') == 101:
            options.update(SHRINK['resnet'])
    return options


def model_key(config, options):
    from mmseg_ext.config.loading import read_config
    from mmseg_ext.config.tta import config_test_pipeline
    cfg = read_config(config)
    cfg.merge_from_dict(options)
    return json.dumps([cfg.get('model'), config_test_pipeline(cfg)], sort_keys=True,
                      default=str)


def masks(probs, multi_label):
    import numpy as np
    if multi_label:
        return probs > 0.5
    return np.eye(probs.shape[0], dtype=bool)[probs.argmax(0)].transpose(2, 0, 1)


def write_checkpoint(config, path, options):
    """Random weights of ``config``'s model (scaled by ``options``), the last layer
    times 32 (as tests/export does: a random head puts most probabilities near 0.5)."""
    import torch

    from mmseg_ext.config.loading import load_config
    from mmseg_ext.config.model import build_bare_model
    torch.manual_seed(0)
    state = build_bare_model(load_config(config, options)).state_dict()
    for key in state:
        if 'conv_seg' in key:
            state[key] = state[key] * 32
    torch.save({'state_dict': state, 'meta': {}}, path)


def time_per_image(predictor, images):
    predictor.predict(images[0])  # warm-up
    best = float('inf')
    for _ in range(2):
        start = time.perf_counter()
        for img in images:
            predictor.predict(img)
        best = min(best, (time.perf_counter() - start) / len(images))
    return best * 1000


def _reason(exc, config):
    text = str(exc)
    return text.split(': ', 1)[1] if text.startswith(config) else text


def fixed_shape(config, options, image):
    """The size ``image`` has after ``config``'s test pipeline and its test-time padding
    (None when the config has no test pipeline)."""
    import cv2

    from mmseg_ext.config.loading import load_config
    from mmseg_ext.config.tta import config_test_pipeline
    from mmseg_ext.datasets.transforms.pipeline_geometry import resized_shape
    cfg = load_config(config, options)
    pipeline = config_test_pipeline(cfg)
    if not pipeline:
        return None
    h, w = resized_shape(pipeline, cv2.imread(image).shape[:2])
    test_cfg = (cfg.model.get('data_preprocessor') or {}).get('test_cfg') or {}
    step = int(test_cfg.get('size_divisor') or 1)
    return -(-h // step) * step, -(-w // step) * step


def run_config(config, options, images, work, threads):
    """``dict(diff, dice, torch_ms, onnx_ms, classes, task)`` or ``dict(reason=...)``."""
    import numpy as np
    import torch

    from mmseg_ext.export.onnx_export import export_onnx
    from mmseg_ext.inference.onnx_backend import open_session
    from mmseg_ext.inference.predictor import build_predictor
    from mmseg_ext.utils.errors import MmsegExtError
    name = osp.splitext(osp.basename(config))[0]
    ckpt = osp.join(work, f'{name}.pth')
    onnx = osp.join(work, f'{name}.onnx')
    shape, note = None, ''
    try:
        write_checkpoint(config, ckpt, options)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                summary = export_onnx(config, ckpt, onnx, cfg_options=options, force=True)
        except MmsegExtError as exc:
            shape = fixed_shape(config, options, images[0])
            if 'differs from torch' not in str(exc) or shape is None:
                raise
            # a dynamic-size graph that is wrong at an untraced size: the size of these
            # images after the test pipeline, fixed (tools/export.py --shape H W)
            note = f'; dynamic size refused ({_reason(exc, config)}), exported --shape ' \
                f'{shape[0]} {shape[1]}'
            with contextlib.redirect_stdout(io.StringIO()):
                summary = export_onnx(config, ckpt, onnx, shape=shape, cfg_options=options,
                                      force=True)
    except (MmsegExtError, ImportError) as exc:
        return dict(reason=_reason(exc, config) + note)
    except Exception as exc:  # noqa: BLE001  (a model the tools cannot build either)
        first = (str(exc).strip().splitlines() or [''])[0][:200]
        return dict(reason=f'the model does not build bare ({type(exc).__name__}: {first})')
    torch.set_num_threads(threads)
    torch_p = build_predictor(config, ckpt, device='cpu', cfg_options=options)
    onnx_p = build_predictor(config, onnx, device='cpu', cfg_options=options)
    onnx_p.model.session = open_session(onnx, ['CPUExecutionProvider'], threads)
    diff, inter, total = 0.0, 0, 0
    for img in images:
        a, _ = torch_p.predict(img)
        b, _ = onnx_p.predict(img)
        diff = max(diff, float(np.abs(a - b).max()))
        ma, mb = masks(a, torch_p.multi_label), masks(b, torch_p.multi_label)
        inter += int((ma & mb).sum())
        total += int(ma.sum() + mb.sum())
    return dict(diff=diff, dice=2 * inter / total if total else 1.0, note=note,
                torch_ms=time_per_image(torch_p, images),
                onnx_ms=time_per_image(onnx_p, images), classes=summary.classes,
                task=summary.task, export_s=summary.seconds)


def main(argv=None):
    args = parse_args(argv)
    import cv2
    import numpy as np
    import torch

    from mmseg_ext import register_all_modules
    register_all_modules()
    torch.set_num_threads(args.threads)
    configs = args.configs or shipped_configs()
    with tempfile.TemporaryDirectory(prefix='bench_export_') as work:
        rng = np.random.default_rng(0)
        images = []
        for i in range(args.images):
            path = osp.join(work, f'img{i}.png')
            cv2.imwrite(path, rng.integers(0, 256, (*args.size, 3), np.uint8))
            images.append(path)
        done, rows = {}, []
        for name in configs:
            config = osp.join(REPO, 'custom_configs', name)
            options = cfg_options(config, args.full_size)
            key = model_key(config, options)
            if key not in done:
                start = time.perf_counter()
                done[key] = run_config(config, options, images, work, args.threads)
                done[key]['wall_s'] = time.perf_counter() - start
                first = True
            else:
                first = False
            rows.append((name, done[key], first))
            print(_line(name, done[key], first, args.markdown, len(rows) == 1,
                        args.threads), flush=True)


def _line(name, r, first, markdown, header, threads):
    same = '' if first else ' (same model as above)'
    if markdown:
        head = ('| config | exported | max abs diff | mask Dice | torch ms/img | '
                'onnxruntime ms/img | ratio |\n|---|---|---|---|---|---|---|\n'
                if header else '')
        if 'reason' in r:
            return f'{head}| `{name}` | no: {r["reason"]} | | | | | |'
        return (f'{head}| `{name}` | yes{same}{r["note"]} | {r["diff"]:.1e} | {r["dice"]:.6f} | '
                f'{r["torch_ms"]:.1f} | {r["onnx_ms"]:.1f} | '
                f'{r["onnx_ms"] / r["torch_ms"]:.2f} |')
    if 'reason' in r:
        return f'{name}: not exported: {r["reason"]}'
    return (f'{name}: {r["classes"]} classes ({r["task"]}), max |dp| {r["diff"]:.1e}, '
            f'mask Dice {r["dice"]:.6f}, torch {r["torch_ms"]:.1f} ms/img, onnxruntime '
            f'{r["onnx_ms"]:.1f} ms/img (x{r["onnx_ms"] / r["torch_ms"]:.2f}), '
            f'{threads} thread(s){same}{r["note"]}; export + runs {r["wall_s"]:.0f} s')


if __name__ == '__main__':
    main()
