"""Label maps from COCO: CocoSemanticDataset pipeline vs annToMask-and-paint (baseline).

    python tools/benchmark/bench_coco_masks.py [--data ../shared/data/fracatlas_coco]
        [--repeat 5] [--draw-order area_desc|file|polygon_length]

Both sides build the (H, W) uint8 label map of every image (no image decoding):

- baseline: pycocotools ``COCO`` index; per image ``np.zeros``, annotations sorted in
  the drawing order, ``mask[coco.annToMask(ann) == 1] = class`` for each (a full-size
  decode and a full-size compare per annotation);
- plugin: ``dataset[i]`` of ``CocoSemanticDataset`` with the pipeline
  ``[LoadCocoAnnotations]`` (data-info deserialisation included).

Times are the best of ``--repeat`` passes over the set; one-off start-up costs (JSON
parse + index) are shown apart. Every mask is checked to be identical.
"""
import argparse
import contextlib
import io
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
import _bootstrap  # noqa: E402,F401  (makes the checkout importable)
import numpy as np  # noqa: E402

from mmseg_ext.utils.cli import cli_main, number_in_range  # noqa: E402
from mmseg_ext.utils.errors import DataError  # noqa: E402


def parse_args(argv=None):
    default = osp.join(_bootstrap.ROOT, '..', 'shared', 'data', 'fracatlas_coco')
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data', default=osp.normpath(default),
                        help='folder with annotations.json and images/')
    parser.add_argument('--ann', default='annotations.json')
    parser.add_argument('--repeat', type=number_in_range(int, 1), default=5)
    parser.add_argument('--draw-order', default='area_desc',
                        choices=('file', 'area_desc', 'polygon_length'))
    return parser.parse_args(argv)


def _sorted_anns(anns, order):
    if order == 'area_desc':
        return sorted(anns, key=lambda a: -a['area'])
    if order == 'polygon_length':
        return sorted(anns, key=lambda a: len(a['segmentation'][0])
                      if isinstance(a['segmentation'], list) else 0)
    return list(anns)


def baseline_masks(coco, classes, order, which=None):
    index = {name: i for i, name in enumerate(classes)}
    name_of = {c['id']: c['name'] for c in coco.dataset['categories']}
    out = []
    images = coco.dataset['images']
    for img in (images if which is None else [images[i] for i in which]):
        mask = np.zeros((img['height'], img['width']), np.uint8)
        for ann in _sorted_anns(coco.imgToAnns[img['id']], order):
            mask[coco.annToMask(ann) == 1] = index[name_of[ann['category_id']]]
        out.append(mask)
    return out


def plugin_masks(dataset, which=None):
    return [dataset[i]['gt_seg_map'] for i in (range(len(dataset)) if which is None
                                                else which)]


def best_of(repeat, func, *args):
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = func(*args)
        times.append(time.perf_counter() - start)
    return min(times), result


@cli_main
def main(argv=None):
    args = parse_args(argv)
    from mmseg_ext import register_all_modules
    register_all_modules()  # environment check and mmseg's imports, without their noise
    from mmengine.registry import init_default_scope
    from pycocotools.coco import COCO

    from mmseg_ext.datasets import CocoSemanticDataset
    from mmseg_ext.datasets.coco_index import index_coco, load_coco_json
    ann_file = osp.join(args.data, args.ann)
    if not osp.isfile(ann_file):
        raise DataError(f"{ann_file}: not found (pass --data)")
    init_default_scope('mmseg')

    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(ann_file)
    t_coco = time.perf_counter() - start
    classes = ['background'] + [c['name'] for c in
                                sorted(coco.dataset['categories'], key=lambda c: c['id'])]
    start = time.perf_counter()
    index_coco(load_coco_json(ann_file), classes, ann_file, draw_order=args.draw_order)
    t_index = time.perf_counter() - start
    start = time.perf_counter()
    dataset = CocoSemanticDataset(
        ann_file=ann_file, data_prefix=dict(img_path=osp.join(args.data, 'images')),
        metainfo=dict(classes=classes), background_name='background',
        draw_order=args.draw_order, pipeline=[dict(type='LoadCocoAnnotations')])
    t_dataset = time.perf_counter() - start

    t_base, ref = best_of(args.repeat, baseline_masks, coco, classes, args.draw_order)
    t_plugin, ours = best_of(args.repeat, plugin_masks, dataset)
    same = len(ref) == len(ours) and all(np.array_equal(a, b) for a, b in zip(ref, ours))
    n_img, n_ann = len(ref), len(coco.dataset['annotations'])
    pixels = sum(m.size for m in ref) / 1e6

    print(f'data: {ann_file}: {n_img} images, {n_ann} annotations, {pixels:.1f} Mpx, '
          f'draw order {args.draw_order}, best of {args.repeat}')
    print(f"{'':34s}{'baseline (annToMask)':>22s}{'plugin (pipeline)':>20s}")
    print(f"{'start-up (parse + index), s':34s}{t_coco:22.3f}{t_index:20.3f}")
    print(f"{'  whole dataset object, s':34s}{'':>22s}{t_dataset:20.3f}"
          '   (mmengine serialize_data runs gc.collect)')
    print(f"{'all masks, one pass, s':34s}{t_base:22.3f}{t_plugin:20.3f}")
    print(f"{'per image, ms':34s}{1e3 * t_base / n_img:22.2f}{1e3 * t_plugin / n_img:20.2f}")
    for label, which in (('  images < 1 Mpx', [i for i, m in enumerate(ref) if m.size < 1e6]),
                         ('  images >= 1 Mpx', [i for i, m in enumerate(ref)
                                                if m.size >= 1e6])):
        if not which:
            continue
        tb, _ = best_of(args.repeat, baseline_masks, coco, classes, args.draw_order, which)
        tp, _ = best_of(args.repeat, plugin_masks, dataset, which)
        print(f"{label + f' ({len(which)}), ms/image':34s}{1e3 * tb / len(which):22.2f}"
              f'{1e3 * tp / len(which):20.2f}   ({tb / tp:.1f}x)')
    print(f'speed-up per pass: {t_base / t_plugin:.1f}x; identical masks: '
          f"{'yes' if same else 'NO'} ({n_img} images compared)")
    return 0 if same else 1


if __name__ == '__main__':
    main()
