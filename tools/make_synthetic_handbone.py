"""Write a synthetic hand-bone X-ray data set in the competition layout.

    python tools/make_synthetic_handbone.py --out DIR [--patients 8]
        [--images-per-patient 2] [--size 256x256] [--test-patients 1] [--seed 0]
        [--force]

Writes DIR/train/DCM/IDxxx/*.png + DIR/train/outputs_json/IDxxx/*.json and
DIR/test/DCM/IDxxx/*.png (see docs/handbone.md). A non-empty DIR is refused unless
--force, which replaces DIR/train and DIR/test and leaves anything else in DIR alone.
"""
import argparse
import os
import os.path as osp
import shutil
import tempfile
import time

import _bootstrap  # noqa: F401  (checks the environment, registers mmseg_ext)

from mmseg_ext.utils.cli import cli_main
from mmseg_ext.utils.errors import UsageError

GENERATED = ('train', 'test')


def parse_size(text: str):
    """``'HxW'`` or ``'N'`` (square) -> ``(H, W)``."""
    parts = text.lower().split('x')
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or min(values) < 16:
        raise argparse.ArgumentTypeError(f'--size must be HxW (or N), each >= 16, got '
                                         f'{text!r}')
    return tuple(values)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--patients', type=int, default=8, help='training patients')
    parser.add_argument('--images-per-patient', type=int, default=2)
    parser.add_argument('--size', type=parse_size, default=(256, 256),
                        help='image size HxW in pixels (default 256x256)')
    parser.add_argument('--test-patients', type=int, default=1)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--force', action='store_true',
                        help='replace DIR/train and DIR/test in a non-empty DIR')
    return parser.parse_args(argv)


def _install(tmp: str, out: str, replace: bool) -> None:
    """Move the generated folders from ``tmp`` into ``out``."""
    if not replace:
        if osp.isdir(out):
            os.rmdir(out)  # empty
        os.rename(tmp, out)
        return
    for name in GENERATED:
        target = osp.join(out, name)
        if osp.isdir(target):
            shutil.rmtree(target)
        elif osp.exists(target):
            os.remove(target)
        if osp.isdir(osp.join(tmp, name)):
            os.rename(osp.join(tmp, name), target)
    shutil.rmtree(tmp)


@cli_main
def main(argv=None):
    args = parse_args(argv)
    from mmseg_ext.datasets.synthetic import make_handbone_dataset

    out = osp.abspath(args.out)
    if osp.exists(out) and not osp.isdir(out):
        raise UsageError(f'{out}: exists and is not a folder')
    non_empty = osp.isdir(out) and bool(os.listdir(out))
    if non_empty and not args.force:
        raise UsageError(f'{out}: folder is not empty (use --force to replace its train/ '
                        'and test/)')
    if args.patients < 0 or args.test_patients < 0 or args.images_per_patient < 1:
        raise UsageError('--patients/--test-patients must be >= 0 and '
                        '--images-per-patient >= 1')
    parent = osp.dirname(out)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f'.{osp.basename(out)}.tmp-', dir=parent)
    start = time.time()
    try:
        info = make_handbone_dataset(
            tmp, num_patients=args.patients, images_per_patient=args.images_per_patient,
            size=args.size, num_test_patients=args.test_patients, seed=args.seed,
            progress=True)
        _install(tmp, out, replace=non_empty)
    finally:
        if osp.isdir(tmp):
            shutil.rmtree(tmp)
    h, w = args.size
    print(f'wrote {info.train_images} train images ({info.train_patients} patients, '
          f'{info.annotations} polygons) and {info.test_images} test images '
          f'({info.test_patients} patients), {h}x{w}, to {out} in '
          f'{time.time() - start:.1f} s')


if __name__ == '__main__':
    main()
