"""Train a segmentor with the stock mmengine runner (mmseg's tools/train.py interface).

    python tools/train.py CONFIG [--work-dir DIR] [--resume] [--amp]
                          [--cfg-options key=value ...] [--launcher pytorch|slurm|mpi]
"""

import os.path as _osp
import sys
import sys as _sys

_sys.path.insert(0, _osp.dirname(_osp.abspath(__file__)))  # python -I leaves it off
import _bootstrap  # noqa: F401,E402  (makes the checkout importable)

from mmseg_ext import register_all_modules
from mmseg_ext.utils.cli import ToolParser, cfg_options_action, cli_main


def parse_args(argv=None):
    parser = ToolParser(description='Train a segmentor')
    parser.add_argument('config', role='config', help='train config file path')
    parser.add_argument('--work-dir', role='work-dir', help='where logs and checkpoints go '
                        '(default: ./work_dirs/<config name>)')
    parser.add_argument('--resume', action='store_true',
                        help='resume from the latest checkpoint in the work dir')
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision (needs a GPU)')
    parser.add_argument('--cfg-options', nargs='+', action=cfg_options_action(), role='text',
                        help='override config entries, e.g. '
                        'train_cfg.max_iters=100 model.backbone.init_cfg=None')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher for distributed training')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return parser.parse_args(argv)


@cli_main
def main(argv=None):
    args = parse_args(argv)
    register_all_modules()  # environment check first: one line when it cannot work
    from mmseg_ext.postprocessing.oof_decisions import collapsed_class_warning
    from mmseg_ext.training.runner import finish_distributed, set_local_rank, train_config
    from mmseg_ext.training.tool_runner import ToolRunner
    from mmseg_ext.utils.cli import exit_now
    set_local_rank(args.local_rank)
    cfg = train_config(args.config, work_dir=args.work_dir, resume=args.resume,
                       amp=args.amp, cfg_options=args.cfg_options,
                       launcher=args.launcher)
    from mmseg_ext.config.checks import check_data_roots
    check_data_roots(cfg, args.config)  # before the runner makes the work dir
    runner = ToolRunner.from_cfg(cfg)
    runner.train()
    warning = collapsed_class_warning(runner.message_hub)
    if warning and runner.rank == 0:
        print(f'warning: {warning}', file=sys.stderr, flush=True)
    del runner  # its DDP wrapper holds the process group
    if finish_distributed():  # a CPU rank: leave before interpreter shutdown
        exit_now(0)


if __name__ == '__main__':
    main()
