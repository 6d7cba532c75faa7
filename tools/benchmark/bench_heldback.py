"""Train several hand-bone-layout configs the same way; score them on a held-back split.

    python tools/benchmark/bench_heldback.py CONFIG [CONFIG ...] --train ROOT
        --heldback ROOT --work-dir DIR [--iters 500] [--cfg-options k=v ...]
    python tools/benchmark/bench_heldback.py CONFIG [CONFIG ...] --data DATA
        --heldback-patients N --work-dir DIR [...]

Each config trains ``--iters`` iterations on every image under ``--train`` (its
``DCM/`` + ``outputs_json/``), in one process one after the other, with the same seed.
Each model then predicts the held-back images (``--heldback``/DCM, never seen in
training), the probabilities become a hand-bone CSV at threshold 0.5 with
``tools/make_submission.py``'s writer, and the CSV is scored against the held-back
polygons with the competition Dice (:mod:`mmseg_ext.submission.scoring`). Printed: one row per
config with its per-class and mean Dice and training time. Nothing is tuned and
nothing is assumed to improve.

``--data DATA --heldback-patients N`` instead splits one labelled set by patient: N ID
folders of ``DATA/train`` (the seeded draw of ``bench_realdata.py``) are held back and
the configs train on the others (``DIR/data``, hard links to the data's files), for
the real chest X-rays of ``../shared/data/jsrt_chest``, whose other half is withheld.
"""
import argparse
import os.path as osp
import time

import _common  # noqa: F401  (import path)

from mmseg_ext.utils.cli import number_in_range  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('configs', nargs='+')
    p.add_argument('--train', help='hand-bone root the configs train on')
    p.add_argument('--heldback', help='labelled hand-bone root to score on')
    p.add_argument('--data', help='one labelled hand-bone set to split by patient '
                   '(with --heldback-patients, instead of --train and --heldback)')
    p.add_argument('--heldback-patients', type=number_in_range(int, 1),
                   help='how many patients (ID folders) of --data to hold back')
    p.add_argument('--work-dir', required=True)
    p.add_argument('--iters', type=number_in_range(int, 1), default=500)
    from mmseg_ext.utils.cli import cfg_options_action
    p.add_argument('--cfg-options', nargs='+', action=cfg_options_action(), default={},
                   help='key=value for every config (parsed as tools/train.py does)')
    p.add_argument('--no-progress', action='store_true')
    args = p.parse_args(argv)
    if (args.data is None) != (args.heldback_patients is None):
        p.error('--data and --heldback-patients go together')
    if (args.data is None) == (args.train is None and args.heldback is None):
        p.error('give --train and --heldback, or --data and --heldback-patients')
    if args.data is None and (args.train is None or args.heldback is None):
        p.error('--train and --heldback go together')
    return args


def options_for(root, iters, extra):
    warm = min(50, max(1, iters // 10))
    options = {f'{s}_dataloader.dataset.data_root': root for s in ('train', 'val', 'test')}
    options.update({'train_dataloader.dataset.fold': None,  # every image of the root
                    'train_cfg.max_iters': iters, 'train_cfg.val_interval': iters,
                    'default_hooks.checkpoint.interval': iters,
                    'param_scheduler.0.end': warm, 'param_scheduler.1.begin': warm,
                    'param_scheduler.1.end': iters, 'log_level': 'WARNING'})
    options.update(extra or {})
    return options


def check_inputs(args, test_dir: str) -> None:
    """Before any training: every held-back image has its polygons, none of the held-back
    images is a training image (the same file, a copy or the same pixels re-encoded: the
    score would not be held back)."""
    from mmseg_ext.io.ground_truth import GroundTruth
    from mmseg_ext.io.image_identity import same_images
    from mmseg_ext.io.images import list_images
    from mmseg_ext.utils.errors import MmsegExtError
    try:
        gt = GroundTruth(args.heldback, ['any'])  # a root without polygons is named here
        rels = list_images(test_dir)
        missing = [rel for rel in rels if gt.find(osp.splitext(rel)[0]) is None]
        if missing:
            raise SystemExit(f'error: {osp.join(test_dir, missing[0])}: a held-back image '
                             f'without polygons in {gt.root} ({len(missing)} such): it '
                             'cannot be scored; give a labelled --heldback root')
        held = [osp.join(test_dir, r) for r in rels]
        train_dir = osp.join(args.train, 'DCM')
        shared = same_images(held, [osp.join(train_dir, r)
                                    for r in list_images(train_dir)])
    except MmsegExtError as exc:
        raise SystemExit(f'error: {exc}') from None
    if shared:
        raise SystemExit(f'error: {shared[0][0]}: a held-back image is the training image '
                         f'{shared[0][1]} ({len(shared)} such): the score would not be '
                         'held back; give --heldback images of other patients')


def check_work_dir(args) -> None:
    """A ``--work-dir`` that exists holds only this benchmark's own folders (``data``,
    ``<i>_<config>``): it writes there under fixed names. It is apart from the data
    (neither inside nor holding ``--train``, ``--heldback`` or ``--data``)."""
    import os

    from mmseg_ext.io.paths import check_output_apart
    from mmseg_ext.utils.errors import InvalidArgumentError
    try:
        check_output_apart(args.work_dir, [args.data, args.train, args.heldback], 'work_dir')
    except InvalidArgumentError as exc:
        raise SystemExit(f'error: --work-dir: {exc.problem}') from None
    ours = {'data'} | {f'{i}_{osp.splitext(osp.basename(c))[0]}'
                       for i, c in enumerate(args.configs)}
    if osp.isdir(args.work_dir):
        foreign = sorted(set(os.listdir(args.work_dir)) - ours)
        if foreign:
            raise SystemExit(f'error: {args.work_dir}: holds {foreign[0]}, which this '
                             'benchmark does not make; give a new or empty --work-dir')
    elif osp.lexists(args.work_dir):
        raise SystemExit(f'error: {args.work_dir}: not a folder')


def main(argv=None):
    args = parse_args(argv)
    from mmseg_ext import register_all_modules
    register_all_modules()
    from mmseg_ext.inference.predictor import build_predictor, infer_folder
    from mmseg_ext.submission.make import make_submission
    from mmseg_ext.submission.scoring import score_handbone_csv
    from mmseg_ext.training.runner import train_config
    from mmseg_ext.training.stages import last_checkpoint, train_only
    from mmseg_ext.utils.errors import MmsegExtError
    progress = not args.no_progress
    check_work_dir(args)
    if args.data is not None:
        from _common import split_patients
        roots = split_patients(args.data, args.heldback_patients, args.work_dir)
        args.train, args.heldback = roots['pool'], roots['heldback']
    test_dir = osp.join(args.heldback, 'DCM')
    check_inputs(args, test_dir)
    rows = []
    for i, config in enumerate(args.configs):
        name = osp.splitext(osp.basename(config))[0]
        work = osp.join(args.work_dir, f'{i}_{name}')
        options = options_for(args.train, args.iters, args.cfg_options)
        start = time.time()
        try:
            train_only(train_config(config, work_dir=work, cfg_options=options))
            seconds = time.time() - start
            ckpt = last_checkpoint(work)
            predictor = build_predictor(config, ckpt, cfg_options=options)
            probs = osp.join(work, 'heldback_probs')
            infer_folder(predictor, test_dir, probs, force=True, progress=progress)
            csv = osp.join(work, 'heldback.csv')
            make_submission(probs, 'handbone', csv, img_dir=test_dir, force=True,
                            progress=progress)
            score = score_handbone_csv(csv, args.heldback, test_dir, predictor.classes,
                                       progress=False)
        except MmsegExtError as exc:
            raise SystemExit(f'error: {exc}') from None
        rows.append((name, score, seconds))
        print(f'{name}: mean Dice {score.mean:.4f} on {score.images} held-back images '
              f'({seconds / 60:.1f} min training)', flush=True)
    width = max(len(n) for n, _, _ in rows)
    print(f'\n{"config":<{width}}  held-back mean Dice  train min')
    for name, score, seconds in rows:
        print(f'{name:<{width}}  {score.mean:19.4f}  {seconds / 60:9.1f}')
    print('\nper class: | config | ' + ' | '.join(rows[0][1].per_class) + ' | mean |')
    for name, score, _ in rows:
        print(f'| {name} | ' + ' | '.join(f'{v:.4f}' for v in score.per_class.values())
              + f' | {score.mean:.4f} |')


if __name__ == '__main__':
    main()
