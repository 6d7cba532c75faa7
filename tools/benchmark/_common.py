"""Shared by the benchmarks: import path, synthetic hand-bone-like data, memory probes."""
import contextlib
import os
import os.path as osp
import resource
import shutil
import sys
from typing import Dict, Tuple

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import cv2  # noqa: E402
import numpy as np  # noqa: E402

NUM_BONES = 29


def bone_layout(rng, size, n=NUM_BONES):
    """Ellipses ``(cx, cy, ax, ay, angle)`` for ``n`` classes on a ``size`` x ``size``
    image: 27 small compact bones (fingers, carpals) and 2 long ones (radius, ulna),
    scaled from a 2048-pixel hand X-ray."""
    s = size / 2048
    out = []
    for c in range(n):
        if c < n - 2:
            ax, ay = rng.integers(25, 70), rng.integers(50, 160)
        else:
            ax, ay = rng.integers(70, 120), rng.integers(300, 500)
        cx, cy = rng.integers(300, 1750, 2)
        out.append((int(cx * s), int(cy * s), max(1, int(ax * s)), max(1, int(ay * s)),
                    float(rng.integers(0, 180))))
    return out


def bone_masks(rng, size=2048):
    """``(29, size, size)`` uint8 {0, 1} masks, one compact blob per class."""
    masks = np.zeros((NUM_BONES, size, size), np.uint8)
    for c, (cx, cy, ax, ay, ang) in enumerate(bone_layout(rng, size)):
        cv2.ellipse(masks[c], (cx, cy), (ax, ay), ang, 0, 360, 1, -1)
    return masks


def bone_probs(rng, size=512, jitter=0.0):
    """``(29, size, size)`` float32 probabilities: blurred blobs (soft edges, mostly 0)."""
    probs = np.zeros((NUM_BONES, size, size), np.float32)
    for c, (cx, cy, ax, ay, ang) in enumerate(bone_layout(rng, size)):
        cv2.ellipse(probs[c], (cx, cy), (ax, ay), ang, 0, 360, 1.0, -1)
        probs[c] = cv2.GaussianBlur(probs[c], (0, 0), 2.0) * (1.0 - jitter)
    return probs


def peak_rss_mib():
    """Peak resident set size of this process (MiB)."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_note():
    return f'{os.cpu_count()} CPUs visible, cv2 threads {cv2.getNumThreads()}'


@contextlib.contextmanager
def bench_work_dir(work_dir, keep: bool, prefix: str):
    """The folder a benchmark writes to: ``work_dir`` (kept), else a temporary folder
    removed at the end unless ``keep``. A ``work_dir`` that exists must be an empty
    folder: the benchmark writes fixed names there (``model0_10/index.json``) with
    plain writes, over whatever files of those names it would find."""
    import shutil
    import tempfile
    if work_dir and osp.lexists(work_dir) and (
            osp.islink(work_dir) or not osp.isdir(work_dir) or os.listdir(work_dir)):
        raise SystemExit(f'{work_dir}: exists and is not an empty folder; the benchmark '
                         'writes its files under fixed names: give a new or empty '
                         '--work-dir')
    work = work_dir or tempfile.mkdtemp(prefix=prefix)
    os.makedirs(work, exist_ok=True)
    try:
        yield work
    finally:
        if not keep and not work_dir:
            shutil.rmtree(work, ignore_errors=True)


def real_data_absent(data: str) -> bool:
    """Print why and return True when the real-data set ``data`` (a folder with
    ``train/``) is absent: the real-data benchmarks then exit 0."""
    if osp.isdir(osp.join(data, 'train')):
        return False
    print(f'skipped: the real-data set is absent ({data}/train not found)')
    return True


def run_measured(cmd, cwd: str = ROOT) -> dict:
    """Run ``cmd`` (output to the terminal's stderr only); return its CPU and wall
    minutes (children's user + system time). A failure exits naming the command."""
    import subprocess
    import time
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise SystemExit(f'{osp.basename(cmd[1])} failed (exit status {proc.returncode}): '
                         + ' '.join(cmd))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return dict(cpu_minutes=cpu / 60, wall_minutes=(time.perf_counter() - start) / 60)


def plain_fold_vote(cv_work: str, out_dir: str) -> str:
    """The fold ensemble *without* calibration, for comparison with ``tools/cv.py``'s
    own vote: the plain per-class mean of ``cv_work/test/fold<k>/`` with cv's fold
    weights (a collapsed fold left out of its class), decided at 0.5 by whoever reads
    it. Returns ``out_dir``."""
    from mmseg_ext.io.probs import ProbFolder
    from mmseg_ext.postprocessing.tta_choice import class_soft_vote
    from mmseg_ext.utils.readers import read_json
    summary = read_json(osp.join(cv_work, 'summary.json'), 'cv summary')
    prob_dirs = [osp.join(cv_work, 'test', f'fold{k}') for k in range(summary['num_folds'])]
    classes = ProbFolder(prob_dirs[0]).classes
    given = (summary.get('decisions') or {}).get('fold_weights') or {}
    weights = np.array([given.get(c, [1.0 / len(prob_dirs)] * len(prob_dirs))
                        for c in classes], np.float64)
    class_soft_vote(prob_dirs, out_dir, weights,
                    dict(plain_fold_vote=[osp.abspath(d) for d in prob_dirs]),
                    progress=False, tool='tools/benchmark')
    return out_dir


#: the draw of --heldback-patients (bench_realdata.py, bench_heldback.py)
HELDBACK_SEED = 1


def split_patients(data: str, heldback: int, work_dir: str) -> Dict[str, str]:
    """Put ``heldback`` ID folders of ``data/train`` (a seeded draw) into
    ``work_dir/data/heldback/train`` and the others into ``work_dir/data/pool/train``
    (``DCM/`` and ``outputs_json/`` each) as hard links to the data's files (copies
    across file systems; the data readers refuse a symbolic link out of a data root);
    return both roots. A work dir split before with other patients is refused.
    (``bench_realdata.py`` cross-validates on the pool; ``bench_heldback.py`` trains on
    it.)"""
    images = osp.join(data, 'train', 'DCM')
    ids = sorted(d for d in os.listdir(images) if osp.isdir(osp.join(images, d)))
    if heldback >= len(ids):
        raise SystemExit(f'{images}: --heldback-patients {heldback} leaves no patient of '
                         f'the {len(ids)} to train on')
    order = np.random.default_rng(HELDBACK_SEED).permutation(len(ids))
    held = sorted(ids[i] for i in order[:heldback])
    roots = {part: osp.join(work_dir, 'data', part, 'train') for part in ('pool', 'heldback')}
    record = osp.join(work_dir, 'data', 'heldback_ids.txt')
    if osp.isfile(record):
        before = open(record).read().split()
        if before != held:
            raise SystemExit(f'{record}: this work dir holds back {len(before)} other '
                             f'patients ({", ".join(before[:3])}, ...); give '
                             f'--heldback-patients {heldback} its own --work-dir')
        return roots
    linked = copied = 0
    for part, root in roots.items():
        for sub in ('DCM', 'outputs_json'):
            for i in ids:
                if (i in held) == (part == 'heldback'):
                    n_link, n_copy = _link_tree(osp.join(data, 'train', sub, i),
                                                osp.join(root, sub, i))
                    linked, copied = linked + n_link, copied + n_copy
    with open(record, 'w') as f:
        f.write(''.join(i + '\n' for i in held))
    how = f'{linked} files hard-linked' + (
        f', {copied} copied (hard links fail across file systems; copies take disk space)'
        if copied else '')
    print(f'{osp.basename(sys.argv[0])}: {len(held)} patients held back ({", ".join(held)}) and '
          f'{len(ids) - len(held)} in the pool under {osp.join(work_dir, "data")}: '
          f'{how}')
    return roots


def _link_tree(src: str, dst: str) -> Tuple[int, int]:
    """The files of ``src`` in ``dst``: hard links, or copies across file systems;
    returns how many of each were made."""
    linked = copied = 0
    for folder, _, files in os.walk(src):
        out = osp.join(dst, osp.relpath(folder, src))
        os.makedirs(out, exist_ok=True)
        for name in files:
            target = osp.join(out, name)
            if osp.lexists(target):
                continue
            try:
                os.link(osp.join(folder, name), target)
                linked += 1
            except OSError:
                shutil.copy2(osp.join(folder, name), target)
                copied += 1
    return linked, copied
