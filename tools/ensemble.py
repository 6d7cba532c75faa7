"""Ensemble predictions.

Soft voting of probability folders (weighted mean, images matched by name):

    python tools/ensemble.py PROBS_A PROBS_B ... --out-dir FUSED [--weights 2 1 ...]
                             [--mixed-size original|largest] [--dtype uint8|float16]
                             [--force]

Hard voting of hand-bone submission CSVs (pixel kept when >= K files mark it):

    python tools/ensemble.py --csv a.csv b.csv c.csv --out vote.csv [--img-dir TEST_IMAGES]
        [--min-votes K] [--force]
"""

import os.path as _osp
import sys as _sys

_sys.path.insert(0, _osp.dirname(_osp.abspath(__file__)))  # python -I leaves it off
import _bootstrap  # noqa: F401,E402  (makes the checkout importable)

from mmseg_ext.utils.cli import ToolParser, cli_main, number_in_range
from mmseg_ext.utils.errors import UsageError


def parse_args(argv=None):
    p = ToolParser(description='Soft-vote probability folders or hard-vote '
                                'hand-bone CSVs')
    p.add_argument('probs', nargs='*', role='input', help='probability folders (soft voting)')
    p.add_argument('--out-dir', role='output', help='output probability folder (soft voting)')
    p.add_argument('--weights', nargs='+', type=number_in_range(float, 0),
                   help='one weight per folder (normalised; default equal)')
    p.add_argument('--mixed-size', default='original', choices=['original', 'largest'],
                   help='when stored resolutions differ for an image: resize all to its '
                   'original size (default) or to the largest stored one')
    p.add_argument('--dtype', choices=['uint8', 'float16'],
                   help='storage of the output (default: as the first input)')
    p.add_argument('--csv', nargs='+', role='input', help='hand-bone submission CSVs (hard voting)')
    p.add_argument('--out', role='output', help='output CSV (hard voting)')
    p.add_argument('--img-dir', role='input', help='test images (hard voting): every run is '
                   'checked against its image\'s size (without it, sizes are unknown)')
    p.add_argument('--min-votes', type=number_in_range(int, 1),
                   help='votes needed to keep a pixel (default: strict majority)')
    p.add_output_flags('replace an existing output')
    p.conflicts('--csv', 'probs', '--out-dir', why='hard voting of CSVs or soft voting of '
                'probability folders, not both')
    p.requires('--csv', '--out', why='the voted CSV')
    p.requires('--out', '--csv', why='--out is the voted CSV of hard voting')
    p.requires('--min-votes', '--csv', why='it counts the votes of CSVs')
    p.requires('--img-dir', '--csv', why='it checks the runs of the CSVs')
    p.requires('probs', '--out-dir', why='the fused probability folder')
    for option in ('--out-dir', '--weights', '--mixed-size', '--dtype'):
        p.requires(option, 'probs', why='soft voting of probability folders')
    return p.parse_args(argv)


@cli_main(flags={'prob_dirs': 'probs'})
def main(argv=None):
    from mmseg_ext.ensembling.ensemble import hard_vote_csv, soft_vote
    args = parse_args(argv)
    progress = not args.no_progress
    if args.csv:  # the parser's rules: --csv goes with --out, not with folders
        s = hard_vote_csv(args.csv, args.out, min_votes=args.min_votes, force=args.force,
                          progress=progress, img_dir=args.img_dir)
        print(f'hard vote: {s.models} CSVs, {s.images} images -> {s.out} '
              f'in {s.seconds:.1f} s')
        if args.img_dir is None:
            print('hard vote: note: runs were not checked against image sizes (the CSVs '
                  'carry none; give --img-dir to check them)')
        return
    if not args.probs or not args.out_dir:
        raise UsageError('give two or more probability folders and --out-dir '
                        '(or --csv ... --out)')
    s = soft_vote(args.probs, args.out_dir, weights=args.weights,
                  mixed_size=args.mixed_size, dtype=args.dtype, force=args.force,
                  progress=progress)
    print(f'ensemble: {s.models} models, {s.images} images -> {s.out} in {s.seconds:.1f} s')


if __name__ == '__main__':
    main()
