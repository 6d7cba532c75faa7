"""Write k-fold split files: stratified by class presence, grouped, deterministic.

    python tools/kfold.py coco ANN.json --out DIR [-k 5] [--seed 0] [--group-regex RE]
                          [--lists] [--force] [--no-progress]
    python tools/kfold.py folder IMG_DIR --out DIR [--labels LABEL_DIR]
                          [--img-suffix .jpg] [--seg-suffix .png] [--ignore-index 255]
                          [--group-regex RE] [-k 5] [--seed 0] [--force] [--no-progress]
    python tools/kfold.py handbone ROOT --out DIR [-k 5] [--seed 0] [--force]
                          [--no-progress]

Outputs in DIR: ``train_fold{j}`` / ``val_fold{j}`` for j < k (``.json`` COCO files for
``coco``; ``.txt`` lists otherwise) and ``folds.csv`` (name, group, fold), recorded in
DIR/.mmseg_ext_manifest.json. Existing split files are never overwritten without
``--force``; ``--force`` replaces only split files this tool wrote (unchanged since) and
removes its files of an earlier run that this run does not write; a DIR holding files
this tool did not write is refused. See docs/coco_and_folders.md.
"""
import os.path as _osp
import sys as _sys

_sys.path.insert(0, _osp.dirname(_osp.abspath(__file__)))  # python -I leaves it off
import _bootstrap  # noqa: F401,E402  (makes the checkout importable)

from mmseg_ext.utils.cli import ToolParser, cli_main, file_suffix, number_in_range


def parse_args(argv=None):
    parser = ToolParser(description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='source', required=True)
    common = ToolParser(add_help=False, debug=False)
    common.add_argument('--out', required=True, role='output', help='output folder of the split files')
    common.add_argument('-k', '--num-folds', type=number_in_range(int, 2), default=5,
                        help='number of folds, >= 2 (default 5)')
    common.add_argument('--seed', type=number_in_range(int, 0, 2**32 - 1), default=0,
                        help='seed in [0, 2^32-1] (same seed, same folds)')
    common.add_output_flags('replace the split files of an earlier run of this tool')

    coco = sub.add_parser('coco', parents=[common],
                          help='COCO file: stratified by category presence')
    coco.add_argument('ann_file', role='input', help='COCO annotation JSON')
    coco.add_argument('--group-regex', role='text', help='group images by this regex on file_name '
                      '(first capture group, else the match)')
    coco.add_argument('--lists', action='store_true',
                      help='also write .txt image lists (file_name per line)')

    folder = sub.add_parser('folder', parents=[common],
                            help='image folder (+ label folder: stratified by classes)')
    folder.add_argument('img_dir', role='input', help='image folder (searched recursively)')
    folder.add_argument('--labels', dest='seg_dir', role='input', help='label-PNG folder (same stems)')
    folder.add_argument('--img-suffix', default='.jpg', role='text', type=file_suffix,
                        help='image file suffix (default .jpg)')
    folder.add_argument('--seg-suffix', default='.png', role='text', type=file_suffix,
                        help='label file suffix (default .png)')
    folder.add_argument('--ignore-index', type=number_in_range(int, 0, 255), default=255,
                        help='label value that is not a class, in [0, 255] (default 255)')
    folder.add_argument('--group-regex', role='text', help='group images by this regex on the path '
                        'under IMG_DIR (first capture group, else the match)')

    hand = sub.add_parser('handbone', parents=[common],
                          help='hand-bone root (DCM/IDxxx/*.png): grouped by patient')
    hand.add_argument('root', role='input', help='folder holding DCM/ (and outputs_json/)')
    for option in ('--seg-suffix', '--ignore-index'):
        folder.requires(option, '--labels', why='it applies to the label PNGs')
    return parser.parse_args(argv)


@cli_main
def main(argv=None):
    from mmseg_ext.preparation import kfold
    args = parse_args(argv)
    common = dict(num_folds=args.num_folds, seed=args.seed, force=args.force)
    if args.source == 'coco':
        paths, table = kfold.kfold_coco(args.ann_file, args.out, group_regex=args.group_regex,
                                         lists=args.lists, **common)
    elif args.source == 'folder':
        paths, table = kfold.kfold_folder(
            args.img_dir, args.out, seg_dir=args.seg_dir, img_suffix=args.img_suffix,
            seg_suffix=args.seg_suffix, ignore_index=args.ignore_index,
            group_regex=args.group_regex, progress=not args.no_progress, **common)
    else:
        paths, table = kfold.kfold_handbone(args.root, args.out, **common)
    print(table)
    print(f'wrote {len(paths)} files ({args.num_folds} folds, seed {args.seed}) '
          f'to {args.out}')


if __name__ == '__main__':
    main()
