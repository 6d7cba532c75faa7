"""Write a synthetic hand-bone X-ray data set in the competition layout.

    python tools/make_synthetic_handbone.py --out DIR [--patients 8]
        [--images-per-patient 2] [--size 256x256] [--test-patients 1] [--seed 0]
        [--force] [--no-progress]

Writes DIR/train/DCM/IDxxx/*.png + DIR/train/outputs_json/IDxxx/*.json and
DIR/test/DCM/IDxxx/*.png (see docs/handbone.md), recorded in
DIR/.mmseg_ext_manifest.json. --size is at most the pixel cap (MMSEG_EXT_MAX_PIXELS,
default 2^28 pixels). A non-empty DIR is refused unless --force, which replaces
DIR/train and DIR/test only when everything in them is what this tool wrote (a DIR
without the manifest, or a file of yours in train/ or test/, is refused) and leaves
anything else in DIR alone.
"""
import argparse
import os.path as _osp
import os.path as osp
import sys as _sys
import time

_sys.path.insert(0, _osp.dirname(_osp.abspath(__file__)))  # python -I leaves it off
import _bootstrap  # noqa: F401,E402  (makes the checkout importable)

from mmseg_ext.utils.cli import ToolParser, cli_main, number_in_range


def size_arg(text: str):
    """``'HxW'`` or ``'N'`` (square) -> ``(H, W)``."""
    from mmseg_ext.io.images import parse_size
    from mmseg_ext.preparation.synthetic import MIN_SIDE, check_size
    from mmseg_ext.utils.errors import MmsegExtError
    values = parse_size(text)
    if values is None or min(values) < MIN_SIDE:
        raise argparse.ArgumentTypeError(f'must be HxW (or N), each >= {MIN_SIDE}, got '
                                         f'{text!r}')
    try:
        check_size(tuple(values))  # at most max_pixels() pixels per image
    except MmsegExtError as exc:
        raise argparse.ArgumentTypeError(str(exc).split(': ', 1)[-1]) from None
    return tuple(values)


def parse_args(argv=None):
    parser = ToolParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', required=True, role='output', help='output folder')
    parser.add_argument('--patients', type=number_in_range(int, 0), default=8,
                        help='training patients, >= 0 (default 8)')
    parser.add_argument('--images-per-patient', type=number_in_range(int, 1), default=2,
                        help='>= 1 (default 2)')
    parser.add_argument('--size', type=size_arg, default=(256, 256),
                        help='image size HxW in pixels, each >= 16, H*W at most the pixel cap '
                        '(default 256x256)')
    parser.add_argument('--test-patients', type=number_in_range(int, 0), default=1,
                        help='>= 0 (default 1)')
    parser.add_argument('--seed', type=number_in_range(int, 0, 2**32 - 1), default=0,
                        help='random seed in [0, 2^32-1] (default 0)')
    parser.add_output_flags('replace DIR/train and DIR/test in a non-empty DIR')
    return parser.parse_args(argv)


@cli_main(flags={'num_patients': '--patients', 'num_test_patients': '--test-patients'})
def main(argv=None):
    args = parse_args(argv)
    from mmseg_ext.preparation.synthetic import write_synthetic_handbone
    start = time.time()
    info = write_synthetic_handbone(
        args.out, num_patients=args.patients, images_per_patient=args.images_per_patient,
        size=args.size, num_test_patients=args.test_patients, seed=args.seed,
        force=args.force, progress=not args.no_progress)
    out = osp.abspath(args.out)
    h, w = args.size
    print(f'wrote {info.train_images} train images ({info.train_patients} patients, '
          f'{info.annotations} polygons) and {info.test_images} test images '
          f'({info.test_patients} patients), {h}x{w}, to {out} in '
          f'{time.time() - start:.1f} s')


if __name__ == '__main__':
    main()
