"""Refuse a training whose pseudo-labels are paired with other images.

A training set may read a pseudo-label folder of ``tools/pseudo_label.py`` directly (a
``ConcatDataset`` of the labelled set and a data set whose labels are the pseudo-label
folder, as the demo's pseudo-label config does), with the images from a folder the
config names. When the images there are not the ones the labels were drawn for (other
images under the same names, test images replaced after pseudo-labelling), the model
learns polygons of different pictures without a word. The folder's report records each
label's image and its SHA-256 (:mod:`mmseg_ext.io.pseudo_report`); this hook compares,
for every label a training, validation or test set reads from such a folder, the image
it is paired with, before that loop's first iteration.
"""
from __future__ import annotations

from typing import Any

from ..engine.dataset_parts import leaf_datasets
from ..io.pseudo_report import check_pseudo_pairs
from .dataset_check_hook import DatasetCheckHook


def check_dataset_pseudo_images(dataset: Any) -> None:
    """Each data set under ``dataset`` whose label files lie in a pseudo-label folder
    pairs them with the images they were made from (:func:`check_pseudo_pairs`).

    Raises:
        DataError: naming the first image or label that does not fit.
    """
    for part in leaf_datasets(dataset):
        get = getattr(part, 'get_data_info', None)
        if get is None:
            continue
        infos = (get(i) for i in range(len(part)))
        check_pseudo_pairs((info.get('img_path'), info.get('seg_map_path'))
                           for info in infos if isinstance(info, dict))


class PseudoLabelImageHook(DatasetCheckHook):
    """Before training, validation and testing, refuse pseudo-labels paired with images
    they were not made from (:func:`check_dataset_pseudo_images`): a validation or test
    set that reads a pseudo-label folder with other images would score against labels of
    different pictures."""

    check = staticmethod(check_dataset_pseudo_images)
