"""Fast RLE encoder vs the straightforward numpy encoder on 2048x2048 hand-bone-like masks.

    python tools/benchmark/bench_rle.py [--images 10] [--repeat 3] [--seed 0]

Masks: per image 29 classes, each one compact blob (27 small bones, radius and ulna
larger), as a hand X-ray's. Prints the time per mask of both encoders, for row-major
(hand-bone) and column-major order, the speedup, and whether every string is
byte-identical.
"""
import argparse
import time

import _common  # noqa: F401  (import path)
import numpy as np
from _common import bone_masks, cpu_note

from mmseg_ext.io.rle import encode_rle
from mmseg_ext.utils.cli import number_in_range  # noqa: E402


def reference_encode(mask, order='C'):
    """The straightforward encoder (the competition baselines')."""
    pixels = mask.flatten(order=order)
    pixels = np.concatenate([[0], pixels, [0]])
    runs = np.where(pixels[1:] != pixels[:-1])[0] + 1
    runs[1::2] -= runs[::2]
    return ' '.join(str(x) for x in runs)


def timed(fn, masks, repeat):
    best, out = float('inf'), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = [fn(m) for m in masks]
        best = min(best, time.perf_counter() - t)
    return best, out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--images', type=number_in_range(int, 1), default=10)
    p.add_argument('--repeat', type=number_in_range(int, 1), default=3)
    p.add_argument('--seed', type=number_in_range(int, 0), default=0)
    args = p.parse_args()
    rng = np.random.default_rng(args.seed)
    masks = [m for _ in range(args.images) for m in bone_masks(rng)]
    fg = np.mean([m.mean() for m in masks]) * 100
    print(f'{len(masks)} masks of 2048x2048 ({args.images} images x 29 classes), '
          f'foreground {fg:.2f}% on average; best of {args.repeat}; {cpu_note()}')
    print(f'{"order":<14}{"reference ms/mask":>19}{"fast ms/mask":>14}{"speedup":>9}'
          f'{"identical":>11}')
    for order, name in (('C', 'row-major'), ('F', 'column-major')):
        t_ref, s_ref = timed(lambda m, o=order: reference_encode(m, o), masks, args.repeat)
        t_new, s_new = timed(lambda m, o=order: encode_rle(m, order=o), masks, args.repeat)
        same = s_ref == s_new
        print(f'{name:<14}{1e3 * t_ref / len(masks):>19.3f}{1e3 * t_new / len(masks):>14.3f}'
              f'{t_ref / t_new:>8.1f}x{str(same):>11}')
        if not same:
            raise SystemExit('encoders differ')
    print(f'rle benchmark done: {len(masks)} masks, all outputs byte-identical')


if __name__ == '__main__':
    main()
