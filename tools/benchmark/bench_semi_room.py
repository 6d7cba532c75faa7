"""The room semi-supervised training can fill on jsrt_chest: labelled-only at fractions.

    python tools/benchmark/bench_semi_room.py --work-dir DIR [--fractions 8 4 2 1]
        [--seeds 0 1] [--iters 1000] [--config CONFIG] [--data ../shared/data/jsrt_chest]
        [--tiny]

The config's validation fold (fold 0 of 5 by ID folder, i.e. by patient) is the fixed
evaluation set: no arm trains on it. The other folds are the pool. For each seed the
pool's ID folders are shuffled, and the first ``1/f`` of them (at least one) are the
labelled images of fraction ``1/f``: the subsets of one seed are nested (1/8 inside 1/4
inside 1/2 inside all). Each arm trains ``CONFIG`` with ``tools/train.py`` on its
subset (``ann_file``: the list of its images) for ``--iters`` iterations with the
seed as ``randomness.seed``, and is scored by the config's validation at the end
(per-class Dice of ``MultiLabelDiceMetric``).

The final table gives, per fraction, the mean Dice over seeds, the seed-to-seed spread
(max - min of the seeds' mean Dice), the gap to all labels (the room) and the gap in
units of the larger of the two spreads; the fraction where that ratio is largest is the
one to measure semi-supervised methods at. An arm that finished (``result.json`` in its
folder) is not trained again. ``--tiny`` is the smoke test's size: 2 iterations, 8
channels, 64 px. Without the data set it prints why and exits 0.
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import Dict, List

import _common  # noqa: F401  (import path)
import numpy as np  # noqa: E402

from mmseg_ext.utils.cli import number_in_range  # noqa: E402

ROOT = _common.ROOT
CONFIG = 'custom_configs/jsrt/unet-s5-tiny_multilabel_1xb4-1k_jsrt-chest-256x256.py'
DATA = osp.normpath(osp.join(ROOT, '..', 'shared', 'data', 'jsrt_chest'))
#: the smoke test's model and sizes: 8 base channels at 64 px
TINY = ['model.backbone.base_channels=8', 'model.decode_head.in_channels=8',
        'model.decode_head.channels=8', 'model.data_preprocessor.size=(64,64)',
        'train_dataloader.dataset.pipeline.2.scale=(64,64)',     # RandomResize
        'train_dataloader.dataset.pipeline.4.crop_size=(64,64)',  # RandomCrop
        'train_dataloader.dataset.pipeline.6.size=(64,64)',       # MultiLabelPad
        'val_dataloader.dataset.pipeline.1.scale=(64,64)', 'param_scheduler=[]']


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--work-dir', required=True)
    p.add_argument('--fractions', nargs='+', type=number_in_range(int, 1),
                   default=[8, 4, 2, 1], help='f of the labelled fractions 1/f')
    p.add_argument('--seeds', nargs='+', type=number_in_range(int, 0), default=[0, 1])
    p.add_argument('--iters', type=number_in_range(int, 1), default=None,
                   help='training iterations an arm (>= 1; default 1000, the config\'s '
                   'schedule; 2 with --tiny)')
    p.add_argument('--config', default=CONFIG)
    p.add_argument('--data', default=DATA, help='the JSRT chest set (hand-bone layout)')
    p.add_argument('--tiny', action='store_true', help='smoke-test size')
    p.add_argument('--max-val-images', type=number_in_range(int, 1), default=None,
                   help='score on the first N validation images only (the smoke test)')
    p.add_argument('--cfg-options', nargs='+', default=[], metavar='KEY=VALUE',
                   help='config overrides for every arm, after the benchmark\'s own (a '
                        'loss or learning-rate change under test); recorded in each '
                        "arm's result.json, and a work dir's arms must share them")
    return p.parse_args(argv)


def data_options(data: str) -> List[str]:
    return [f'{s}_dataloader.dataset.data_root={data}/train' for s in ('train', 'val')]


def pool_and_val(config: str, options: List[str]) -> Dict[str, List[str]]:
    """``{'pool': stems, 'val': stems}``: the config's training and validation images
    (``IDxxx/name``, as ``tools/kfold.py handbone`` writes them)."""
    from mmengine.config import Config, DictAction
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS

    from mmseg_ext import register_all_modules
    register_all_modules()
    init_default_scope('mmseg')
    cfg = Config.fromfile(osp.join(ROOT, config))
    parser = argparse.ArgumentParser()
    parser.add_argument('--o', nargs='+', action=DictAction)
    cfg.merge_from_dict(parser.parse_args(['--o', *options]).o)
    found = {}
    for key, loader in (('pool', 'train_dataloader'), ('val', 'val_dataloader')):
        dataset = DATASETS.build(cfg[loader].dataset)
        stems = []
        for i in range(len(dataset)):
            path = dataset.get_data_info(i)['img_path']
            stems.append('/'.join(osp.splitext(path)[0].split('/')[-2:]))
        found[key] = stems
    overlap = {s.split('/')[0] for s in found['pool']} & {s.split('/')[0] for s in found['val']}
    if overlap:
        raise SystemExit(f'{config}: training and validation share ID folders '
                         f'({sorted(overlap)[:3]}); the room needs a held-out fold')
    return found


def labelled_subset(pool: List[str], fraction: int, seed: int) -> List[str]:
    """The first ``1/fraction`` of the pool's ID folders in the seed's order (at least
    one folder), as image stems in pool order."""
    ids = sorted({s.split('/')[0] for s in pool})
    order = np.random.default_rng(seed).permutation(len(ids))
    keep = {ids[i] for i in order[:max(1, round(len(ids) / fraction))]}
    return [s for s in pool if s.split('/')[0] in keep]


def last_validation(work_dir: str) -> Dict[str, float]:
    """The metrics of the last validation logged under ``work_dir`` (mmengine's
    ``<timestamp>/vis_data/scalars.json``)."""
    found = {}
    for stamp in sorted(os.listdir(work_dir)):
        scalars = osp.join(work_dir, stamp, 'vis_data', 'scalars.json')
        if osp.isfile(scalars):
            for line in open(scalars):
                record = json.loads(line)
                if 'mDice' in record:
                    found = record
    if not found:
        raise SystemExit(f'{work_dir}: no validation metrics logged')
    return {k: float(v) for k, v in found.items() if k.startswith(('Dice.', 'mDice'))}


def arm_iters(args) -> int:
    """Training iterations of an arm: ``--iters``, else 2 with ``--tiny``, else 1000."""
    if args.iters is not None:
        return args.iters
    return 2 if args.tiny else 1000


def run_arm(args, name: str, stems: List[str], seed: int) -> dict:
    """Train one arm (unless its ``result.json`` exists) and return its result."""
    arm_dir = osp.join(args.work_dir, name)
    result_file = osp.join(arm_dir, 'result.json')
    if osp.isfile(result_file):
        result = json.load(open(result_file))
        if result.get('config', CONFIG) != args.config:
            raise SystemExit(f'{result_file}: trained with the config '
                             f'{result.get("config", CONFIG)}, not {args.config}; give '
                             'this config its own --work-dir')
        if result.get('options', []) != args.cfg_options:
            raise SystemExit(f'{result_file}: trained with --cfg-options '
                             f'{result.get("options", [])}, not {args.cfg_options}; '
                             'give these options their own --work-dir')
        if result.get('iters') != arm_iters(args):
            raise SystemExit(f'{result_file}: trained for {result.get("iters")} iterations, '
                             f'not {arm_iters(args)}; give this budget its own --work-dir')
        return result
    os.makedirs(arm_dir, exist_ok=True)
    split = osp.join(args.work_dir, 'splits', f'{name}.txt')
    os.makedirs(osp.dirname(split), exist_ok=True)
    with open(split, 'w') as f:
        f.write(''.join(s + '\n' for s in stems))
    iters = arm_iters(args)
    options = data_options(args.data) + [
        f'train_dataloader.dataset.ann_file={osp.abspath(split)}',
        'train_dataloader.dataset.fold=None', f'randomness.seed={seed}',
        f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
        f'default_hooks.checkpoint.interval={iters}', 'log_level=WARNING']
    if not args.tiny:
        warm = min(50, max(1, iters // 10))
        options += [f'param_scheduler.0.end={warm}', f'param_scheduler.1.begin={warm}',
                    f'param_scheduler.1.end={iters}']
    if args.max_val_images:  # the first N of the validation fold (splits/val.txt)
        val_split = osp.join(args.work_dir, 'splits', 'val.txt')
        options += [f'val_dataloader.dataset.ann_file={osp.abspath(val_split)}',
                    'val_dataloader.dataset.fold=None']
    if args.tiny:
        options += TINY
    options += args.cfg_options
    cmd = [sys.executable, osp.join(ROOT, 'tools', 'train.py'), args.config,
           '--work-dir', arm_dir, '--cfg-options', *options]
    print('$ ' + ' '.join(cmd), flush=True)
    cost = _common.run_measured(cmd)
    result = dict(name=name, images=len(stems), ids=len({s.split('/')[0] for s in stems}),
                  seed=seed, iters=iters, config=args.config, options=args.cfg_options,
                  **cost,
                  metrics=last_validation(arm_dir))
    with open(result_file, 'w') as f:
        json.dump(result, f, indent=1)
    return result


def summary_table(results: Dict[int, List[dict]]) -> str:
    """Per fraction: mean Dice over seeds, spread, gap to all labels, gap / spread."""
    def mean_dice(r):
        return r['metrics']['mDice']

    full = results.get(1)
    lines = ['| labelled | images | mean Dice (seeds) | spread | gap to all | gap / spread |',
             '|---|---|---|---|---|---|']
    best = None
    for f in sorted(results, reverse=True):
        runs = results[f]
        dice = [mean_dice(r) for r in runs]
        spread = max(dice) - min(dice)
        row = (f'| 1/{f} | {runs[0]["images"]} | {np.mean(dice):.4f} '
               f'({", ".join(f"{d:.4f}" for d in dice)}) | {spread:.4f} |')
        if full and f != 1:
            full_dice = [mean_dice(r) for r in full]
            gap = np.mean(full_dice) - np.mean(dice)
            noise = max(spread, max(full_dice) - min(full_dice), 1e-4)
            row += f' {gap:.4f} | {gap / noise:.1f} |'
            if best is None or gap / noise > best[1]:
                best = (f, gap / noise, gap)
        else:
            row += ' - | - |'
        lines.append(row)
    if best:
        lines.append(f'largest room relative to the spread: 1/{best[0]} '
                     f'(gap {best[2]:.4f} mean Dice, {best[1]:.1f} x the spread)')
    return '\n'.join(lines)


def arm_table(rows: List[dict], classes: List[str]) -> str:
    head = ' | '.join(classes)
    lines = [f'| arm | images | seed | {head} | mean | iterations | CPU min |',
             '|---|---|---|' + '---|' * len(classes) + '---|---|---|']
    for r in rows:
        per = ' | '.join(f'{r["metrics"][f"Dice.{c}"]:.4f}' for c in classes)
        lines.append(f'| {r["name"]} | {r["images"]} | {r["seed"]} | {per} | '
                     f'{r["metrics"]["mDice"]:.4f} | {r["iters"]} | {r["cpu_minutes"]:.1f} |')
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    if _common.real_data_absent(args.data):
        return 0
    split = pool_and_val(args.config, data_options(args.data))
    print(f'pool: {len(split["pool"])} images; fixed validation: {len(split["val"])} '
          f'images of other ID folders', flush=True)
    val = split['val'][:args.max_val_images] if args.max_val_images else split['val']
    os.makedirs(osp.join(args.work_dir, 'splits'), exist_ok=True)
    with open(osp.join(args.work_dir, 'splits', 'val.txt'), 'w') as f:
        f.write(''.join(s + '\n' for s in val))  # the record (read with --max-val-images)
    results: Dict[int, List[dict]] = {}
    rows = []
    for f in sorted(set(args.fractions), reverse=True):
        for seed in args.seeds:
            stems = labelled_subset(split['pool'], f, seed)
            result = run_arm(args, f'1of{f}_seed{seed}', stems, seed)
            results.setdefault(f, []).append(result)
            rows.append(result)
            print(f'{result["name"]}: {result["images"]} images, mean Dice '
                  f'{result["metrics"]["mDice"]:.4f}, {result["cpu_minutes"]:.1f} CPU-min',
                  flush=True)
    classes = [k[len('Dice.'):] for k in rows[0]['metrics'] if k.startswith('Dice.')]
    print('\n=== labelled-only arms (Dice on the fixed validation fold) ===')
    print(arm_table(rows, classes))
    print('\n=== the room ===')
    print(summary_table(results))
    return 0


if __name__ == '__main__':
    sys.exit(main())
