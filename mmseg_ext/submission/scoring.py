"""Score a hand-bone-layout submission against ground truth, as the competition does.

The score of a class is the mean over images of ``(2 |P & G| + 1e-4) / (|P| + |G| +
1e-4)`` at the original resolution (docs/FORMATS.md); the submission's score is the
mean over classes. Ground truth comes from :class:`~mmseg_ext.io.ground_truth.GroundTruth`
(a hand-bone root with ``outputs_json/`` or a mask folder); the images' sizes and
relative paths from the test image folder.
"""
from __future__ import annotations

import os.path as osp
from dataclasses import dataclass
from typing import Dict, Optional, Sequence

import numpy as np
from tqdm import tqdm

from ..io.ground_truth import GroundTruth
from ..io.images import image_sizes_by_name, list_images
from ..io.paths import file_sha256, image_key
from ..io.rle import RLEError, parse_rle, runs_to_mask
from ..io.submission import get_format, read_rle_csv
from ..postprocessing.thresholds import DICE_EPS
from ..utils.class_names import HAND_BONE_CLASSES
from ..utils.errors import DataError


@dataclass
class SubmissionScore:
    per_class: Dict[str, float]
    images: int

    @property
    def mean(self) -> float:
        return float(np.mean(list(self.per_class.values())))


def score_handbone_csv(csv_path: str, gt_root: str, img_dir: str,
                       classes: Optional[Sequence[str]] = None,
                       progress: bool = True) -> SubmissionScore:
    """Competition Dice of a ``image_name,class,rle`` CSV over the images of ``img_dir``.

    Args:
        classes: the classes scored (default: the 29 hand bones). The CSV must carry
            exactly these; a class it adds (a misspelt name with empty masks would
            score 1 against empty ground truth) or leaves out is an error.

    Raises:
        DataError: another class list, a missing row, a row for an image that is not in
            ``img_dir``, a bad RLE, or an image without ground truth.
    """
    fmt = get_format('handbone')
    rows = read_rle_csv(csv_path, fmt, any_class=True)
    carried = list(dict.fromkeys(cls for _, cls in rows))
    if not carried:
        raise DataError(f'{csv_path}: no rows to score')
    classes = list(HAND_BONE_CLASSES if classes is None else classes)
    extra = [c for c in carried if c not in classes]
    if extra:
        raise DataError(f'{csv_path}: class {extra[0]!r} is not one of the {len(classes)} '
                        'classes scored')
    absent = [c for c in classes if c not in carried]
    if absent:
        raise DataError(f'{csv_path}: no rows for class {absent[0]!r} ({len(absent)} of '
                        f'{len(classes)} classes absent)')
    sizes = image_sizes_by_name(img_dir, 'basename')
    stray = sorted({image for image, _ in rows} - set(sizes))
    if stray:
        raise DataError(f'{csv_path}: rows for {stray[0]}, which is not an image of '
                        f'{img_dir}')
    listed = list_images(img_dir)
    keys = {name.split('/')[-1]: image_key(name) for name in listed}
    files = {name.split('/')[-1]: osp.join(img_dir, name) for name in listed}
    gt = GroundTruth(gt_root, classes)
    conv = fmt.rle
    total = np.zeros(len(classes), np.float64)
    for name in tqdm(sorted(sizes), desc='score', unit='img', disable=not progress):
        # a folder of masks may be the image folder itself: compared by content
        image_sha = file_sha256(files[name]) if gt.kind == 'mask' else None
        target = gt.load(keys[name], sizes[name], image_sha)
        for c, cls in enumerate(classes):
            if (name, cls) not in rows:
                raise DataError(f'{csv_path}: no row for ({name}, {cls})')
            try:
                starts, lengths = parse_rle(rows[(name, cls)], sizes[name][0] * sizes[name][1],
                                            index_base=conv.index_base, empty=conv.empty)
            except RLEError as exc:
                raise DataError(f'{csv_path}: ({name}, {cls}): {exc}') from None
            pred = runs_to_mask(starts, lengths, sizes[name]).astype(bool)
            inter = np.count_nonzero(pred & target[c])
            total[c] += (2.0 * inter + DICE_EPS) / (np.count_nonzero(pred) +
                                                    np.count_nonzero(target[c]) + DICE_EPS)
    return SubmissionScore({c: float(total[i] / len(sizes)) for i, c in enumerate(classes)},
                           len(sizes))
