"""The report of a pseudo-label folder (``pseudo_labels.json``) and the image identity
it records.

``tools/pseudo_label.py`` writes one entry per image it read: ``img_path`` (relative to
the image folder it predicted), ``accepted``, ``label`` (the label file it wrote for an
accepted image, relative to the folder) and ``img_sha256`` (the SHA-256 of the image
file its probabilities were predicted from, where the probability file recorded it).

Whoever pairs the pseudo-labels with images again checks that each label goes with the
image it was drawn for: other images under the same names (another split, an edited
copy, test images replaced in place) would train on polygons or label maps of different
pictures. A training reads labels, so the pairing is checked from each label file
(:func:`check_pseudo_pairs`: found by its path in the folder, whatever part of the
folder the data set reads); ``tools/cv.py --pseudo-labels`` checks the images it is
given by name first (:func:`check_pseudo_images`).
"""
from __future__ import annotations

import os.path as osp
from typing import Dict, Iterable, Optional, Tuple

from ..utils.errors import DataError, OutputError
from ..utils.readers import read_json
from .paths import image_key

#: The report's file name, at the top of a pseudo-label folder.
REPORT = 'pseudo_labels.json'


def label_file(key: str, fmt: str) -> str:
    """The label file ``tools/pseudo_label.py`` writes for the image of probability key
    ``key`` (relative to its pseudo-label folder): ``outputs_json/<key>.json`` for
    hand-bone JSON (a leading ``DCM/`` dropped, so ``DCM/`` <-> ``outputs_json/``),
    ``<key>.png`` for label PNGs."""
    if fmt == 'handbone-json':
        return 'outputs_json/' + (key[4:] if key.startswith('DCM/') else key) + '.json'
    return key + '.png'


def listed_image(img_path: str, fmt: str) -> str:
    """The line of ``accepted.txt`` for the image ``img_path`` (as its probabilities
    record it): for hand-bone JSON, the name its label has under ``outputs_json/`` (a
    leading ``DCM/`` of inference run on a data root dropped, as :func:`label_file` drops
    it), so that a data set reading ``accepted.txt`` from the images' ``DCM/`` folder
    finds each image and its label by one relative name."""
    if fmt == 'handbone-json' and img_path.startswith('DCM/'):
        return img_path[4:]
    return img_path


def pseudo_folder_above(seg_dir: str) -> Optional[Tuple[str, Optional[str]]]:
    """``(folder, report)`` of the pseudo-label folder at or above ``seg_dir`` (the
    folder a data set reads its labels from): the nearest folder holding a report, or
    whose own manifest lists one (then ``report`` is None: it was removed); None when
    ``seg_dir`` lies in no pseudo-label folder."""
    from .folder_manifest import read_folder_manifest
    current = osp.abspath(seg_dir)
    while True:
        report = osp.join(current, REPORT)
        if osp.isfile(report):
            return current, report
        try:
            listed = read_folder_manifest(current, current)
        except OutputError:  # damaged: whose folder it is cannot be told, not a report
            listed = None
        if listed is not None and REPORT in listed[1]:
            return current, None
        parent = osp.dirname(current)
        if parent == current:
            return None
        current = parent


def _entries_by_label(report_path: str) -> Dict[str, dict]:
    """The report's entries by label file (relative to the folder); empty for an
    older report that records no image digest (nothing to compare)."""
    report = read_json(report_path, 'pseudo-label report')
    entries = report.get('images') if isinstance(report, dict) else None
    fmt = report.get('format') if isinstance(report, dict) else None
    if not isinstance(entries, list) or not any(
            isinstance(e, dict) and isinstance(e.get('img_sha256'), str) for e in entries):
        return {}
    by_label = {}
    for e in entries:
        if isinstance(e, dict) and e.get('accepted') and isinstance(e.get('img_path'), str):
            label = e.get('label') if isinstance(e.get('label'), str) else \
                label_file(image_key(e['img_path']), str(fmt))
            by_label[label] = e
    return by_label


def check_pseudo_pairs(pairs: Iterable[Tuple[str, Optional[str]]]) -> None:
    """Each ``(image, label)`` pair whose label file lies in a pseudo-label folder
    (found from the label's own real path, so whatever folder a data set names for its
    labels, above the pseudo-label folder, inside it or through a link) pairs the label
    with the image it was made from (by content).

    Args:
        pairs: ``(image path, label path or None)`` of each sample a data set reads.

    Raises:
        DataError: naming the image or label: the folder's report is missing (its
            manifest lists one), a label the report does not list, or an image whose
            content is not that of the image its label was made from.
    """
    from .paths import file_sha256
    folders: Dict[str, Optional[Tuple[str, Optional[str]]]] = {}  # per label folder
    reports: Dict[str, Dict[str, dict]] = {}
    for image, label in pairs:
        if not isinstance(label, str) or not osp.isfile(label):
            continue
        real = osp.realpath(label)
        where = osp.dirname(real)
        if where not in folders:
            folders[where] = pseudo_folder_above(where)
        found = folders[where]
        if found is None:
            continue
        folder, report = found
        if report is None:
            raise DataError(f'{folder}: a pseudo-label folder without its {REPORT} (its '
                            'manifest lists one): which images its labels were made from '
                            'cannot be checked; make the pseudo-labels again')
        if report not in reports:
            reports[report] = _entries_by_label(report)
        by_label = reports[report]
        if not by_label:  # an older report: no digest to compare
            continue
        rel = osp.relpath(real, osp.realpath(folder)).replace(osp.sep, '/')
        entry = by_label.get(rel)
        if entry is None:
            raise DataError(f'{label}: a label in the pseudo-label folder {folder} that '
                            f'its {REPORT} does not list: added or renamed by hand, or '
                            'pseudo-labels copied into a folder of labels with their '
                            f'report (then the report does not describe that folder: keep '
                            f'pseudo-labels in their own folder, or remove {REPORT} from '
                            'it)')
        expected = entry.get('img_sha256')
        if isinstance(expected, str) and file_sha256(image) != expected:
            raise DataError(f'{image}: not the image the pseudo-label {label} was made '
                            f'from ({entry["img_path"]} of the predicted images: same '
                            'name, other content, or another image paired with it); pair '
                            'the labels with the images they were predicted on')


def check_pseudo_images(report_path: str, img_dir: str,
                        images: Optional[Iterable[str]] = None) -> None:
    """Refuse images under ``img_dir`` that are not the ones the pseudo-labels of the
    report ``report_path`` were made from (compared by content), the images named as
    the report names them (``tools/cv.py --pseudo-labels``, before it plans folds).

    Args:
        report_path: a pseudo-label folder's ``pseudo_labels.json``.
        img_dir: the folder the images are read from now.
        images: the images read (paths relative to ``img_dir``); default: every image
            the report records a digest for.

    Raises:
        DataError: an image that cannot be read or whose content differs, naming it.
    """
    from .paths import file_sha256
    digests = {e['img_path']: e['img_sha256']
               for e in _entries_by_label(report_path).values()
               if isinstance(e.get('img_sha256'), str)}
    for rel in (digests if images is None else images):
        rel = rel.replace(osp.sep, '/')
        # inference run on a hand-bone data root names the images DCM/<...>
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
