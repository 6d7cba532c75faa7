"""Convert a COCO annotation file to label PNGs (offline; the data set needs no PNGs).

    python tools/coco_to_masks.py ANN.json OUT_DIR [--classes "Background,Paper,..."]
        [--background-name Background] [--draw-order area_desc|file|polygon_length]
        [--iscrowd paint|ignore|skip] [--skip-bad] [--img-root DIR] [--force]

Writes OUT_DIR/<file_name without extension>.png (uint8 class indices, 0 background,
255 ignored crowd regions), painted exactly as CocoSemanticDataset does. Refuses to
overwrite existing PNGs unless --force; rerunning gives identical files.
"""

import os.path as _osp
import sys as _sys

_sys.path.insert(0, _osp.dirname(_osp.abspath(__file__)))  # python -I leaves it off
import _bootstrap  # noqa: F401,E402  (makes the checkout importable)

from mmseg_ext.utils.cli import ToolParser, cli_main


def parse_args(argv=None):
    from mmseg_ext.datasets.coco_index import DRAW_ORDERS, ISCROWD_MODES
    parser = ToolParser(description=__doc__.split('\n')[0])
    parser.add_argument('ann_file', role='input', help='COCO annotation JSON')
    parser.add_argument('out_dir', role='output', help='output folder of the label PNGs')
    parser.add_argument('--classes', role='text', help='comma-separated class names, background first '
                        '(default: background, then the categories in id order)')
    parser.add_argument('--background-name', default='Background', role='text',
                        help='name of class 0 (default Background)')
    parser.add_argument('--draw-order', choices=DRAW_ORDERS, default='area_desc',
                        help='painting order where annotations overlap (later on top)')
    parser.add_argument('--iscrowd', choices=ISCROWD_MODES, default='paint')
    parser.add_argument('--skip-bad', action='store_true',
                        help='skip (and count) bad annotations instead of stopping')
    parser.add_argument('--img-root', role='input', help='check every image size against the JSON')
    parser.add_output_flags('replace an output folder this tool wrote before')
    return parser.parse_args(argv)


@cli_main
def main(argv=None):
    from mmseg_ext.preparation.coco_to_masks import coco_to_masks
    args = parse_args(argv)
    classes = [c.strip() for c in args.classes.split(',')] if args.classes else None
    summary = coco_to_masks(
        args.ann_file, args.out_dir, classes=classes, background_name=args.background_name,
        draw_order=args.draw_order, iscrowd=args.iscrowd,
        on_bad='skip' if args.skip_bad else 'raise', img_root=args.img_root,
        force=args.force, progress=not args.no_progress)
    print(summary.line())


if __name__ == '__main__':
    main()
