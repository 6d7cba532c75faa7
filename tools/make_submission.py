"""Write a competition CSV from probabilities, or check a CSV before upload.

    python tools/make_submission.py PROBS --format handbone|trash|port --out sub.csv
        [--thresholds thr.json | --threshold 0.5] [--img-dir DIR]
        [--test-json test.json] [--sample sample_submission.csv]
        [--min-area N|FILE.json] [--keep-largest K|FILE.json] [--connectivity 4|8]
        [--force]

    python tools/make_submission.py --check sub.csv --format F
        [--img-dir DIR] [--test-json test.json] [--sample sample.csv]

``--check`` prints every problem as FILE:LINE: what, then a summary line, and exits 1
when there is an error (warnings alone exit 0).
"""

import os.path as _osp
import sys
import sys as _sys

_sys.path.insert(0, _osp.dirname(_osp.abspath(__file__)))  # python -I leaves it off
import _bootstrap  # noqa: F401,E402  (makes the checkout importable)

from mmseg_ext.utils.cli import ToolParser, cli_main, number_in_range
from mmseg_ext.utils.errors import UsageError


def parse_args(argv=None):
    p = ToolParser(description='Probabilities -> submission CSV; CSV checker')
    p.add_argument('probs', nargs='?', role='input', help='probability folder')
    p.add_argument('--format', required=True, choices=['handbone', 'trash', 'port'],
                   help='competition format (docs/submission.md)')
    p.add_argument('--out', role='output', help='output CSV')
    p.add_argument('--check', metavar='CSV', role='input', help='validate this CSV instead of writing one')
    p.add_argument('--thresholds', role='input-or-value', help='JSON {class: threshold} (multi-label; from '
                   'tools/tune_thresholds.py); unnamed classes use --threshold')
    p.add_argument('--threshold', type=number_in_range(float, 0, 1), default=0.5,
                   help='default multi-label threshold, foreground = p > t (default 0.5)')
    p.add_argument('--img-dir', role='input', help='test images: writing checks every image has '
                   'probabilities; --check reads names and sizes from them')
    p.add_argument('--test-json', role='input', help='trash: COCO test.json giving the row order')
    p.add_argument('--sample', role='input', help='port: sample submission giving rows and their order')
    p.add_argument('--min-area', role='input-or-value', help='drop connected components smaller than N pixels '
                   '(a number, or JSON {class: N}; >= 0, 0: none)')
    p.add_argument('--keep-largest', role='input-or-value', help='keep only the K largest components per class '
                   '(a number, or JSON {class: K}; >= 0, 0: no limit)')
    p.add_argument('--connectivity', type=int, default=8, choices=[4, 8],
                   help='component connectivity (default 8)')
    p.add_argument('--competition-classes', action='store_true',
                   help='handbone: write / require the 29 competition classes (default: '
                   'write the classes the probability folder carries, in its order; '
                   '--check: the classes the CSV carries)')
    p.add_argument('--classes', metavar='SPEC', role='input-or-value',
                   help='handbone --check: the expected classes, as a probability folder '
                   '(its classes), a file (one name a line, or a JSON list) or a,b,c '
                   '(default: the classes the CSV carries, the same for every image)')
    p.add_output_flags('overwrite an existing --out')
    p.conflicts('--check', 'probs', '--out', '--thresholds', '--threshold', '--min-area',
                '--keep-largest', '--connectivity', '--force',
                why='--check reads a CSV; those options make one')
    p.requires('--classes', '--check', why="writing uses the probability folder's "
               'classes, or --competition-classes')
    p.conflicts('--classes', '--competition-classes', why='give one class list')
    p.requires('probs', '--out', why='the CSV to write')
    p.requires('--out', 'probs', why='the probabilities to write it from')
    p.requires_one_of('--connectivity', '--min-area', '--keep-largest',
                      why='it defines the components they remove')
    args = p.parse_args(argv)
    if (args.thresholds is not None and not _osp.lexists(args.thresholds)
            and _is_number(args.thresholds) and p.is_given('--threshold', args)):
        p.fail('--threshold', f'does not go with --thresholds {args.thresholds}, a number '
               'that already sets every class (give one of them, or a JSON file for '
               '--thresholds)')
    return args


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def run_check(args) -> int:
    from mmseg_ext.io.submission import get_format, read_class_list
    from mmseg_ext.submission.check import check_submission
    classes = read_class_list(args.classes) if args.classes else None
    if args.competition_classes:
        classes = get_format(args.format).classes
    report = check_submission(args.check, args.format, img_dir=args.img_dir,
                              test_json=args.test_json, sample=args.sample,
                              classes=classes, progress=not args.no_progress)
    for line in report.errors:
        print(f'error: {line}')
    for line in report.warnings:
        print(f'warning: {line}')
    status = 'OK' if report.ok else 'FAILED'
    against = f'; checked against {report.classes_used}' if report.classes_used else ''
    print(f'check {status}: {args.check}: {report.rows} rows, {len(report.errors)} '
          f'error(s), {len(report.warnings)} warning(s) ({args.format}{against})')
    return 0 if report.ok else 1


@cli_main
def main(argv=None):
    args = parse_args(argv)
    if args.check:
        return run_check(args)
    if not args.probs or not args.out:
        raise UsageError('give PROBS and --out (or --check CSV)')
    from mmseg_ext.io.submission import get_format
    from mmseg_ext.submission.make import make_submission
    fmt = get_format(args.format)
    s = make_submission(args.probs, args.format, args.out, thresholds=args.thresholds,
                        default_threshold=args.threshold, img_dir=args.img_dir,
                        test_json=args.test_json, sample=args.sample,
                        min_area=args.min_area, keep_largest=args.keep_largest,
                        connectivity=args.connectivity, force=args.force,
                        progress=not args.no_progress,
                        classes=fmt.classes if args.competition_classes else None)
    print(f'submission: {s.images} images, {s.rows} rows ({s.empty} empty masks) -> '
          f'{s.out} in {s.seconds:.1f} s')
    if s.full_read_as_empty:
        print(f'warning: {s.full_read_as_empty} row(s) predict a class on every pixel of '
              f'the image; the {args.format} format writes that as its empty mask '
              f'({fmt.rle.empty}), so the scorer reads them as empty', file=sys.stderr)


if __name__ == '__main__':
    main()
