"""Run the project's demo: synthetic data -> train -> validate -> report where outputs are.

    python tools/demo.py [--work-dir work_dirs/demo_shapes]
"""
import argparse

import _bootstrap  # noqa: F401  (checks the environment, registers mmseg_ext)

from mmseg_ext.utils.cli import cli_main


@cli_main
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default='work_dirs/demo_shapes')
    args = parser.parse_args(argv)
    from mmseg_ext.apis.demo import run_demo
    result = run_demo(args.work_dir)
    print('\n=== demo finished ===')
    print(f'work dir   : {result.work_dir}')
    print(f'checkpoint : {result.checkpoint}')
    print(f'metrics    : {result.metrics_file}')
    print('             ' + ', '.join(f'{k}={v:.2f}' for k, v in result.metrics.items()))


if __name__ == '__main__':
    main()
