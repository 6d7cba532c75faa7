"""K-fold cross-validation to a checked submission, in one command.

    python tools/cv.py CONFIG -k K --work-dir W [--folds 0,2] [--splits DIR]
        [--seed 0] [--group-regex RE] [--tta] [--test-dir DIR] [--format FMT]
        [--test-json JSON] [--sample CSV] [--gpus N] [--ranks-per-fold R]
        [--device DEV] [--pseudo-labels PL [--pseudo-images DIR]]
        [--cfg-options key=value ...] [--force] [--no-progress]

1. splits the config's training set into K folds (hand-bone: by patient; COCO and
   label folders: stratified by the classes present), or reads --splits;
2. trains every fold with the stock runner into W/fold<k>/ (finished folds are kept
   when the same command runs again; another command in W is refused);
3. predicts each fold's validation images with its model into one out-of-fold folder;
4. scores it (multi-label: competition Dice per class; multi-class: IoU per class)
   and, multi-label, tunes per-class thresholds and component clean-up on it
   (W/tuned/*.json, the files tools/make_submission.py reads);
5. with --test-dir: every fold model predicts the test images, the probabilities are
   averaged, the tuned settings applied, W/submission.csv written and checked.

With --pseudo-labels (a hand-bone JSON folder of tools/pseudo_label.py, its images in
--pseudo-images, default the test images), every fold also trains on the
pseudo-labelled images and none validates on them: pseudo-labelling the test set.

Ends with a table of the scores and the paths; W/summary.json holds the same. See
docs/cross_validation.md.
"""
import os.path as _osp
import os.path as osp
import sys
import sys as _sys

_sys.path.insert(0, _osp.dirname(_osp.abspath(__file__)))  # python -I leaves it off
import _bootstrap  # noqa: F401,E402  (makes the checkout importable)

from mmseg_ext import register_all_modules
from mmseg_ext.utils.cli import ToolParser, cfg_options_action, cli_main, number_in_range

TOOLS = osp.dirname(osp.abspath(__file__))


def fold_list(text: str):
    import argparse
    try:
        folds = sorted({int(v) for v in text.split(',') if v.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected fold numbers like 0,2, got {text!r}') \
            from None
    if not folds or folds[0] < 0:
        raise argparse.ArgumentTypeError(f'expected fold numbers >= 0 like 0,2, got {text!r}')
    return folds


def parse_args(argv=None):
    p = ToolParser(description='K-fold cross-validation to a checked submission')
    p.add_argument('config', role='config', help='config whose training set is split into folds')
    p.add_argument('-k', '--num-folds', type=number_in_range(int, 2), required=True,
                   help='number of folds, >= 2')
    p.add_argument('--work-dir', required=True, role='output', help='where every stage writes')
    p.add_argument('--folds', type=fold_list, help='train only these folds (e.g. 0,2); '
                   'the out-of-fold and test stages need all')
    p.add_argument('--splits', metavar='DIR', role='input', help='split files of tools/kfold.py '
                   '(val_fold<k>.txt) instead of new folds')
    p.add_argument('--seed', type=number_in_range(int, 0, 2**32 - 1), default=0,
                   help='fold seed in [0, 2^32-1] (default 0)')
    p.add_argument('--group-regex', role='text', help='group images by this regex on their split name '
                   '(first capture group) instead of by patient')
    p.add_argument('--tta', action='store_true', help="predict with the config's "
                   'tta_pipeline (flips un-flipped, lateral classes swapped back)')
    p.add_argument('--test-dir', role='input', help='test images: write the fold ensemble submission')
    p.add_argument('--format', dest='fmt', choices=['handbone', 'trash', 'port'],
                   help='submission format (default: the data set\'s)')
    p.add_argument('--test-json', role='input', help='trash: COCO test.json giving the row order')
    p.add_argument('--sample', role='input', help='port: sample submission giving rows and their order')
    p.add_argument('--gpus', type=number_in_range(int, 0), default=0, metavar='N',
                   help='spread the folds over N GPUs, N >= 0 (more than torch sees count '
                   'as those it sees), one fold per GPU at a time (default 0: one after the '
                   'other in this process)')
    p.add_argument('--ranks-per-fold', type=number_in_range(int, 0), default=0, metavar='R',
                   help='train each fold with tools/dist_train.sh on R ranks, R in [0, '
                   'the GPUs given and visible] (without CUDA: [0, the CPU count], one CPU '
                   'process each) (default 0: no launcher)')
    p.add_argument('--device', role='text', help='inference device (default: cuda:0 if present, else cpu)')
    p.add_argument('--pseudo-labels', metavar='PL', role='input', help='hand-bone JSON '
                   'pseudo-labels of tools/pseudo_label.py: every fold also trains on them')
    p.add_argument('--pseudo-images', metavar='DIR', role='input', help='the images of '
                   '--pseudo-labels (default: --test-dir)')
    p.add_argument('--cfg-options', nargs='+', action=cfg_options_action(), role='text',
                   help='override config entries (data roots, iterations, ...)')
    p.add_argument('--force', action='store_true',
                   help='start again in a WORK_DIR of another run (without it the same '
                   'command resumes and another one is refused before anything trains)')
    p.add_argument('--no-progress', action='store_true', help='no progress bars')
    for option in ('--format', '--test-json', '--sample'):
        p.requires(option, '--test-dir', why='the submission is made for the test images')
    p.requires('--pseudo-images', '--pseudo-labels', why='they are the pseudo-labels\' '
               'images')
    p.requires_one_of('--pseudo-labels', '--pseudo-images', '--test-dir',
                      why='the folder of the pseudo-labelled images')
    p.conflicts('--splits', '--seed', '--group-regex',
                why='the split files fix the folds; --seed and --group-regex make new ones')
    return p.parse_args(argv)


def fold_command(config: str, work_dir: str, ranks: int, resume: bool):
    """The command line that trains one fold in another process."""
    extra = ['--resume'] if resume else []
    if ranks > 0:
        return ['bash', osp.join(TOOLS, 'dist_train.sh'), config, str(ranks),
                '--work-dir', work_dir, *extra]
    return [sys.executable, osp.join(TOOLS, 'train.py'), config, '--work-dir', work_dir,
            *extra]


@cli_main(flags={'fmt': '--format', 'num_folds': '-k'})
def main(argv=None):
    args = parse_args(argv)
    register_all_modules()  # environment check first: one line when it cannot work
    from mmseg_ext.workflows.cross_validation import cross_validate
    s = cross_validate(args.config, args.num_folds, args.work_dir, folds=args.folds,
                       splits=args.splits, seed=args.seed, group_regex=args.group_regex,
                       tta=args.tta, test_dir=args.test_dir, fmt=args.fmt,
                       test_json=args.test_json, sample=args.sample, gpus=args.gpus,
                       ranks_per_fold=args.ranks_per_fold, fold_command=fold_command,
                       device=args.device, cfg_options=args.cfg_options, force=args.force,
                       progress=not args.no_progress, pseudo_labels=args.pseudo_labels,
                       pseudo_images=args.pseudo_images)
    print('=== cross-validation finished ===')
    print(s.table())
    print(f'{len(s.folds)} of {s.num_folds} folds in {s.seconds / 60:.1f} min')


if __name__ == '__main__':
    main()
