"""Hand-bone loading: image floor vs naive mask vs the plugin's pipeline, side by side.

    python tools/benchmark/bench_handbone_loading.py [--size 2048x2048] [--scale 512]
        [--repeats 15] [--vertices 40] [--cv2-threads 1] [--seed 0]

One synthetic 2048x2048 sample (29 polygons) is generated into a temporary folder, then
each way of loading it runs ``--repeats`` times, interleaved in a shuffled order, and
the median (and the minimum) is shown:

- floor: ``LoadImageFromFile`` + ``Resize(scale, keep_ratio=True)`` (decode + resize
  the image alone: what any pipeline pays);
- naive: floor + ``json.load`` + for each polygon ``cv2.fillPoly`` into a full-size
  ``(H, W)`` canvas OR-ed into channel ``c`` of a full ``(H, W, 29)`` array, then a
  nearest-neighbour resize of that array (the straightforward way);
- ours (deferred, nearest / scaled): ``LoadImageFromFile`` +
  ``LoadHandBoneAnnotations(rasterize=False)`` + ``Resize`` + ``RasterizePolygons``;
- ours (eager): ``LoadImageFromFile`` + ``LoadHandBoneAnnotations()`` (full-resolution
  mask, bounding-box fills) + ``Resize`` (stock, resizes the 29-channel mask).

Then the mask agreement with the naive mask, and the memory of one packed
29x2048x2048 sample with ``PackMultiLabelSegInputs`` against stock ``PackSegInputs``.
cv2 runs single-threaded by default, as in mmengine's dataloader workers.
"""
import argparse
import gc
import json
import os.path as osp
import statistics
import sys
import tempfile
import time
import tracemalloc

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import _bootstrap  # noqa: E402,F401  (makes the checkout importable)
import cv2  # noqa: E402
import numpy as np  # noqa: E402

from mmseg_ext.utils.cli import cli_main, number_in_range  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    from make_synthetic_handbone import size_arg
    parser.add_argument('--size', type=size_arg, default='2048x2048',
                        help='image size HxW (or N), each >= 16')
    parser.add_argument('--scale', type=number_in_range(int, 1), default=512,
                        help='training scale (pixels)')
    parser.add_argument('--repeats', type=number_in_range(int, 1), default=15)
    parser.add_argument('--vertices', type=number_in_range(int, 3), default=40,
                        help='points per bone side in the synthetic polygons')
    parser.add_argument('--cv2-threads', type=number_in_range(int, 0), default=1)
    parser.add_argument('--seed', type=number_in_range(int, 0), default=0)
    parser.add_argument('--skip-stock-pack', action='store_true',
                        help='skip the int64 stock PackSegInputs probe (about 1 GB)')
    return parser.parse_args(argv)


def naive_mask(json_path, shape, classes):
    """The straightforward rasterisation: a full (H, W) canvas per polygon."""
    with open(json_path) as f:
        data = json.load(f)
    index = {c: i for i, c in enumerate(classes)}
    mask = np.zeros((shape[0], shape[1], len(classes)), np.uint8)
    for ann in data['annotations']:
        canvas = np.zeros(shape, np.uint8)
        cv2.fillPoly(canvas, [np.array(ann['points'], np.int32)], 1)
        mask[..., index[ann['label']]] |= canvas
    return mask


def iou_per_class(a, b):
    inter = np.logical_and(a, b).sum((0, 1))
    union = np.logical_or(a, b).sum((0, 1))
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def rss_mib():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024
    return float('nan')


def pack_probe(pack, results):
    """(tensor, tracemalloc peak MiB, RSS growth MiB) of packing ``results``."""
    gc.collect()
    rss0 = rss_mib()
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    packed = pack(dict(results))
    peak = (tracemalloc.get_traced_memory()[1] - base) / 2**20
    tracemalloc.stop()
    data = packed['data_samples'].gt_sem_seg.data
    return data, peak, rss_mib() - rss0


@cli_main
def main(argv=None):
    from mmseg_ext import register_all_modules
    register_all_modules()  # environment check and mmseg's imports, without their noise
    from mmcv.transforms import Compose
    from mmengine.registry import init_default_scope

    from mmseg_ext.datasets.synthetic import make_handbone_dataset
    from mmseg_ext.utils.class_names import HAND_BONE_CLASSES
    args = parse_args(argv)
    init_default_scope('mmseg')
    cv2.setNumThreads(args.cv2_threads)
    size = args.size

    tmp = tempfile.TemporaryDirectory(prefix='bench_handbone_')
    make_handbone_dataset(tmp.name, num_patients=1, images_per_patient=1, size=size,
                          num_test_patients=0, seed=args.seed, vertices=args.vertices)
    from mmseg_ext.datasets import HandBoneDataset
    info = HandBoneDataset(data_root=osp.join(tmp.name, 'train')).get_data_info(0)
    with open(info['seg_map_path']) as f:
        anns = json.load(f)['annotations']
    n_points = sum(len(a['points']) for a in anns)
    png_mib = osp.getsize(info['img_path']) / 2**20

    resize = dict(type='Resize', scale=(args.scale, args.scale), keep_ratio=True)
    load = dict(type='LoadImageFromFile')
    floor = Compose([load, resize])
    deferred = Compose([load, dict(type='LoadHandBoneAnnotations', rasterize=False),
                        resize, dict(type='RasterizePolygons')])
    scaled = Compose([load, dict(type='LoadHandBoneAnnotations', rasterize=False),
                      resize, dict(type='RasterizePolygons', mode='scaled')])
    eager = Compose([load, dict(type='LoadHandBoneAnnotations'), resize])

    def run_naive(results):
        out = floor(results)
        mask = naive_mask(results['seg_map_path'], out['ori_shape'], HAND_BONE_CLASSES)
        h, w = out['img_shape']
        out['gt_seg_map'] = cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST)
        return out

    methods = {
        'floor  (decode + resize image)': floor,
        'naive  (+ full masks + resize)': run_naive,
        'ours   deferred, nearest': deferred,
        'ours   deferred, scaled': scaled,
        'ours   eager (full mask + Resize)': eager,
    }
    times = {name: [] for name in methods}
    outputs = {}
    order = list(methods)
    shuffle = np.random.default_rng(args.seed)
    for _ in range(args.repeats + 1):  # the first pass warms caches and is dropped
        shuffle.shuffle(order)  # no method always runs after the big allocations
        for name in order:
            results = dict(info)
            t0 = time.perf_counter()
            outputs[name] = methods[name](results)
            times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v[1:]) * 1000 for k, v in times.items()}
    best = {k: min(v[1:]) * 1000 for k, v in times.items()}

    # full-resolution rasterisation alone (no image): naive vs rasterize_full
    from mmseg_ext.io.hand_bone_json import parse_hand_bone_json, rasterize_full
    polys = parse_hand_bone_json(info['seg_map_path'], HAND_BONE_CLASSES)
    raster = {'naive fill, full res': [], 'rasterize_full': []}
    for _ in range(max(3, args.repeats // 3)):
        t0 = time.perf_counter()
        ref_full = naive_mask(info['seg_map_path'], size, HAND_BONE_CLASSES)
        raster['naive fill, full res'].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ours_full = rasterize_full(polys.labels, polys.points, size, 29)
        raster['rasterize_full'].append(time.perf_counter() - t0)
    assert np.array_equal(ref_full, ours_full)
    del ref_full, ours_full

    naive_name, floor_name = list(methods)[1], list(methods)[0]
    h, w = outputs[floor_name]['img_shape']
    print(f'sample: {size[0]}x{size[1]} PNG ({png_mib:.1f} MiB), {len(anns)} polygons, '
          f'{n_points} points -> {h}x{w}; median of {args.repeats}; '
          f'cv2 threads {cv2.getNumThreads()}')
    print(f'{"pipeline":36s} {"median ms":>9s} {"min ms":>8s} {"x floor":>8s} '
          f'{"naive/this":>11s}   (ratios of medians)')
    for name in methods:
        print(f'{name:36s} {med[name]:9.1f} {best[name]:8.1f} '
              f'{med[name] / med[floor_name]:8.2f} {med[naive_name] / med[name]:11.2f}')
    print('full-resolution (H, W, 29) mask only:')
    for name, v in raster.items():
        print(f'  {name:34s} {statistics.median(v) * 1000:8.1f} ms')

    ref = outputs[naive_name]['gt_seg_map']
    print('mask agreement with the naive mask at '
          f'{h}x{w} (29 channels, {ref.sum()} foreground labels):')
    for name in list(methods)[2:]:
        mask = outputs[name]['gt_seg_map']
        iou = iou_per_class(mask.astype(bool), ref.astype(bool))
        diff = int((mask != ref).sum())
        print(f'  {name:34s} differing labels {diff:7d} ({diff / ref.size:.4%}), '
              f'IoU mean {iou.mean():.4f} min {iou.min():.4f}')

    full = Compose([load, dict(type='LoadHandBoneAnnotations')])(dict(info))
    from mmseg.registry import TRANSFORMS
    ours_pack = TRANSFORMS.build(dict(type='PackMultiLabelSegInputs'))
    data, peak, grow = pack_probe(ours_pack, full)
    print(f'packed {tuple(data.shape)} {data.dtype}: tensor {data.nbytes / 2**20:.0f} MiB, '
          f'traced peak while packing {peak:.0f} MiB, RSS growth {grow:.0f} MiB '
          f'(mask in results: {full["gt_seg_map"].nbytes / 2**20:.0f} MiB)')
    del data
    if not args.skip_stock_pack:
        import warnings
        stock_pack = TRANSFORMS.build(dict(type='PackSegInputs'))
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            data, peak, grow = pack_probe(stock_pack, full)
        print(f'stock PackSegInputs: {tuple(data.shape)} {data.dtype}: tensor '
              f'{data.nbytes / 2**20:.0f} MiB, traced peak {peak:.0f} MiB')
        del data
    tmp.cleanup()


if __name__ == '__main__':
    main()
