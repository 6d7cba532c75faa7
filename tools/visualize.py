"""Visual inspection: overlays, per-class metric charts, confusion matrices.

    python tools/visualize.py overlay PROBS --img-dir IMGS --out-dir OUT
                              [--gt GT] [--thresholds 0.5|th.json] [--alpha 0.45]
    python tools/visualize.py chart METRICS.json --out chart.png [--metrics Dice IoU]
    python tools/visualize.py confusion --out cm.png (--probs PROBS --gt LABELS | --matrix cm.npy)

overlay: one PNG per image, ground truth (when --gt has it) and prediction side by side,
each class filled in its palette colour and outlined. GT: a hand-bone data root with
outputs_json/, or a folder of <key>.png label maps / <key>.npy (C, H, W) masks.
See docs/visualization_and_pseudo_labels.md.
"""

import os.path as _osp
import sys as _sys

_sys.path.insert(0, _osp.dirname(_osp.abspath(__file__)))  # python -I leaves it off
import _bootstrap  # noqa: F401,E402  (makes the checkout importable)

from mmseg_ext.utils.cli import ToolParser, cli_main, number_in_range
from mmseg_ext.utils.errors import UsageError


def parse_args(argv=None):
    p = ToolParser(description='Draw predictions, metric charts, confusion')
    sub = p.add_subparsers(dest='cmd', required=True)
    o = sub.add_parser('overlay', help='ground truth | prediction PNG per image')
    o.add_argument('probs', role='input', help='probability folder (tools/inference.py)')
    o.add_argument('--img-dir', required=True, role='input', help='the images inference read')
    o.add_argument('--out-dir', required=True, role='output', help='new folder for the PNGs')
    o.add_argument('--gt', role='input', help='hand-bone root with outputs_json/, or label PNG folder')
    o.add_argument('--thresholds', role='input-or-value', help='multi-label threshold: a number or a JSON '
                   '{class: t} (tools/tune_thresholds.py); default 0.5')
    o.add_argument('--alpha', type=number_in_range(float, 0, 1), default=0.45,
                   help='fill opacity in [0, 1] (default 0.45)')
    o.add_argument('--outline', type=number_in_range(int, 0, 100), default=1,
                   help='outline width in pixels, 0-100 (default 1; 0: none)')
    o.add_argument('--palette', choices=['handbone', 'auto'], default='auto',
                   help='handbone: the HandBoneDataset palette (by class name); auto: '
                   'random colours (the same rule)')
    c = sub.add_parser('chart', help='per-class bar chart from a metrics JSON')
    c.add_argument('metrics', role='input', help='val_metrics.json or mmengine scalars.json')
    c.add_argument('--out', required=True, role='output', help='chart to write: .png (or no suffix), .jpg, .pdf or .svg')
    c.add_argument('--metrics', nargs='+', dest='names', role='text',
                   help='metrics to draw (default: all with per-class keys)')
    c.add_argument('--size', nargs=2, type=number_in_range(int, 100, 8000),
                   default=(1200, 500), metavar=('W', 'H'),
                   help='picture size in pixels, each 100-8000 (default 1200 500)')
    m = sub.add_parser('confusion', help='confusion-matrix heat map (multi-class)')
    m.add_argument('--out', required=True, role='output', help='chart to write: .png (or no suffix), .jpg, .pdf or .svg')
    m.add_argument('--probs', role='input', help='multi-class probability folder')
    m.add_argument('--gt', role='input', help='folder of <key>.png label maps')
    m.add_argument('--matrix', role='input', help='(C, C) .npy matrix of pixel counts (whole '
                   'numbers >= 0, rows = ground truth) instead of --probs/--gt')
    m.add_argument('--classes', nargs='+', role='text', help='class names (with --matrix)')
    m.add_argument('--counts', action='store_true', help='raw counts, not row-normalised')
    m.add_argument('--ignore-index', type=number_in_range(int, 0, 65535), default=255,
                   help='label value that is not a class (default 255; 16-bit label maps '
                   'of 256 or more classes need one >= their class count)')
    m.add_argument('--size', nargs=2, type=number_in_range(int, 100, 8000),
                   default=(800, 800), metavar=('W', 'H'),
                   help='picture size in pixels, each 100-8000 (default 800 800)')
    for s in (o, c, m):
        s.add_output_flags('replace an existing output')
    m.conflicts('--matrix', '--probs', '--gt', '--ignore-index',
                why='a matrix is drawn as it is; those options count one')
    m.requires('--classes', '--matrix', why='names for the rows of the matrix; --probs '
               'brings its own')
    m.requires('--probs', '--gt', why='the confusion counts compare the two')
    m.requires('--gt', '--probs', why='the confusion counts compare the two')
    m.requires('--ignore-index', '--probs', why='it applies to the --gt labels')
    return p.parse_args(argv)


def _overlay(args):
    from mmseg_ext.workflows.visualize import visualize_folder
    s = visualize_folder(args.img_dir, args.probs, args.out_dir, gt_root=args.gt,
                         thresholds=args.thresholds, palette=args.palette, alpha=args.alpha,
                         outline_px=args.outline, force=args.force,
                         progress=not args.no_progress)
    print(f'visualize: {s.images} image(s), {s.with_gt} with ground truth -> {s.out_dir}')


def _chart(args):
    from mmseg_ext.visualization.charts import (
        bar_chart,
        chart_classes,
        chart_format,
        read_class_metrics,
    )
    chart_format(args.out)  # before reading anything
    values = read_class_metrics(args.metrics, args.names)
    if args.names:
        unknown = [n for n in args.names if n not in values]
        if unknown:
            raise UsageError(f'{args.metrics}: no per-class {unknown} (has {list(values)})')
        values = {n: values[n] for n in args.names}
    bar_chart(values, args.out, force=args.force, size_px=tuple(args.size))
    classes = chart_classes(values)
    print(f'chart: {", ".join(values)} for {len(classes)} classes -> {args.out}')
    for metric, per_class in values.items():
        missing = [c for c in classes if c not in per_class]
        if missing:
            print(f'chart: {metric} has no value for {", ".join(missing)} (marked n/a)')


def _confusion(args):
    from mmseg_ext.visualization.charts import chart_format
    chart_format(args.out)  # before the counts are made
    from mmseg_ext.visualization.charts import (
        confusion_image,
        pixel_total,
        read_confusion_matrix,
    )
    if args.matrix:
        cm, classes = read_confusion_matrix(args.matrix, args.classes)
    elif args.probs and args.gt:
        from mmseg_ext.workflows.visualize import confusion_from_probs
        cm, classes = confusion_from_probs(args.probs, args.gt, args.ignore_index,
                                           progress=not args.no_progress)
    else:
        raise UsageError('confusion: give --matrix, or --probs and --gt')
    confusion_image(cm, classes, args.out, force=args.force, size_px=tuple(args.size),
                    normalize=not args.counts)
    print(f'confusion: {len(classes)} classes, {pixel_total(cm)} pixels -> {args.out}')
    absent = [c for c, row in zip(classes, cm) if not row.any()]
    if absent:
        print(f'confusion: no ground-truth pixel of {", ".join(absent)} (its row: n/a)')


@cli_main
def main(argv=None):
    args = parse_args(argv)
    {'overlay': _overlay, 'chart': _chart, 'confusion': _confusion}[args.cmd](args)


if __name__ == '__main__':
    main()
