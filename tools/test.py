"""Test (and evaluate) a checkpoint with the stock mmengine runner (mmseg's interface).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out DIR] [--show]
                         [--show-dir DIR] [--tta] [--cfg-options ...] [--launcher ...]
"""

import os.path as _osp
import sys
import sys as _sys

_sys.path.insert(0, _osp.dirname(_osp.abspath(__file__)))  # python -I leaves it off
import _bootstrap  # noqa: F401,E402  (makes the checkout importable)

from mmseg_ext import register_all_modules
from mmseg_ext.utils.cli import ToolParser, cfg_options_action, cli_main, number_in_range


def parse_args(argv=None):
    parser = ToolParser(description='Test (and evaluate) a segmentor')
    parser.add_argument('config', role='config', help='config file path')
    parser.add_argument('checkpoint', role='input', help='checkpoint file')
    parser.add_argument('--work-dir', role='work-dir', help='where the metrics json and logs go')
    parser.add_argument('--out', role='output', help='new or empty directory to save the '
                        'predictions as files for offline evaluation')
    parser.add_argument('--show', action='store_true', help='show predictions')
    parser.add_argument('--show-dir', role='output',
                        help='new or empty directory for painted predictions')
    parser.add_argument('--wait-time', type=number_in_range(float, 0), default=2,
                        help='--show interval in seconds, >= 0; 0 waits for a key press '
                        '(default 2)')
    parser.add_argument('--cfg-options', nargs='+', action=cfg_options_action(), role='text',
                        help='override config entries, key=value')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--tta', action='store_true', help='test-time augmentation '
                        '(uses tta_model and tta_pipeline from the config)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    parser.requires('--wait-time', '--show', why='the interval between shown predictions')
    parser.conflicts('--show', '--show-dir', why="mmseg's visualization hook shows each "
                     'picture or saves it, never both: give one')
    return parser.parse_args(argv)


#: test metrics that write prediction files to ``output_dir`` (mmseg's own)
WRITES_PREDICTIONS = ('IoUMetric', 'CityscapesMetric')


def check_out_metric(cfg, out) -> None:
    """``--out`` saves predictions through the test metric's ``output_dir``: refuse it
    when a metric of the config writes none (the multi-label Dice and the per-image IoU
    would ignore it and exit 0 with no files)."""
    from mmseg_ext.utils.errors import InvalidArgumentError
    if out is None:
        return
    evaluators = cfg.test_evaluator
    for ev in evaluators if isinstance(evaluators, (list, tuple)) else [evaluators]:
        kind = ev.get('type', '') if isinstance(ev, dict) else type(ev).__name__
        name = str(getattr(kind, '__name__', kind)).split('.')[-1]
        if name not in WRITES_PREDICTIONS:
            raise InvalidArgumentError('out', f'the test metric {name} writes no prediction '
                                       'files; save probabilities with tools/inference.py '
                                       '--out-dir instead')


@cli_main(flags={'checkpoint': 'CHECKPOINT'})
def main(argv=None):
    args = parse_args(argv)
    register_all_modules()  # environment check first: one line when it cannot work
    from mmengine.dist import is_main_process

    from mmseg_ext.training.runner import (
        finish_distributed,
        set_local_rank,
        test_checkpoint,
        test_config,
    )
    from mmseg_ext.utils.cli import exit_now
    set_local_rank(args.local_rank)
    cfg = test_config(args.config, args.checkpoint, work_dir=args.work_dir,
                      out=args.out, show=args.show, show_dir=args.show_dir,
                      wait_time=args.wait_time, tta=args.tta,
                      cfg_options=args.cfg_options, launcher=args.launcher)
    check_out_metric(cfg, args.out)
    metrics = test_checkpoint(cfg, args.checkpoint, config=args.config)
    if is_main_process():  # every rank holds the metrics; one line, in one write
        sys.stdout.write('test metrics: ' + ', '.join(f'{k}={v}' for k, v in metrics.items())
                         + '\n')
        sys.stdout.flush()
    if finish_distributed():  # a CPU rank: leave before interpreter shutdown
        exit_now(0)


if __name__ == '__main__':
    main()
