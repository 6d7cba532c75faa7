"""Semi-supervised methods against the room on jsrt_chest (issue 31): how much of the
gap between labelled-only and all labels each method recovers.

    python tools/benchmark/bench_semi_methods.py --room-dir work_dirs/semi_room \\
        --fraction 8 --work-dir work_dirs/semi_methods [--seeds 0 1] \\
        [--methods unimatch selftrain selftrain-scratch unimatch-teacher finetune-teacher] \\
        [--finetune-iters 300] [--data ../shared/data/jsrt_chest] [--tiny]

``--room-dir`` is the work dir of ``tools/benchmark/bench_semi_room.py``: its
labelled-only arms at ``1/fraction`` and with all labels (``1of1``), for the same
seeds, must be finished there. Each method trains on exactly the labelled images of
the room's arm of that seed (``splits/1of<f>_seed<s>.txt``), with the rest of the
pool (the training folds, never the validation fold) as unlabelled images whose labels
are never read, for the same number of iterations as the room's arms, and is scored
on the same fixed validation fold:

- ``unimatch``: ``tools/train.py`` on the weak-to-strong config
  (``custom_configs/jsrt/unimatch_*``): each batch the labelled-only config's 4
  labelled images plus 4 unlabelled ones;
- ``selftrain``: ``tools/self_train.py``, one round: the room's labelled-only arm is
  the teacher (its last checkpoint), per-class pseudo-labels of the unlabelled images
  at ``--pixel-conf 0.9`` (polygon JSON), the student starts from the teacher's weights
  and trains the same iterations on the labelled images plus the pseudo-labelled ones;
- ``selftrain-scratch``: the same, but the student starts from its own initialisation
  (``--student-init scratch``, as ST++ does), so it is not pulled back to the
  teacher's weights, only to its pseudo-labels;
- ``unimatch-teacher``: UniMatch continued from the room's labelled-only arm (its last
  checkpoint as the student's ``init_cfg``) for ``--finetune-iters`` more iterations,
  so the weak view's pseudo-labels are good from the first step;
- ``finetune-teacher``: its control, the same arm continued on the labelled images
  alone for as many iterations (``load_from``), so that what the unlabelled images
  add is told apart from what the extra iterations add. The table counts both arms'
  iterations as the room's plus the continuation.

The table gives per-class and mean Dice per arm and seed, the iterations and CPU
minutes, and per method the share of the room recovered:
``(method - labelled-only) / (all labels - labelled-only)`` of the seed means, with
the seed-to-seed spread beside it. Self-training uses the room's config (its
``--config``, recorded in the arms' ``result.json``) as teacher and student, so a room
trained with CutMix gives a student with CutMix. A method that finished (``result.json``) is not
trained again. The room's ``--cfg-options`` (recorded in its arms' ``result.json``)
apply to every method too (``model.*`` as ``model.segmentor.*`` in the UniMatch
wrapper), so a loss or learning-rate change is measured on both sides of the
comparison. ``--tiny`` is the smoke test's size (as the room's; with
``--max-val-images`` and ``--max-unlabelled``). Without the data set it prints why and
exits 0.
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import Dict, List

import _common  # noqa: F401  (import path)
import bench_semi_room as room  # noqa: E402
import numpy as np  # noqa: E402

from mmseg_ext.utils.cli import number_in_range  # noqa: E402

ROOT = _common.ROOT
UNIMATCH = 'custom_configs/jsrt/unimatch_unet-s5-tiny_multilabel_1xb4-1k_jsrt-chest-256x256.py'
METHODS = ('unimatch', 'selftrain', 'selftrain-scratch', 'unimatch-teacher',
           'finetune-teacher')
#: methods that continue the room's labelled-only arm (the teacher) for --finetune-iters
FROM_TEACHER = ('unimatch-teacher', 'finetune-teacher')
STUDENT_INIT = {'selftrain': 'teacher', 'selftrain-scratch': 'scratch'}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--room-dir', required=True,
                   help='work dir of bench_semi_room.py with the labelled-only arms')
    p.add_argument('--fraction', type=number_in_range(int, 2), required=True,
                   help='f of the labelled fraction 1/f (an arm of the room)')
    p.add_argument('--work-dir', required=True)
    p.add_argument('--seeds', nargs='+', type=number_in_range(int, 0), default=[0, 1])
    p.add_argument('--methods', nargs='+', choices=METHODS, default=list(METHODS))
    p.add_argument('--data', default=room.DATA, help='the JSRT chest set (hand-bone layout)')
    p.add_argument('--finetune-iters', type=number_in_range(int, 1), default=300,
                   help='iterations of the methods that continue the labelled-only arm '
                   '(unimatch-teacher and its control finetune-teacher)')
    p.add_argument('--tiny', action='store_true', help='smoke-test size')
    p.add_argument('--max-val-images', type=number_in_range(int, 1), default=None,
                   help='score on the first N validation images only (the smoke test)')
    p.add_argument('--max-unlabelled', type=number_in_range(int, 1), default=None,
                   help='use the first N unlabelled images only (the smoke test)')
    return p.parse_args(argv)


def room_result(room_dir: str, name: str) -> dict:
    path = osp.join(room_dir, name, 'result.json')
    if not osp.isfile(path):
        raise SystemExit(f'{path}: not found; run bench_semi_room.py for this fraction '
                         'and seed first')
    return json.load(open(path))


def read_list(path: str) -> List[str]:
    with open(path, encoding='utf-8') as f:
        return [line.strip() for line in f if line.strip()]


def write_list(path: str, stems: List[str]) -> str:
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(''.join(s + '\n' for s in stems))
    return osp.abspath(path)


def schedule(iters: int, prefix: str = '') -> List[str]:
    warm = min(50, max(1, iters // 10))
    return [f'{prefix}train_cfg.max_iters={iters}', f'{prefix}train_cfg.val_interval={iters}',
            f'{prefix}default_hooks.checkpoint.interval={iters}',
            f'param_scheduler.0.end={warm}', f'param_scheduler.1.begin={warm}',
            f'param_scheduler.1.end={iters}']


def validation_options(args) -> List[str]:
    options = [f'val_dataloader.dataset.data_root={args.data}/train']
    if args.max_val_images:  # the room's record of the first N validation images
        options += [f'val_dataloader.dataset.ann_file='
                    f'{osp.abspath(osp.join(args.room_dir, "splits", "val.txt"))}',
                    'val_dataloader.dataset.fold=None']
    return options


def unimatch_command(args, arm_dir: str, labelled: str, unlabelled: str, seed: int,
                     iters: int, room_options: List[str]) -> List[str]:
    images = f'{args.data}/train/DCM'
    options = [
        f'train_dataloader.dataset.datasets.0.ann_file={labelled}',
        f'train_dataloader.dataset.datasets.1.ann_file={unlabelled}',
        f'train_dataloader.dataset.datasets.0.data_prefix.img_path={images}',
        f'train_dataloader.dataset.datasets.0.data_prefix.seg_map_path='
        f'{args.data}/train/outputs_json',
        f'train_dataloader.dataset.datasets.1.data_prefix.img_path={images}',
        f'randomness.seed={seed}', 'log_level=WARNING',
        *schedule(iters), *validation_options(args)]
    if args.tiny:
        options += [o.replace('model.', 'model.segmentor.', 1) for o in room.TINY
                    if o.startswith('model.')] + [
            'train_dataloader.dataset.datasets.0.pipeline.2.scale=(64,64)',
            'train_dataloader.dataset.datasets.0.pipeline.4.crop_size=(64,64)',
            'train_dataloader.dataset.datasets.0.pipeline.6.size=(64,64)',
            'train_dataloader.dataset.datasets.1.pipeline.1.scale=(64,64)',
            'train_dataloader.dataset.datasets.1.pipeline.2.crop_size=(64,64)',
            'train_dataloader.dataset.datasets.1.pipeline.3.size=(64,64)',
            'val_dataloader.dataset.pipeline.1.scale=(64,64)', 'param_scheduler=[]']
        options = [o for o in options if not o.startswith('param_scheduler.')]
    # the room's own overrides: the UniMatch wrapper holds the room's model as `segmentor`
    options += [o.replace('model.', 'model.segmentor.', 1) if o.startswith('model.') else o
                for o in room_options]
    return [sys.executable, osp.join(ROOT, 'tools', 'train.py'), UNIMATCH,
            '--work-dir', arm_dir, '--cfg-options', *options]


def selftrain_command(args, arm_dir: str, labelled: str, unlabelled: str, seed: int,
                      iters: int, teacher: str, config: str,
                      room_options: List[str], student_init: str = 'teacher') -> List[str]:
    options = [*room.data_options(args.data),
               f'train_dataloader.dataset.ann_file={labelled}',
               'train_dataloader.dataset.fold=None', f'randomness.seed={seed}',
               'log_level=WARNING', *validation_options(args)]
    if args.tiny:
        options += room.TINY + [f'train_cfg.max_iters={iters}',
                                f'train_cfg.val_interval={iters}']
    else:
        options += schedule(iters)
    options += room_options  # the room's own overrides
    return [sys.executable, osp.join(ROOT, 'tools', 'self_train.py'), config, config,
            '--unlabelled', f'{args.data}/train/DCM', '--unlabelled-list', unlabelled,
            '--img-suffix', '.png', '--work-dir', arm_dir, '--teacher-checkpoint', teacher,
            '--student-init', student_init, '--pixel-conf', '0.9', '--no-progress',
            '--cfg-options', *options]


def continue_command(args, method: str, arm_dir: str, labelled: str, unlabelled: str,
                     seed: int, teacher: str, config: str,
                     room_options: List[str]) -> List[str]:
    """``unimatch-teacher`` or its control ``finetune-teacher``: the labelled-only arm
    ``teacher`` continued for ``--finetune-iters``, with or without unlabelled images."""
    iters = args.finetune_iters
    if method == 'unimatch-teacher':
        cmd = unimatch_command(args, arm_dir, labelled, unlabelled, seed, iters,
                               room_options)
        return cmd + ['model.segmentor.init_cfg.type=Pretrained',
                      f'model.segmentor.init_cfg.checkpoint={teacher}']
    options = [*room.data_options(args.data),
               f'train_dataloader.dataset.ann_file={labelled}',
               'train_dataloader.dataset.fold=None', f'randomness.seed={seed}',
               'log_level=WARNING', f'load_from={teacher}', *validation_options(args)]
    if args.tiny:
        options += room.TINY + [f'train_cfg.max_iters={iters}',
                                f'train_cfg.val_interval={iters}',
                                f'default_hooks.checkpoint.interval={iters}']
    else:
        options += schedule(iters)
    options += room_options
    return [sys.executable, osp.join(ROOT, 'tools', 'train.py'), config,
            '--work-dir', arm_dir, '--cfg-options', *options]


def run_method(args, method: str, seed: int, pool: List[str]) -> dict:
    """Train one method for one seed (unless its ``result.json`` exists)."""
    name = f'{method}_1of{args.fraction}_seed{seed}'
    arm_dir = osp.join(args.work_dir, name)
    result_file = osp.join(arm_dir, 'result.json')
    if osp.isfile(result_file):
        return json.load(open(result_file))
    base_name = f'1of{args.fraction}_seed{seed}'
    base = room_result(args.room_dir, base_name)
    stems = read_list(osp.join(args.room_dir, 'splits', f'{base_name}.txt'))
    rest = [s for s in pool if s not in set(stems)][:args.max_unlabelled]
    labelled = write_list(osp.join(args.work_dir, 'splits', f'{base_name}_labelled.txt'),
                          stems)
    unlabelled = write_list(osp.join(args.work_dir, 'splits',
                                     f'{base_name}_unlabelled.txt'), rest)
    iters = base['iters']
    config = base.get('config', room.CONFIG)  # the room's model and augmentation
    teacher = osp.join(args.room_dir, base_name, f'iter_{iters}.pth')
    if method in FROM_TEACHER:
        if method == 'unimatch-teacher' and config != room.CONFIG:
            raise SystemExit(f'{args.room_dir}: its arms trained {config}; the UniMatch '
                             f'config wraps {room.CONFIG} only')
        cmd = continue_command(args, method, arm_dir, labelled, unlabelled, seed, teacher,
                               config, base.get('options', []))
    elif method == 'unimatch':
        if config != room.CONFIG:
            raise SystemExit(f'{args.room_dir}: its arms trained {config}; the UniMatch '
                             f'config wraps {room.CONFIG} only')
        cmd = unimatch_command(args, arm_dir, labelled, unlabelled, seed, iters,
                               base.get('options', []))
    else:
        cmd = selftrain_command(args, arm_dir, labelled, unlabelled, seed, iters,
                                teacher, config, base.get('options', []),
                                student_init=STUDENT_INIT[method])
    print('$ ' + ' '.join(cmd), flush=True)
    cost = _common.run_measured(cmd)
    selftrain = method in STUDENT_INIT
    scored = osp.join(arm_dir, 'round1', 'student') if selftrain else arm_dir
    extra = dict(finetune_iters=args.finetune_iters) if method in FROM_TEACHER else {}
    result = dict(name=name, method=method, images=len(stems), unlabelled=len(rest),
                  seed=seed, iters=iters + extra.get('finetune_iters', 0), **extra,
                  **cost, metrics=room.last_validation(scored))
    with open(result_file, 'w') as f:
        json.dump(result, f, indent=1)
    return result


def share_table(base: List[dict], full: List[dict], methods: Dict[str, List[dict]]) -> str:
    """Per method: mean Dice over seeds, spread, gain over labelled-only, share of room."""
    def dice(rows):
        values = [r['metrics']['mDice'] for r in rows]
        return float(np.mean(values)), max(values) - min(values)

    low, low_spread = dice(base)
    high, high_spread = dice(full)
    room_size = high - low
    lines = ['| arm | mean Dice (seeds) | spread | gain over labelled-only | share of the room |',
             '|---|---|---|---|---|',
             f'| labelled-only | {low:.4f} | {low_spread:.4f} | - | - |']
    for method, rows in methods.items():
        mean, spread = dice(rows)
        # no room (all labels no better than the fraction): a share has no meaning
        share = f'{100 * (mean - low) / room_size:.0f}%' if room_size > 0 else 'no room'
        lines.append(f'| {method} | {mean:.4f} | {spread:.4f} | {mean - low:+.4f} | '
                     f'{share} |')
    lines.append(f'| all labels | {high:.4f} | {high_spread:.4f} | {room_size:+.4f} | 100% |')
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    if _common.real_data_absent(args.data):
        return 0
    config = room.CONFIG
    options = room.data_options(args.data)
    split = room.pool_and_val(config, options)
    base = [room_result(args.room_dir, f'1of{args.fraction}_seed{s}') for s in args.seeds]
    full = [room_result(args.room_dir, f'1of1_seed{s}') for s in args.seeds]
    iters = {r['iters'] for r in base + full}
    if len(iters) != 1:
        raise SystemExit(f'{args.room_dir}: its arms trained for different iterations '
                         f'({sorted(iters)}); the methods need one budget')
    rows = list(base)
    methods: Dict[str, List[dict]] = {}
    for method in args.methods:
        for seed in args.seeds:
            result = run_method(args, method, seed, split['pool'])
            methods.setdefault(method, []).append(result)
            rows.append(result)
            print(f'{result["name"]}: mean Dice {result["metrics"]["mDice"]:.4f}, '
                  f'{result["cpu_minutes"]:.1f} CPU-min', flush=True)
    rows += full
    classes = [k[len('Dice.'):] for k in rows[0]['metrics'] if k.startswith('Dice.')]
    print(f'\n=== 1/{args.fraction} labelled (Dice on the fixed validation fold) ===')
    print(room.arm_table(rows, classes))
    print('\n=== the share of the room recovered ===')
    print(share_table(base, full, methods))
    return 0


if __name__ == '__main__':
    sys.exit(main())
