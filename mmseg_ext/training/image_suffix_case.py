"""Refuse a data set that leaves images out because their suffix differs in case.

mmseg's folder data sets (``BaseSegDataset`` and the data sets built on it) list an
image folder by ``img_suffix`` as written: with ``img_suffix='.png'`` an export that
wrote ``0001.PNG`` (cameras and Windows tools do) is not listed, so training, validation
and cross-validation run without it, without a word, while the plugin's own listings
(inference, kfold, hand-bone data sets) take it. Here every data set that lists its
image folder (no ``ann_file``) is compared with that folder: a file whose name ends with
``img_suffix`` only when case is ignored, and that the data set did not list, is an
error naming the file.
"""
from __future__ import annotations

import os
import os.path as osp
from typing import Any, Iterator, Optional

from ..engine.dataset_parts import leaf_datasets
from ..utils.errors import DataError
from .dataset_check_hook import DatasetCheckHook


def _listing_folder(part: Any) -> Optional[str]:
    """The image folder ``part`` lists by suffix (None: it reads a list file, or has no
    image folder)."""
    if getattr(part, 'ann_file', ''):
        return None
    prefix = getattr(part, 'data_prefix', None)
    folder = prefix.get('img_path') if isinstance(prefix, dict) else None
    return folder if isinstance(folder, str) and folder and osp.isdir(folder) else None


def _files_listed_by_mmengine(folder: str) -> Iterator[str]:
    """The files mmengine's recursive folder listing considers: not hidden, in every
    sub-folder (links followed; a folder reached twice by links is read once)."""
    seen = set()
    for root, dirs, files in os.walk(folder, followlinks=True):
        real = osp.realpath(root)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        for name in files:
            if not name.startswith('.'):
                yield osp.join(root, name)


def check_suffix_case(dataset: Any) -> None:
    """Each data set under ``dataset`` that lists an image folder by a suffix lists
    every image of that folder whose suffix matches when case is ignored.

    Raises:
        DataError: naming the first image left out and the data set's suffix.
    """
    for part in leaf_datasets(dataset):
        suffix = getattr(part, 'img_suffix', None)
        folder = _listing_folder(part)
        if not isinstance(suffix, str) or not suffix or folder is None:
            continue
        get = getattr(part, 'get_data_info', None)
        if get is None:
            continue
        listed = {osp.normpath(str(get(i).get('img_path'))) for i in range(len(part))}
        left_out = sorted(path for path in _files_listed_by_mmengine(folder)
                          if path.lower().endswith(suffix.lower())
                          and not path.endswith(suffix)
                          and osp.normpath(path) not in listed)
        if left_out:
            raise DataError(f'{left_out[0]}: its suffix differs in case from the data '
                            f'set\'s img_suffix {suffix!r}, so the data set would leave '
                            f'it out ({len(left_out)} such under {folder}); rename the '
                            f'images to end in {suffix!r}, or set img_suffix to theirs')


class ImageSuffixCaseHook(DatasetCheckHook):
    """Before training, validation and testing, refuse a data set that would leave out
    images whose suffix differs in case (:func:`check_suffix_case`)."""

    check = staticmethod(check_suffix_case)
