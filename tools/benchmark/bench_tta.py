"""Plain test vs test-time augmentation of one checkpoint, side by side in one run.

    python tools/benchmark/bench_tta.py CONFIG CHECKPOINT [--cfg-options k=v ...]
                                        [--repeat 1] [--work-dir DIR] [--stock-views]
                                        [--all-metrics]

Both runs go through ``tools/test.py``'s own path (``test_config`` + ``test_checkpoint``:
the stock runner, the config's test/TTA pipeline and evaluator), on the same images.
Printed per mode: every metric the evaluator reports, the TTA views per image, and the
wall seconds per image of the test loop (the fastest of ``--repeat`` runs; the runner is
built outside the timing). The checkpoint decides nothing here: the numbers are what the
config's TTA gives that model, gain or not.

``--stock-views`` adds a third row: the same TTA with mmseg's stock view pattern (the
resize before ``TestTimeAug`` removed, so the ratios apply to the original image), the
pattern the shipped configs used before. ``--all-metrics`` prints per-class columns too.
"""
import argparse
import numbers
import os.path as osp
import sys
import tempfile
import time

import _common  # noqa: F401  (import path)

from mmseg_ext.utils.cli import cfg_options_action, number_in_range  # noqa: E402


def run_mode(config, checkpoint, tta, cfg_options, work_dir, repeat):
    from mmengine.runner import Runner

    from mmseg_ext.training.runner import load_checkpoint_strictly, test_config
    from mmseg_ext.training.stages import own_run_names
    best, metrics, images = None, {}, 0
    for i in range(repeat):
        options = dict(cfg_options or {})
        options.setdefault('log_level', 'WARNING')
        cfg = test_config(config, checkpoint,
                          work_dir=osp.join(work_dir, f'{tta}_{i}_{len(options)}'),
                          tta=tta, cfg_options=options)
        own_run_names(cfg)  # several runners in this process: each its own singletons
        runner = Runner.from_cfg(cfg)
        load_checkpoint_strictly(runner, checkpoint, config)
        images = len(runner.test_dataloader.dataset)
        start = time.perf_counter()
        metrics = runner.test() or {}
        took = time.perf_counter() - start
        best = took if best is None else min(best, took)
    return metrics, best / max(images, 1), images


def main(argv=None):
    import torch
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--cfg-options', nargs='+', action=cfg_options_action(),
                        default={})
    parser.add_argument('--repeat', type=number_in_range(int, 1), default=1)
    parser.add_argument('--work-dir', default=None)
    parser.add_argument('--stock-views', action='store_true')
    parser.add_argument('--all-metrics', action='store_true')
    args = parser.parse_args(argv)
    from mmengine.config import Config

    from mmseg_ext import register_all_modules
    register_all_modules()
    from mmseg_ext.config.tta import config_tta_pipeline
    from mmseg_ext.datasets.transforms.pipeline_geometry import tta_views
    work_dir = args.work_dir or tempfile.mkdtemp(prefix='bench_tta_')
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(args.cfg_options)
    tta_pipeline = config_tta_pipeline(cfg, args.config)
    views = len(tta_views(tta_pipeline, (512, 512)))
    print(f'config: {args.config}\ncheckpoint: {args.checkpoint}\n'
          f'torch threads: {torch.get_num_threads()}', flush=True)
    modes = [('plain', False, {}), ('TTA', True, {})]
    if args.stock_views:
        first = next(i for i, t in enumerate(tta_pipeline) if t['type'] == 'TestTimeAug')
        stock = [t for i, t in enumerate(tta_pipeline)
                 if i >= first or 'resize' not in t['type'].lower()]
        modes.append(('TTA, stock views (ratios of the original image)', True,
                      {'tta_pipeline': stock}))
    rows = []
    for name, tta, extra in modes:
        metrics, sec, images = run_mode(args.config, args.checkpoint, tta,
                                        {**args.cfg_options, **extra}, work_dir, args.repeat)
        rows.append((name, views if tta else 1, images, sec, metrics))
    keys = [k for k in rows[0][4] if isinstance(rows[0][4][k], numbers.Real)
            and (args.all_metrics or '.' not in k)]
    print('\n| mode | views | images | s/image | ' + ' | '.join(keys) + ' |')
    print('|---|---|---|---|' + '---|' * len(keys))
    for mode, v, n, sec, m in rows:
        print(f'| {mode} | {v} | {n} | {sec:.3f} | '
              + ' | '.join(f'{float(m.get(k, float("nan"))):.4f}' for k in keys) + ' |')
    return 0


if __name__ == '__main__':
    sys.exit(main())
