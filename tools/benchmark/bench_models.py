"""The shipped model configs side by side: output stride, parameters, CPU forward time.

    python tools/benchmark/bench_models.py [CONFIG ...] [--size 512] [--repeat 3]
        [--threads N] [--markdown]

For each config (default: every hand-bone model config and the U-Net/SegFormer ones),
the segmentor is built with random weights (no pretrained file, no download), and one
``(1, 3, size, size)`` image goes through ``model(x, mode='tensor')`` (encoder and
decode head, no test-time resizing) in ``torch.no_grad``; the time is the fastest of
``--repeat`` runs after one warm-up. The output stride is ``size`` divided by the
logits' height. Configs whose encoder needs timm are listed as skipped where timm is not
installed. GPU columns are left to ``tools/benchmark/gpu_check.sh``.
"""
import argparse
import glob
import os.path as osp
import time

import _common  # noqa: F401  (import path)

from mmseg_ext.utils.cli import number_in_range  # noqa: E402

REPO = _common.ROOT
DEFAULT = ['upernet_beit.py', 'upernet_swin.py', 'ocrnet_hr18.py', 'deeplabv3_r101.py',
           'segformer_mit-b2_multilabel_4xb2-20k_handbone-512x512.py',
           'recipes/unet-s5-d16_multilabel_1xb4-20k_xray-small-512x512.py'] + sorted(
    osp.relpath(p, osp.join(REPO, 'custom_configs'))
    for p in glob.glob(osp.join(REPO, 'custom_configs', 'unet', '*512x512.py')))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('configs', nargs='*', help='configs under custom_configs/ (default: all '
                   'hand-bone model configs)')
    p.add_argument('--size', type=number_in_range(int, 1), default=512)
    p.add_argument('--repeat', type=number_in_range(int, 1), default=3)
    p.add_argument('--threads', type=number_in_range(int, 0), default=0, help='torch threads (0: torch default)')
    p.add_argument('--markdown', action='store_true', help='print a Markdown table')
    return p.parse_args(argv)


def measure(config, size, repeat):
    import torch

    from mmseg_ext.config.loading import load_config
    from mmseg_ext.config.model import build_bare_model
    options = {}
    cfg = load_config(config)
    if cfg.model.get('backbone', {}).get('type') == 'TimmEncoder':
        options['model.backbone.pretrained'] = False
        cfg = load_config(config, options)
    model = build_bare_model(cfg).eval()
    params = sum(p.numel() for p in model.parameters())
    x = torch.rand(1, 3, size, size)
    with torch.no_grad():
        out = model(x, mode='tensor')  # warm-up
        best = float('inf')
        for _ in range(repeat):
            start = time.perf_counter()
            model(x, mode='tensor')
            best = min(best, time.perf_counter() - start)
    return dict(classes=out.shape[1], stride=size / out.shape[-2], params=params, seconds=best)


def main(argv=None):
    args = parse_args(argv)
    import torch

    from mmseg_ext import register_all_modules
    register_all_modules()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for name in args.configs or DEFAULT:
        path = osp.join(REPO, 'custom_configs', name)
        try:
            r = measure(path, args.size, args.repeat)
        except ImportError as exc:  # EnvironmentCheckError: timm not installed
            rows.append((name, None, str(exc).split(';')[0]))
            continue
        rows.append((name, r, ''))
    threads = torch.get_num_threads()
    if args.markdown:
        print(f'| config | output stride | parameters (M) | CPU forward, {args.size}x'
              f'{args.size}, batch 1, {threads} threads (s) |')
        print('|---|---|---|---|')
    for name, r, why in rows:
        if r is None:
            line = (f'| `{name}` | skipped: {why} | | |' if args.markdown
                    else f'{name}: skipped ({why})')
        elif args.markdown:
            line = (f'| `{name}` | {r["stride"]:g} | {r["params"] / 1e6:.1f} | '
                    f'{r["seconds"]:.2f} |')
        else:
            line = (f'{name}: stride {r["stride"]:g}, {r["params"] / 1e6:.1f} M parameters, '
                    f'{r["seconds"]:.2f} s forward ({threads} threads)')
        print(line, flush=True)


if __name__ == '__main__':
    main()
