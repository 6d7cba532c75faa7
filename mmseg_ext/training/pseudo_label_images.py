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

from mmengine.hooks import Hook

from ..engine.dataset_parts import leaf_datasets
from ..io.pseudo_report import check_pseudo_pairs


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


class PseudoLabelImageHook(Hook):
    """Before training, validation and testing, refuse pseudo-labels paired with images
    they were not made from (:func:`check_dataset_pseudo_images`): a validation or test
    set that reads a pseudo-label folder with other images would score against labels of
    different pictures. Each data set is checked once per run."""

    def __init__(self) -> None:
        self._checked: set = set()

    def _check(self, loader: Any) -> None:
        dataset = getattr(loader, 'dataset', None)
        if dataset is None or id(dataset) in self._checked:
            return
        check_dataset_pseudo_images(dataset)
        self._checked.add(id(dataset))

    def before_train(self, runner: Any) -> None:
        self._check(runner.train_dataloader)

    def before_val(self, runner: Any) -> None:
        self._check(runner.val_dataloader)

    def before_test(self, runner: Any) -> None:
        self._check(runner.test_dataloader)
