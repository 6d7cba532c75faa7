"""Test (and evaluate) a checkpoint with the stock mmengine runner (mmseg's interface).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out DIR] [--show]
                         [--show-dir DIR] [--tta] [--cfg-options ...] [--launcher ...]
"""

import sys

import _bootstrap  # noqa: F401  (makes the checkout importable)

from mmseg_ext import register_all_modules
from mmseg_ext.utils.cli import ToolParser, cfg_options_action, cli_main, number_in_range


def parse_args(argv=None):
    parser = ToolParser(description='Test (and evaluate) a segmentor')
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='where the metrics json and logs go')
    parser.add_argument('--out', help='directory to save the predictions as files '
                        'for offline evaluation')
    parser.add_argument('--show', action='store_true', help='show predictions')
    parser.add_argument('--show-dir', help='directory for painted predictions '
                        '(inside work_dir/<timestamp>/)')
    parser.add_argument('--wait-time', type=number_in_range(float, 0), default=2,
                        help='--show interval in seconds, >= 0 (default 2)')
    parser.add_argument('--cfg-options', nargs='+', action=cfg_options_action(),
                        help='override config entries, key=value')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--tta', action='store_true', help='test-time augmentation '
                        '(uses tta_model and tta_pipeline from the config)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return parser.parse_args(argv)


@cli_main(flags={'checkpoint': 'CHECKPOINT'})
def main(argv=None):
    args = parse_args(argv)
    register_all_modules()  # environment check first: one line when it cannot work
    from mmengine.dist import is_main_process

    from mmseg_ext.apis.evaluate import test_checkpoint
    from mmseg_ext.apis.runner_config import finish_distributed, set_local_rank, test_config
    from mmseg_ext.utils.cli import exit_now
    set_local_rank(args.local_rank)
    cfg = test_config(args.config, args.checkpoint, work_dir=args.work_dir,
                      out=args.out, show=args.show, show_dir=args.show_dir,
                      wait_time=args.wait_time, tta=args.tta,
                      cfg_options=args.cfg_options, launcher=args.launcher)
    metrics = test_checkpoint(cfg, args.checkpoint, config=args.config)
    if is_main_process():  # every rank holds the metrics; one line, in one write
        sys.stdout.write('test metrics: ' + ', '.join(f'{k}={v}' for k, v in metrics.items())
                         + '\n')
        sys.stdout.flush()
    if finish_distributed():  # a CPU rank: leave before interpreter shutdown
        exit_now(0)


if __name__ == '__main__':
    main()
