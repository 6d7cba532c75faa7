"""Run the project's demo end to end on CPU (a few minutes on 2 cores):

synthetic hand-bone X-rays in the competition layout -> train a multi-label model ->
validate with the competition Dice -> predict the test images -> hand-bone submission CSV
-> check the CSV.

    python tools/demo.py [--work-dir work_dirs/demo_handbone] [--max-iters N]
"""

import os.path as _osp
import sys as _sys

_sys.path.insert(0, _osp.dirname(_osp.abspath(__file__)))  # python -I leaves it off
import _bootstrap  # noqa: F401,E402  (makes the checkout importable)

from mmseg_ext import register_all_modules
from mmseg_ext.utils.cli import ToolParser, cli_main, number_in_range


@cli_main
def main(argv=None):
    parser = ToolParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default='work_dirs/demo_handbone', role='output',
                        help='output folder, owned by the demo (a rerun replaces it once complete)')
    parser.add_argument('--max-iters', type=number_in_range(int, 1), default=None,
                        help='training iterations (default: the config, 1500)')
    args = parser.parse_args(argv)
    register_all_modules()  # environment check first: one line when it cannot work
    from mmseg_ext.workflows.demo import run_demo
    result = run_demo(args.work_dir, max_iters=args.max_iters)
    print('\n=== demo finished ===')
    print(f'work dir    : {result.work_dir}  (logs, config, data/)')
    print(f'checkpoint  : {result.checkpoint}')
    print(f'val metrics : {result.metrics_file}  mDice={result.metrics.get("mDice", 0):.4f}'
          f'  mDice_dataset={result.metrics.get("mDice_dataset", 0):.4f}')
    print(f'probabilities: {result.probs_dir}')
    print(f'submission  : {result.submission}  ({result.submission_rows} rows, checked)')


if __name__ == '__main__':
    main()
