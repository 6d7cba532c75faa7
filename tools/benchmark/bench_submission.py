"""Writing a full hand-bone submission from fused probabilities: time and peak memory.

    python tools/benchmark/bench_submission.py [--images 288] [--reference-images 24]
                                               [--work-dir DIR] [--keep]

Data: ``--images`` synthetic hand-bone probability files (29 x 512 x 512 uint8, as
tools/ensemble.py writes them) of 2048 x 2048 images. Each measurement runs in a fresh
subprocess:

* ``make_submission``: the library path (box-only upsampling, fast RLE), all images;
* ``reference``: the straightforward path on the first ``--reference-images`` images:
  dense read, full 2048 x 2048 bilinear resize of every class, threshold, the
  ``np.where`` encoder. Same decisions, so its rows must be byte-identical to ours.

Prints time per image, total time (reference extrapolated), peak RSS and tracemalloc
peak side by side.
"""
import argparse
import json
import os.path as osp
import subprocess
import sys
import time

import _common  # noqa: F401  (import path)
import numpy as np
from _common import bench_work_dir, bone_probs, cpu_note, peak_rss_mib
from bench_rle import reference_encode

from mmseg_ext.utils.cli import number_in_range  # noqa: E402


def make_data(out, n, seed=0):
    from mmseg_ext.io.probs import ProbFolderWriter
    from mmseg_ext.utils.class_names import HAND_BONE_CLASSES
    rng = np.random.default_rng(seed)
    with ProbFolderWriter(out, HAND_BONE_CLASSES, 'multi-label') as w:
        for i in range(n):
            w.write(bone_probs(rng, 512), f'ID{i // 2:03d}/image{i:05d}.png', (2048, 2048))
        w.commit()


def reference_rows(probs_dir, n):
    """The straightforward pipeline: dense probabilities, full resize, np.where RLE."""
    import cv2

    from mmseg_ext.io.probs import ProbFolder
    folder = ProbFolder(probs_dir)
    rows = []
    for key in folder.keys()[:n]:
        probs, meta = folder.read(key)
        name = osp.basename(meta.img_path)
        for c, cls in enumerate(meta.classes):
            up = cv2.resize(probs[c], (2048, 2048), interpolation=cv2.INTER_LINEAR)
            mask = (up / 255.0 > 0.5).astype(np.uint8)
            rows.append(f'{name},{cls},{reference_encode(mask)}')
    return rows


def worker(mode, trace, probs_dir, out, n):
    import tracemalloc
    if trace:
        tracemalloc.start()
    start = time.perf_counter()
    if mode == 'ours':
        from mmseg_ext.submission.make import make_submission
        images = make_submission(probs_dir, 'handbone', out, progress=False).images
    else:
        rows = reference_rows(probs_dir, n)
        with open(out, 'w') as f:
            f.write('image_name,class,rle\n' + '\n'.join(rows) + '\n')
        images = n
    result = dict(images=images, seconds=time.perf_counter() - start, rss=peak_rss_mib())
    if trace:
        result['traced'] = tracemalloc.get_traced_memory()[1] / 2 ** 20
    print(json.dumps(result))


def run_worker(mode, trace, probs_dir, out, n):
    cmd = [sys.executable, __file__, '--worker', mode, '--probs', probs_dir, '--out', out,
           '--reference-images', str(n)] + (['--trace'] if trace else [])
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--images', type=number_in_range(int, 1), default=288)
    p.add_argument('--reference-images', type=number_in_range(int, 1), default=24)
    p.add_argument('--work-dir', help='where the synthetic folder goes (default: temp dir)')
    p.add_argument('--keep', action='store_true', help='keep the synthetic data')
    p.add_argument('--worker', help=argparse.SUPPRESS)
    p.add_argument('--trace', action='store_true', help=argparse.SUPPRESS)
    p.add_argument('--probs', help=argparse.SUPPRESS)
    p.add_argument('--out', help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args.worker, args.trace, args.probs, args.out, args.reference_images)
    with bench_work_dir(args.work_dir, args.keep, 'bench_submission_') as work:
        probs = osp.join(work, 'fused')
        t = time.perf_counter()
        make_data(probs, args.images)
        print(f'data: {args.images} images x 29 classes, 512x512 uint8 probabilities of '
              f'2048x2048 images (generated in {time.perf_counter() - t:.0f} s); '
              f'{cpu_note()}')
        results = {}
        for mode, n in (('ours', args.images), ('reference', args.reference_images)):
            out = osp.join(work, f'{mode}.csv')
            timing = run_worker(mode, False, probs, out, n)
            traced = run_worker(mode, True, probs, out + '.traced', n)
            results[mode] = (timing, traced['traced'], out)
        ours = open(results['ours'][2]).read().splitlines()
        ref = open(results['reference'][2]).read().splitlines()
        same = ours[:len(ref)] == ref
        print(f'{"pipeline":<16}{"images":>7}{"s/image":>9}{"total s":>9}'
              f'{"peak RSS MiB":>14}{"tracemalloc MiB":>17}')
        for mode, (r, traced, _) in results.items():
            per = r['seconds'] / r['images']
            total = per * args.images
            note = '' if mode == 'ours' else ' (extrapolated)'
            print(f'{mode:<16}{r["images"]:>7}{per:>9.3f}{total:>9.1f}{r["rss"]:>14.1f}'
                  f'{traced:>17.1f}{note}')
        speed = (results['reference'][0]['seconds'] / results['reference'][0]['images']) / \
            (results['ours'][0]['seconds'] / results['ours'][0]['images'])
        print(f'submission benchmark: {len(ours) - 1} rows, {speed:.1f}x faster than the '
              f'reference per image; first {len(ref) - 1} rows byte-identical: {same}')
        if not same:
            raise SystemExit('outputs differ')


if __name__ == '__main__':
    main()
