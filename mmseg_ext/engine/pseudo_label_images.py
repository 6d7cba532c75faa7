"""Refuse a training whose pseudo-labels are paired with other images.

A training set may read a pseudo-label folder of ``tools/pseudo_label.py`` directly (a
``ConcatDataset`` of the labelled set and a data set whose labels are the pseudo-label
folder, as the demo's pseudo-label config does), with the images from a folder the
config names. When the images there are not the ones the labels were drawn for (other
images under the same names, test images replaced after pseudo-labelling), the model
learns polygons of different pictures without a word. The folder's report records each
image's SHA-256 (:mod:`mmseg_ext.io.pseudo_report`); this hook compares them before the
first iteration.
"""
from __future__ import annotations

import os.path as osp
from typing import Any

from mmengine.hooks import Hook

from ..io.pseudo_report import check_pseudo_images, report_of_labels
from .dataset_parts import leaf_datasets


def check_dataset_pseudo_images(dataset: Any) -> None:
    """Each data set under ``dataset`` whose label folder is a pseudo-label folder reads
    the images its labels were made from.

    Raises:
        DataError: naming the first image whose content differs.
    """
    for part in leaf_datasets(dataset):
        prefix = getattr(part, 'data_prefix', None) or {}
        seg_dir, img_dir = prefix.get('seg_map_path'), prefix.get('img_path')
        report = report_of_labels(seg_dir) if isinstance(seg_dir, str) and seg_dir \
            else None
        get = getattr(part, 'get_data_info', None)
        if report is None or not isinstance(img_dir, str) or get is None:
            continue
        images = []
        for i in range(len(part)):
            path = get(i).get('img_path')
            if isinstance(path, str):
                images.append(osp.relpath(path, img_dir))
        check_pseudo_images(report, img_dir, images)


class PseudoLabelImageHook(Hook):
    """Before training, refuse pseudo-labels paired with images they were not made
    from (:func:`check_dataset_pseudo_images`)."""

    def before_train(self, runner: Any) -> None:
        check_dataset_pseudo_images(runner.train_dataloader.dataset)
