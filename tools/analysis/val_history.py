"""Every validation of a training run, one row each: how each class's metric moved.

    python tools/analysis/val_history.py WORK_DIR_OR_SCALARS [--metric Dice]

Reads mmengine's ``scalars.json`` (the newest run under a work dir of tools/train.py, or
the file given) and prints a table: one row per validation (the iteration it followed),
one column per class. A class still at 0 while the others rose is being learnt late
(or not at all): validate more often (``--cfg-options train_cfg.val_interval=N``) to
see which, and see docs/semi_supervised.md for an example.
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import _bootstrap  # noqa: E402,F401  (makes the checkout importable)

from mmseg_ext.utils.cli import ToolParser, cli_main  # noqa: E402


def parse_args(argv=None):
    p = ToolParser(description='Per-class metric at every validation of a run')
    p.add_argument('path', role='input', help='work dir of tools/train.py, or a scalars.json')
    p.add_argument('--metric', default='Dice', role='text',
                   help='metric whose <metric>.<class> values are shown (default Dice; '
                   'IoU for mmseg\'s IoUMetric)')
    return p.parse_args(argv)


@cli_main
def main(argv=None):
    from mmseg_ext.evaluation.val_history import history_classes, validation_history
    args = parse_args(argv)
    history = validation_history(args.path, args.metric)
    classes = history_classes(history)
    print('| iteration | ' + ' | '.join(classes) + ' |')
    print('|---' * (len(classes) + 1) + '|')
    for v in history:
        cells = [f'{v.values[c]:.3f}' if c in v.values else '-' for c in classes]
        print(f'| {v.step} | ' + ' | '.join(cells) + ' |')


if __name__ == '__main__':
    main()
