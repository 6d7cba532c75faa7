"""Search per-class thresholds that maximise the competition Dice on a validation set.

    python tools/tune_thresholds.py PROBS --gt GT --out thresholds.json
                                    [--search 0.05 0.95] [--default 0.5] [--force]

GT: a hand-bone data root (with outputs_json/ polygons, e.g. data/train), or a folder of
per-image masks named like the images: <key>.npy (C, H, W) or <key>.png label maps.
The JSON ({class: threshold}) is what make_submission.py --thresholds reads.
"""

import os.path as _osp
import sys as _sys

_sys.path.insert(0, _osp.dirname(_osp.abspath(__file__)))  # python -I leaves it off
import _bootstrap  # noqa: F401,E402  (makes the checkout importable)

from mmseg_ext.utils.cli import ToolParser, cli_main, number_in_range


def parse_args(argv=None):
    p = ToolParser(description='Per-class threshold search (competition Dice)')
    p.add_argument('probs', role='input', help='multi-label probability folder of validation images')
    p.add_argument('--gt', required=True, role='input', help='ground truth: data root with outputs_json/, '
                   'or a folder of <key>.npy / <key>.png masks')
    p.add_argument('--out', role='output', help='thresholds JSON to write (default: print only)')
    p.add_argument('--search', nargs=2, type=number_in_range(float, 0, 1), default=(0.05, 0.95),
                   metavar=('LO', 'HI'), help='threshold range searched (default 0.05 0.95)')
    p.add_argument('--default', type=number_in_range(float, 0, 1), default=0.5,
                   help='threshold to compare with (default 0.5)')
    p.add_output_flags('overwrite an existing --out')
    p.requires('--force', '--out', why='it replaces an existing --out')
    return p.parse_args(argv)


@cli_main
def main(argv=None):
    from mmseg_ext.postprocessing.thresholds import tune_thresholds
    args = parse_args(argv)
    r = tune_thresholds(args.probs, args.gt, out=args.out, search=tuple(args.search),
                        default=args.default, force=args.force,
                        progress=not args.no_progress)
    print(r.table(args.default))
    mean_d = sum(r.dice_default.values()) / len(r.dice_default)
    mean_t = sum(r.dice_tuned.values()) / len(r.dice_tuned)
    print(f'thresholds: {r.images} images, mean Dice {mean_d:.4f} at {args.default} -> '
          f'{mean_t:.4f} tuned' + (f', written to {args.out}' if args.out else '') +
          f' in {r.seconds:.1f} s')


if __name__ == '__main__':
    main()
