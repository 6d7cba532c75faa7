"""Pseudo-labels from a probability folder, in the data set's own format.

    python tools/pseudo_label.py PROBS --out-dir OUT [--format handbone-json|label-png]
           [--thresholds 0.5|th.json] [--pixel-conf 0.9] [--max-uncertain 1.0]
           [--min-mean-conf 0] [--epsilon 0] [--min-area 0] [--force]

handbone-json (multi-label): OUT/outputs_json/<key>.json polygons per accepted image.
label-png (multi-class): OUT/<key>.png argmax, 255 where max probability < --pixel-conf.
OUT/accepted.txt lists accepted images (a data set ann_file); OUT/pseudo_labels.json
has per-image confidence. See docs/visualization_and_pseudo_labels.md.
"""

import os.path as _osp
import sys as _sys

_sys.path.insert(0, _osp.dirname(_osp.abspath(__file__)))  # python -I leaves it off
import _bootstrap  # noqa: F401,E402  (makes the checkout importable)

from mmseg_ext.utils.cli import ToolParser, cli_main, number_in_range


def parse_args(argv=None):
    p = ToolParser(description='Write pseudo-labels from probabilities')
    p.add_argument('probs', role='input', help='probability folder (tools/inference.py)')
    p.add_argument('--out-dir', required=True, role='output', help='new output folder')
    p.add_argument('--format', default='handbone-json', choices=['handbone-json', 'label-png'])
    p.add_argument('--thresholds', role='input-or-value', help='multi-label foreground threshold: a number or a '
                   'JSON {class: t} (default 0.5)')
    p.add_pseudo_label_flags()
    p.add_argument('--epsilon', type=number_in_range(float, 0), default=0.0,
                   help='polygon simplification in pixels (cv2.approxPolyDP; default 0)')
    p.add_argument('--min-area', type=number_in_range(int, 0), default=0,
                   help='drop predicted components smaller than this many pixels')
    p.add_output_flags('replace an existing --out-dir')
    p.conflicts('--format=label-png', '--thresholds', '--max-uncertain', '--epsilon',
                '--min-area', why='they shape multi-label polygons; label PNGs keep the '
                'argmax above --pixel-conf')
    return p.parse_args(argv)


@cli_main(flags={'fmt': '--format'})
def main(argv=None):
    from mmseg_ext.workflows.pseudo_label import pseudo_label_folder
    args = parse_args(argv)
    s = pseudo_label_folder(args.probs, args.out_dir, fmt=args.format, thresholds=args.thresholds,
                            pixel_conf=args.pixel_conf, max_uncertain=args.max_uncertain,
                            min_mean_conf=args.min_mean_conf, epsilon=args.epsilon,
                            min_area=args.min_area, force=args.force,
                            progress=not args.no_progress)
    print(f'pseudo-label: {s.images} image(s), {s.accepted} accepted, {s.rejected} '
          f'rejected -> {s.out_dir}')


if __name__ == '__main__':
    main()
