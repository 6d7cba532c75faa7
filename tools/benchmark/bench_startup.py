"""Start-up cost of every tool: CPU time of ``--help`` and of a tiny real run.

    python tools/benchmark/bench_startup.py [--repeat 3] [--tools make_submission ...]
        [--work-dir DIR] [--keep]

Each command runs in a fresh interpreter (``python -X importtime``) and is measured by
the CPU time (user + system) the child used, the lowest of ``--repeat`` runs (the
machine may be shared). Printed side by side with ``python -c "import numpy"`` (the
floor) and ``python -c "import torch"``; the last columns say whether the run imported
torch or mmseg. Tiny real runs use a synthetic hand-bone set (8 patients x 2 images,
256 px) and a 2-image COCO file written under the work dir.
"""
import argparse
import json
import os
import os.path as osp
import resource
import subprocess
import sys

import _common  # noqa: F401  (import path)
import numpy as np
from _common import ROOT, bench_work_dir

from mmseg_ext.utils.cli import number_in_range  # noqa: E402

PY = sys.executable
TOOLS = osp.join(ROOT, 'tools')

#: Tools whose whole work needs no model, then the ones that build one (``--help`` only).
LIGHT = ['make_submission', 'kfold', 'coco_to_masks', 'ensemble', 'tune_thresholds',
         'visualize', 'make_synthetic_handbone']
MODEL = ['train', 'test', 'inference', 'demo', 'pseudo_label', 'self_train', 'get_weights']


def measure(cmd, repeat):
    """Run ``cmd`` ``repeat`` times; return (lowest child CPU s, imports torch, imports mmseg)."""
    best, torch_seen, mmseg_seen = None, False, False
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        proc = subprocess.run([PY, '-X', 'importtime'] + cmd, capture_output=True, text=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            tail = [line for line in proc.stderr.splitlines() if 'import time:' not in line]
            raise SystemExit(f'failed ({proc.returncode}): {" ".join(cmd)}\n' + '\n'.join(tail[-5:]))
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        best = cpu if best is None else min(best, cpu)
        names = {line.rsplit('|', 1)[-1].strip() for line in proc.stderr.splitlines()
                 if line.startswith('import time:')}
        torch_seen = 'torch' in names
        mmseg_seen = 'mmseg' in names
    return best, torch_seen, mmseg_seen


def make_inputs(work):
    """Synthetic hand-bone data, a probability folder of its train images, a COCO file."""
    import cv2

    from mmseg_ext.io.probs import ProbFolderWriter
    from mmseg_ext.utils.class_names import HAND_BONE_CLASSES
    data = osp.join(work, 'handbone')
    subprocess.run([PY, osp.join(TOOLS, 'make_synthetic_handbone.py'), '--out', data,
                    '--patients', '8', '--size', '256'], check=True, capture_output=True)
    train = osp.join(data, 'train')
    rng = np.random.default_rng(0)
    probs = osp.join(work, 'probs')
    images = sorted(osp.relpath(osp.join(d, f), osp.join(train, 'DCM'))
                    for d, _, fs in os.walk(osp.join(train, 'DCM')) for f in fs)
    with ProbFolderWriter(probs, HAND_BONE_CLASSES, 'multi-label') as w:
        for rel in images:
            w.write(rng.random((len(HAND_BONE_CLASSES), 64, 64), dtype=np.float32), rel,
                    (256, 256))
        w.commit()
    coco_dir = osp.join(work, 'coco')
    os.makedirs(coco_dir)
    coco = {'images': [], 'annotations': [],
            'categories': [{'id': 1, 'name': 'Paper'}, {'id': 2, 'name': 'Plastic'}]}
    for i in range(2):
        name = f'img{i}.jpg'
        cv2.imwrite(osp.join(coco_dir, name), np.full((64, 64, 3), 90, np.uint8))
        coco['images'].append({'id': i, 'file_name': name, 'height': 64, 'width': 64})
        coco['annotations'].append({'id': i, 'image_id': i, 'category_id': 1 + i, 'iscrowd': 0,
                                    'segmentation': [[8, 8, 40, 8, 40, 40, 8, 40]],
                                    'area': 1024, 'bbox': [8, 8, 32, 32]})
    with open(osp.join(coco_dir, 'ann.json'), 'w') as f:
        json.dump(coco, f)
    return train, probs, osp.join(coco_dir, 'ann.json')


def real_runs(work, train, probs, coco):
    """Tool -> argument list of a tiny real run (outputs under ``work/out``, replaced)."""
    out = osp.join(work, 'out')
    return {
        'make_submission': ['make_submission.py', probs, '--format', 'handbone',
                            '--out', osp.join(out, 'sub.csv'), '--no-progress', '--force'],
        'kfold': ['kfold.py', 'handbone', train, '--out', osp.join(out, 'splits'), '-k', '4',
                  '--force'],
        'coco_to_masks': ['coco_to_masks.py', coco, osp.join(out, 'masks'), '--force'],
        'ensemble': ['ensemble.py', probs, probs, '--out-dir', osp.join(out, 'fused'),
                     '--no-progress', '--force'],
        'tune_thresholds': ['tune_thresholds.py', probs, '--gt', train, '--out',
                            osp.join(out, 'thr.json'), '--no-progress', '--force'],
        'visualize': ['visualize.py', 'overlay', probs, '--img-dir', osp.join(train, 'DCM'),
                      '--out-dir', osp.join(out, 'overlay'), '--no-progress', '--force'],
        'make_synthetic_handbone': ['make_synthetic_handbone.py', '--out',
                                    osp.join(out, 'synthetic'), '--patients', '2',
                                    '--size', '64', '--force'],
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--repeat', type=number_in_range(int, 1), default=3)
    p.add_argument('--tools', nargs='+', choices=LIGHT + MODEL, default=LIGHT + MODEL,
                   help='the tools to measure (default: all)')
    p.add_argument('--work-dir', help='where the inputs go (default: a temporary folder)')
    p.add_argument('--keep', action='store_true', help='keep the work dir')
    args = p.parse_args(argv)
    with bench_work_dir(args.work_dir, args.keep, 'bench_startup_') as work:
        train, probs, coco = make_inputs(work)
        runs = real_runs(work, train, probs, coco)
        rows = [('python -c "import numpy"', measure(['-c', 'import numpy'], args.repeat)),
                ('python -c "import torch"', measure(['-c', 'import torch'], args.repeat))]
        for tool in args.tools:
            rows.append((f'{tool}.py --help',
                         measure([osp.join(TOOLS, f'{tool}.py'), '--help'], args.repeat)))
            if tool in runs:
                argv = runs[tool]
                rows.append((f'{tool}.py (tiny run)',
                             measure([osp.join(TOOLS, argv[0])] + argv[1:], args.repeat)))
        print(f'{"command":42s} {"CPU s":>6s}  torch  mmseg')
        for name, (cpu, torch_seen, mmseg_seen) in rows:
            print(f'{name:42s} {cpu:6.2f}  {"yes" if torch_seen else "no":5s}  '
                  f'{"yes" if mmseg_seen else "no"}')


if __name__ == '__main__':
    main()
