"""Soft-voting ensemble: peak memory for 10 vs 100 images, throughput vs plain reading.

    python tools/benchmark/bench_ensemble.py [--work-dir DIR] [--size 512] [--repeat 3] [--keep]

Data: 3 models x 100 images of synthetic hand-bone probabilities (29 x 512 x 512, uint8,
the default format); the 10-image folders hold hard links to the first 10 files. Each
measurement runs in a fresh subprocess:

* ``read``: read and decode every file of the 3 folders into dense ``(29, 512, 512)``
  arrays (``ProbFolder.read``) -- what any consumer pays;
* ``read-box``: the same without building dense arrays (``read(cropped=True)``), the
  floor of reading;
* ``ensemble``: ``soft_vote`` of the 3 folders (read, average, write the fused folder).

Printed side by side: wall time (fastest of ``--repeat`` runs: the machine is shared),
images/s, peak RSS and tracemalloc peak (a separate traced run), for 10 and 100 images. Targets: peak memory of 100 images within 10% of 10
images; ensemble time within 2x of reading.
"""
import argparse
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import time

import _common  # noqa: F401  (import path)
import numpy as np
from _common import bench_work_dir, bone_probs, cpu_note, peak_rss_mib

from mmseg_ext.utils.cli import number_in_range  # noqa: E402

MODELS = 3


def make_data(work, n, size, seed=0):
    from mmseg_ext.io.probs import ProbFolderWriter
    from mmseg_ext.utils.class_names import HAND_BONE_CLASSES
    dirs = []
    for m in range(MODELS):
        out = osp.join(work, f'model{m}_{n}')
        rng = np.random.default_rng(seed)  # same bones for every model, different softness
        with ProbFolderWriter(out, HAND_BONE_CLASSES, 'multi-label') as w:
            for i in range(n):
                w.write(bone_probs(rng, size, jitter=0.05 * m),
                        f'ID{i // 2:03d}/image{i:04d}.png', (2048, 2048))
            w.commit()
        dirs.append(out)
    return dirs


def link_subset(src, dst, n):
    """A probability folder with the first ``n`` images of ``src`` (hard links)."""
    with open(osp.join(src, 'index.json')) as f:
        index = json.load(f)
    index['images'] = index['images'][:n]
    index['num_images'] = n
    for entry in index['images']:
        target = osp.join(dst, entry['file'])
        os.makedirs(osp.dirname(target), exist_ok=True)
        os.link(osp.join(src, entry['file']), target)
    with open(osp.join(dst, 'index.json'), 'w') as f:
        json.dump(index, f)
    return dst


def worker(mode, trace, out, dirs):
    """Run one measurement in this process; print a JSON line."""
    import tracemalloc

    from mmseg_ext.io.prob_file import dequantize  # noqa: F401
    from mmseg_ext.io.probs import ProbFolder  # noqa: F401
    if trace:
        tracemalloc.start()
    start = time.perf_counter()
    if mode in ('read', 'read-box'):
        n = 0
        for d in dirs:
            folder = ProbFolder(d)
            for key in folder.keys():
                probs, _ = folder.read(key, cropped=mode == 'read-box')
                n += 1
        images = n // len(dirs)
    else:
        from mmseg_ext.ensembling.ensemble import soft_vote
        images = soft_vote(dirs, out, progress=False).images
    seconds = time.perf_counter() - start
    result = dict(mode=mode, images=images, seconds=seconds, rss=peak_rss_mib())
    if trace:
        result['traced'] = tracemalloc.get_traced_memory()[1] / 2 ** 20
    print(json.dumps(result))


def run_worker(mode, trace, out, dirs):
    cmd = [sys.executable, __file__, '--worker', mode, '--out', out, *dirs]
    if trace:
        cmd.append('--trace')
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(proc.stderr)
    if osp.exists(out):
        shutil.rmtree(out)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--work-dir', help='where the synthetic folders go (default: a temp dir)')
    p.add_argument('--size', type=number_in_range(int, 1), default=512, help='stored resolution (default 512)')
    p.add_argument('--keep', action='store_true', help='keep the synthetic data')
    p.add_argument('--repeat', type=number_in_range(int, 1), default=3,
                   help='timed runs per line, the fastest is shown (default 3)')
    p.add_argument('--worker', help=argparse.SUPPRESS)
    p.add_argument('--trace', action='store_true', help=argparse.SUPPRESS)
    p.add_argument('--out', help=argparse.SUPPRESS)
    p.add_argument('dirs', nargs='*', help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args.worker, args.trace, args.out, args.dirs)
    with bench_work_dir(args.work_dir, args.keep, 'bench_ensemble_') as work:
        t = time.perf_counter()
        big = make_data(work, 100, args.size)
        small = [link_subset(d, d.replace('_100', '_10'), 10) for d in big]
        size_mb = sum(os.path.getsize(osp.join(dp, f)) for dp, _, fs in os.walk(big[0])
                      for f in fs) / 2 ** 20 / 100
        print(f'data: {MODELS} models x 100 images, 29x{args.size}x{args.size} uint8, '
              f'{size_mb:.2f} MiB per file on disk (generated in '
              f'{time.perf_counter() - t:.0f} s); {cpu_note()}')
        rows = []
        for n, dirs in ((10, small), (100, big)):
            for mode in ('read', 'read-box', 'ensemble'):
                runs = [run_worker(mode, False, osp.join(work, 'fused'), dirs)
                        for _ in range(args.repeat)]
                timing = dict(min(runs, key=lambda r: r['seconds']),
                              rss=max(r['rss'] for r in runs))
                traced = run_worker(mode, True, osp.join(work, 'fused'), dirs)
                rows.append((n, mode, timing, traced['traced']))
        print(f'{"images":>6} {"task":<9}{"seconds":>9}{"img/s":>8}{"peak RSS MiB":>14}'
              f'{"tracemalloc MiB":>17}')
        for n, mode, r, traced in rows:
            print(f'{n:>6} {mode:<9}{r["seconds"]:>9.2f}{n / r["seconds"]:>8.1f}'
                  f'{r["rss"]:>14.1f}{traced:>17.1f}')
        get = {(n, m): (r, tr) for n, m, r, tr in rows}
        rss10, rss100 = get[(10, 'ensemble')][0]['rss'], get[(100, 'ensemble')][0]['rss']
        tr10, tr100 = get[(10, 'ensemble')][1], get[(100, 'ensemble')][1]
        ens = get[(100, 'ensemble')][0]['seconds']
        ratio = ens / get[(100, 'read')][0]['seconds']
        ratio_box = ens / get[(100, 'read-box')][0]['seconds']
        print(f'ensemble peak memory 100 vs 10 images: RSS {rss100 / rss10:.3f}x, '
              f'tracemalloc {tr100 / tr10:.3f}x (target <= 1.10x); ensemble time / read '
              f'time (100 images): {ratio:.2f}x dense read, {ratio_box:.2f}x box read '
              f'(target <= 2x)')


if __name__ == '__main__':
    main()
