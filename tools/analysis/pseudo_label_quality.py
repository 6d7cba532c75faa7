"""How accurate multi-class pseudo-labels are at several confidence thresholds.

    python tools/analysis/pseudo_label_quality.py PROBS --gt LABEL_DIR
        [--pixel-conf 0.5 0.7 0.8 0.9 0.95]

PROBS: probabilities of images whose true labels the training does not use (for
example the "unlabelled" part of a labelled training set); LABEL_DIR/<key>.png their
true labels. Prints, per threshold, the share of labelled pixels kept and the accuracy
and mIoU of the kept ones: the evidence for choosing --pixel-conf of
tools/self_train.py without looking at the validation set.
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import _bootstrap  # noqa: E402,F401  (makes the checkout importable)

from mmseg_ext.utils.cli import ToolParser, cli_main, number_in_range  # noqa: E402


def parse_args(argv=None):
    p = ToolParser(description='Pseudo-label accuracy against held-back labels')
    p.add_argument('probs', role='input',
                   help='multi-class probability folder (tools/inference.py)')
    p.add_argument('--gt', required=True, role='input', help='folder of the true label PNGs')
    p.add_argument('--pixel-conf', nargs='+', type=number_in_range(float, 0, 1),
                   default=[0.0, 0.5, 0.7, 0.8, 0.9, 0.95], help='thresholds in [0, 1]')
    p.add_argument('--ignore-index', type=number_in_range(int, 0, 65535), default=255,
                   help='label value that is not a class (default 255; 16-bit label maps '
                   'of 256 or more classes need one >= their class count)')
    p.add_argument('--no-progress', action='store_true')
    return p.parse_args(argv)


@cli_main
def main(argv=None):
    from mmseg_ext.workflows.pseudo_label import pseudo_label_quality
    args = parse_args(argv)
    rows = pseudo_label_quality(args.probs, args.gt, args.pixel_conf,
                                ignore_index=args.ignore_index,
                                progress=not args.no_progress)
    print('| pixel_conf | pixels kept | accuracy of kept | mIoU of kept |')
    print('|---|---|---|---|')
    for r in rows:
        print(f'| {r.pixel_conf:g} | {_share(r.coverage, "{:.1f}%")} | '
              f'{_share(r.accuracy, "{:.1f}%")} | {_share(r.miou, "{:.2f}")} |')


def _share(value, form: str) -> str:
    """A share in percent, or ``n/a`` where it has nothing to be a share of."""
    return 'n/a' if value is None else form.format(100 * value)


if __name__ == '__main__':
    main()
