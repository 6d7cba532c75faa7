"""The report of a pseudo-label folder (``pseudo_labels.json``) and the image identity
it records.

``tools/pseudo_label.py`` writes one entry per image it read (``img_path`` relative to
the image folder it predicted, ``accepted``, and ``img_sha256``, the SHA-256 of the image
file its probabilities were predicted from, where the probability file recorded it).
Whoever pairs the pseudo-labels with images again (``tools/cv.py --pseudo-labels``, a
config whose training set reads the pseudo-label folder) checks with
:func:`check_pseudo_images` that each image is the one its labels were drawn for: other
images under the same names (another split, an edited copy, test images replaced in
place) would train on polygons or label maps of different pictures.
"""
from __future__ import annotations

import os.path as osp
from typing import Dict, Iterable, Optional

from ..utils.errors import DataError
from ..utils.readers import read_json

#: The report's file name, at the top of a pseudo-label folder.
REPORT = 'pseudo_labels.json'


def report_of_labels(seg_dir: str) -> Optional[str]:
    """The report of the pseudo-label folder whose labels are under ``seg_dir``: label
    PNGs lie at the top of the folder, hand-bone JSON under its ``outputs_json/``;
    None when ``seg_dir`` is not such a folder."""
    for folder in (seg_dir, osp.dirname(osp.normpath(seg_dir))):
        path = osp.join(folder, REPORT)
        if folder and osp.isfile(path):
            return path
    return None


def recorded_digests(report_path: str) -> Dict[str, str]:
    """``{img_path: img_sha256}`` of the accepted images whose entry records the digest
    (an older report records none: nothing to compare)."""
    report = read_json(report_path, 'pseudo-label report')
    entries = report.get('images') if isinstance(report, dict) else None
    if not isinstance(entries, list):
        return {}
    return {e['img_path']: e['img_sha256'] for e in entries
            if isinstance(e, dict) and e.get('accepted')
            and isinstance(e.get('img_path'), str) and isinstance(e.get('img_sha256'), str)}


def check_pseudo_images(report_path: str, img_dir: str,
                        images: Optional[Iterable[str]] = None) -> None:
    """Refuse images under ``img_dir`` that are not the ones the pseudo-labels of the
    report ``report_path`` were made from (compared by content).

    Args:
        report_path: a pseudo-label folder's ``pseudo_labels.json``.
        img_dir: the folder the images are read from now.
        images: the images read (paths relative to ``img_dir``); default: every image
            the report records a digest for.

    Raises:
        DataError: an image that cannot be read or whose content differs, naming it.
    """
    from .paths import file_sha256
    digests = recorded_digests(report_path)
    for rel in (digests if images is None else images):
        rel = rel.replace(osp.sep, '/')
        # inference run on a hand-bone data root names the images DCM/<...>; their
        # labels drop that prefix (outputs_json/<...>.json), and so does a data set
        expected = digests.get(rel, digests.get('DCM/' + rel))
        if expected is None:
            continue
        image = osp.join(img_dir, rel)
        if file_sha256(image) != expected:  # DataError when it cannot be read
            raise DataError(f'{image}: not the image the pseudo-labels of '
                            f'{osp.dirname(report_path) or "."} were made from (same '
                            'name, other content: another split, an edited copy, or '
                            'images replaced after pseudo-labelling); pair them with the '
                            'images they were predicted on')
