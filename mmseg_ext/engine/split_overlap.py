"""Say when a training validates on its own training images.

A fold setting given to one loader and not the other (``train_dataloader.dataset.fold=1``
with validation still on fold 0), another ``fold_seed`` or ``subset`` for one of them,
or two data roots that share files make the validation set overlap the training set,
and the validation scores then look better than the model is. Some runs do it on
purpose (the benchmarks train on every image and validate on a part of them), so this
is a warning, given once before the first iteration, not a refusal.
"""
from __future__ import annotations

import logging
import os.path as osp
from typing import Any, Dict, Set, Tuple

from mmengine.hooks import Hook
from mmengine.logging import print_log

from .dataset_parts import leaf_datasets


def _images(dataset: Any) -> Tuple[Set[str], Dict[str, str]]:
    """The real paths of a data set's images (a concatenation's parts too), and the
    patient of each image whose data info names one (hand-bone data: ``{patient: an
    image}``, a patient named by its folder's real path); empty when the data set does
    not list them."""
    found: Set[str] = set()
    patients: Dict[str, str] = {}
    for part in leaf_datasets(dataset):
        get = getattr(part, 'get_data_info', None)  # mmengine may serialise data_list
        if get is None:
            continue
        for i in range(len(part)):
            info = get(i)
            path = info.get('img_path') if isinstance(info, dict) else None
            if isinstance(path, str):
                found.add(osp.realpath(path))
                patient = _patient_folder(path, info.get('patient'))
                if patient:
                    patients.setdefault(patient, path)
    return found, patients


def _patient_folder(img_path: str, patient: Any) -> str:
    """The real path of the patient folder ``patient`` above ``img_path`` (so one
    patient name in two data roots is two patients); ``''`` when there is none."""
    if not isinstance(patient, str) or not patient:
        return ''
    folder = osp.dirname(osp.abspath(img_path))
    while osp.basename(folder) != patient:
        parent = osp.dirname(folder)
        if parent == folder:
            return ''
        folder = parent
    return osp.realpath(folder)


class ValidationOverlapHook(Hook):
    """Before training, warn in one line when validation images are training images, or
    else when a patient has images on both sides."""

    def before_train(self, runner: Any) -> None:
        try:
            loop = runner.val_loop
            train, train_patients = _images(runner.train_dataloader.dataset)
            val, val_patients = _images(loop.dataloader.dataset) if loop is not None \
                else (set(), {})
        except (AttributeError, TypeError, RuntimeError):
            return
        shared = sorted(train & val)
        patients = sorted(set(train_patients) & set(val_patients))
        if shared:
            print_log(f'{len(shared)} of the {len(val)} validation images are also '
                      f'training images (e.g. {shared[0]}): the validation scores of '
                      'this run are optimistic (check the fold settings of both loaders)',
                      logger='current', level=logging.WARNING)
        elif patients:
            p = patients[0]
            print_log(f'{len(patients)} patient(s) have images in both the training and '
                      f'the validation set (e.g. {p}: {train_patients[p]} and '
                      f'{val_patients[p]}): the validation scores of this run are '
                      'optimistic (keep each patient in one split)',
                      logger='current', level=logging.WARNING)
