"""The student's training data in self-training: the labelled training set plus the
pseudo-labelled images, and the check that a student started from the teacher has the
teacher's architecture.

Used by :mod:`.self_training`; the data sets are built from the labelled set's own
config, so the pseudo-labelled images go through the same pipeline and class list.
"""
from __future__ import annotations

import copy
import math
import os.path as osp
from typing import Optional

from mmengine.config import Config

from ..config.loading import load_config
from ..config.model import build_bare_model
from ..utils.checkpoint import check_checkpoint_file, read_fitting_checkpoint, state_dict_mismatch
from ..utils.errors import ConfigError

#: Data set types whose images and labels are named by ``data_prefix``
#: (``img_path``/``seg_map_path``) and an ``ann_file`` of stems.
FOLDER_DATASETS = ('BaseSegDataset', 'CamVidDataset', 'PortStructuresDataset')


def pseudo_dataset(labelled: dict, unlabelled_dir: str, pseudo_dir: str, task: str,
                   img_suffix: str, stems_file: str) -> dict:
    """The config of the pseudo-labelled data set: the labelled data set's type,
    pipeline and class list, pointed at the unlabelled images and the pseudo-labels."""
    kind = labelled.get('type', '')
    keep = {k: v for k, v in labelled.items()
            if k in ('type', 'pipeline', 'metainfo', 'reduce_zero_label', 'img_suffix',
                     'ignore_index', 'backend_args')}
    if task == 'multi-label':
        if kind != 'HandBoneDataset':
            raise ConfigError(f'multi-label self-training expects a HandBoneDataset as the '
                              f'labelled training set, got {kind!r}')
        return dict(keep, data_root=pseudo_dir, ann_file='accepted.txt',
                    data_prefix=dict(img_path=osp.abspath(unlabelled_dir),
                                     seg_map_path='outputs_json'))
    if kind not in FOLDER_DATASETS:
        raise ConfigError(f'multi-class self-training expects an image/label-folder data '
                          f'set ({", ".join(FOLDER_DATASETS)}) as the labelled training '
                          f'set, got {kind!r}')
    if kind == 'PortStructuresDataset':  # its folders are fixed; a plain folder set here
        from ..utils.class_names import PORT_CLASSES, PORT_PALETTE
        keep['type'] = 'BaseSegDataset'
        keep['metainfo'] = keep.get('metainfo') or dict(classes=PORT_CLASSES,
                                                        palette=PORT_PALETTE)
    return dict(keep, data_root='', ann_file=stems_file, img_suffix=img_suffix,
                seg_map_suffix='.png',
                data_prefix=dict(img_path=unlabelled_dir, seg_map_path=pseudo_dir))


def check_student_fits_teacher(student_cfg: Config, student_config: str,
                               teacher_config: str, teacher_checkpoint: Optional[str],
                               cfg_options: Optional[dict] = None) -> None:
    """Starting the student from the teacher's weights needs the same architecture.

    mmengine's ``load_from`` is not strict: a student of another architecture would start
    from a partial copy without a word. Checked before the teacher trains, against the
    given teacher checkpoint or else against the teacher config's model.

    Raises:
        CheckpointNotFoundError: the teacher checkpoint does not exist.
        CheckpointError: the teacher checkpoint does not fit the student's model.
        ConfigError: the teacher config's model differs from the student's.
    """
    if teacher_checkpoint is not None:
        check_checkpoint_file(teacher_checkpoint)
    student = build_bare_model(student_cfg)
    if teacher_checkpoint is not None:
        read_fitting_checkpoint(student, teacher_checkpoint, student_config)
        return
    teacher = build_bare_model(load_config(teacher_config, cfg_options))
    problem = state_dict_mismatch(student, teacher.state_dict())
    if problem:
        raise ConfigError(f'{student_config}: starting the student from the teacher needs '
                          f'the model of {teacher_config} ({problem})')


def dataset_length(dataset_cfg: dict) -> int:
    """Number of samples of a data set config (builds it: lists its files)."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS
    init_default_scope('mmseg')
    return len(DATASETS.build(copy.deepcopy(dataset_cfg)))


def add_pseudo_labels(cfg: Config, unlabelled_dir: str, pseudo_dir: str, task: str,
                      img_suffix: str, stems_file: str, num_pseudo: int) -> None:
    """Train ``cfg`` on its labelled set plus the pseudo-labelled images (in place); the
    labelled set is repeated ``ceil(num_pseudo / len(labelled))`` times."""
    labelled = cfg.train_dataloader.dataset
    if labelled.get('type') in ('ConcatDataset', 'RepeatDataset', 'ClassBalancedDataset'):
        raise ConfigError(f'the student\'s train_dataloader.dataset is a '
                          f'{labelled.get("type")}; self-training adds the pseudo-labelled '
                          'set itself and needs the plain labelled data set')
    labelled = copy.deepcopy(labelled.to_dict() if hasattr(labelled, 'to_dict')
                             else dict(labelled))
    pseudo = pseudo_dataset(labelled, unlabelled_dir, pseudo_dir, task, img_suffix,
                            stems_file)
    times = math.ceil(num_pseudo / max(dataset_length(labelled), 1))
    if times > 1:
        labelled = dict(type='RepeatDataset', times=times, dataset=labelled)
    cfg.train_dataloader.dataset = dict(type='ConcatDataset', datasets=[labelled, pseudo])
