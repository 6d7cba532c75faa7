"""Offline self-training: teacher -> pseudo-labels -> student on labelled + pseudo data.

What ``tools/self_train.py`` runs (the recipe of ST++, without its image ranking):

1. **teacher**: train ``teacher_config`` on the labelled data (or take a checkpoint);
2. **pseudo-labels**: predict class probabilities for the unlabelled images
   (:func:`~mmseg_ext.inference.predictor.infer_folder`) and write them in the data set's own
   format with confidence filtering (:func:`~mmseg_ext.workflows.pseudo_label.pseudo_label_folder`):
   label PNGs with low-confidence pixels set to 255 (multi-class), or polygon JSON with
   uncertain images left out (multi-label);
3. **student**: train ``student_config`` from its own initialisation (or from the
   teacher's weights, ``student_init='teacher'``) on its labelled
   training set plus the pseudo-labelled images (an mmengine ``ConcatDataset`` of the
   config's ``train_dataloader.dataset``, repeated to about the size of the
   pseudo-labelled set as ST++ does, and the same data set type pointed at the
   unlabelled images and the pseudo-labels). The student config is expected to carry
   the strong augmentation (e.g. :class:`~mmseg_ext.models.SegCutMix` in
   ``BatchAugmentSegDataPreProcessor``);
4. with ``rounds > 1`` the student becomes the next teacher.

Everything is written under ``work_dir``: ``teacher/``, ``round<k>/probs``,
``round<k>/pseudo``, ``round<k>/student``, and ``summary.json`` at the end. Checkpoints
are the last ones of each run (never chosen on the validation set).

The work directory is the tool's alone (:mod:`mmseg_ext.io.ownership`): locked while a
run uses it, every output listed in its manifest, ``force`` removing only listed
outputs that are unchanged; a folder the tool did not make, or one that is, holds or
lies inside an input, is refused. A resumed stage proves what it is
(:func:`~.stages.stage_result`): the teacher's marker its checkpoint; a round's
probabilities the model's fingerprint and the unlabelled images' names, sizes and
modification times (else they, the pseudo-labels and the student are made again); the
student's marker the teacher's fingerprint and the accepted pseudo-labelled list.
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
import os.path as osp
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

from mmengine.config import Config
from mmengine.logging import print_log

from ..config.loading import check_runner_path, config_hash, load_config
from ..config.model import build_bare_model
from ..inference.predictor import build_predictor, infer_folder
from ..io.atomic import atomic_write_text
from ..io.ownership import Manifest, files_stamp, fingerprint, owned_work_dir
from ..training.runner import train_config
from ..training.stages import (
    check_run_record,
    last_checkpoint,
    mark_stage_done,
    owned_output,
    same_prob_source,
    stage_result,
    train_and_validate,
    write_run_record,
)
from ..utils.checkpoint import read_fitting_checkpoint, state_dict_mismatch
from ..utils.errors import CheckpointNotFoundError, ConfigError, DataError, InvalidArgumentError
from ..utils.readers import read_lines
from .pseudo_label import pseudo_label_folder, read_pseudo_summary

#: Data set types whose images and labels are named by ``data_prefix``
#: (``img_path``/``seg_map_path``) and an ``ann_file`` of stems.
FOLDER_DATASETS = ('BaseSegDataset', 'CamVidDataset', 'PortStructuresDataset')


@dataclass
class RoundSummary:
    round: int
    teacher_checkpoint: str
    probs_dir: str
    pseudo_dir: str
    unlabelled_images: int
    accepted: int
    student_work_dir: str
    student_checkpoint: str
    student_metrics: Dict[str, float] = field(default_factory=dict)


@dataclass
class SelfTrainingSummary:
    work_dir: str
    teacher_checkpoint: str
    teacher_metrics: Dict[str, float]
    rounds: List[RoundSummary]
    seconds: float

    @property
    def final_checkpoint(self) -> str:
        return self.rounds[-1].student_checkpoint


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
    if teacher_checkpoint is not None and '://' not in teacher_checkpoint \
            and not osp.isfile(teacher_checkpoint):
        raise CheckpointNotFoundError(teacher_checkpoint)
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


#: the parameters of the self-training run a work directory holds
RUN_RECORD = 'self_train.json'
#: the tool named in the work directory's manifest
TOOL = 'tools/self_train.py'


def run_record(teacher_config: str, student_config: str, unlabelled_dir: str,
               images: Sequence[str], teacher_checkpoint: Optional[str], rounds: int,
               pixel_conf: float, max_uncertain: float, min_mean_conf: float,
               student_init: str, img_suffix: str, cfg_options: Optional[dict],
               config_hashes: Sequence[str] = ()) -> dict:
    """What makes two self-training commands the same run (JSON-able): also the
    content of both configs (``config_hashes``), so an edited config is another run."""
    import hashlib
    absolute = osp.abspath
    return dict(
        teacher_config=absolute(teacher_config), student_config=absolute(student_config),
        unlabelled_dir=absolute(unlabelled_dir),
        images=hashlib.sha256('\n'.join(sorted(images)).encode()).hexdigest(),
        teacher_checkpoint=absolute(teacher_checkpoint) if teacher_checkpoint else None,
        rounds=rounds, pixel_conf=pixel_conf, max_uncertain=max_uncertain,
        min_mean_conf=min_mean_conf, student_init=student_init, img_suffix=img_suffix,
        cfg_options=json.loads(json.dumps(cfg_options or {}, sort_keys=True, default=str)),
        config_hashes=list(config_hashes))


def check_earlier_run(work_dir: str, record: dict, rounds: int, force: bool) -> bool:
    """Whether ``work_dir`` holds an unfinished run of the same command (resume it);
    see :func:`~.stages.check_run_record`."""
    outputs = [osp.join(work_dir, f'round{k}', part) for k in range(1, rounds + 1)
               for part in ('probs', 'pseudo')]
    return check_run_record(work_dir, RUN_RECORD, record, force, 'self-training', outputs)


def run_inputs(teacher_config: str, student_config: str, student_cfg: Config,
               unlabelled_dir: str, unlabelled_list: Optional[str],
               teacher_checkpoint: Optional[str]) -> List[str]:
    """Every input a run reads (the work dir may be none of them, hold none and lie
    inside none): the configs, the labelled data roots, the unlabelled images and
    list, the teacher checkpoint."""
    inputs = [teacher_config, student_config, unlabelled_dir, unlabelled_list]
    if teacher_checkpoint and '://' not in teacher_checkpoint:
        inputs.append(teacher_checkpoint)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        root = ((student_cfg.get(loader) or {}).get('dataset') or {}).get('data_root')
        if isinstance(root, str) and root:
            inputs.append(root)
    return [i for i in inputs if i]


def training_dirs(work_dir: str, rounds: int, teacher_checkpoint: Optional[str]
                  ) -> List[str]:
    """The folders the run's trainings write in place: the teacher's (unless given
    ``teacher_checkpoint``) and each round's student."""
    dirs = [] if teacher_checkpoint else [osp.join(work_dir, 'teacher')]
    return dirs + [osp.join(work_dir, f'round{k}', 'student') for k in range(1, rounds + 1)]


def _list_hash(names: Sequence[str]) -> str:
    return hashlib.sha256('\n'.join(names).encode()).hexdigest()[:16]


def self_train(teacher_config: str, student_config: str, unlabelled_dir: str, work_dir: str,
               unlabelled_list: Optional[str] = None, img_suffix: str = '.jpg',
               teacher_checkpoint: Optional[str] = None, rounds: int = 1,
               pixel_conf: float = 0.9, max_uncertain: float = 1.0,
               min_mean_conf: float = 0.0, student_init: str = 'scratch',
               cfg_options: Optional[dict] = None, force: bool = False,
               progress: bool = True,
               log: Optional[Callable[[str], None]] = None) -> SelfTrainingSummary:
    """Run the recipe of the module doc; return what each stage produced.

    Args:
        teacher_config, student_config: the labelled-only config and the student's
            (its ``train_dataloader.dataset`` is the labelled set; the pseudo-labelled
            set is added here).
        unlabelled_dir: folder of the unlabelled images.
        unlabelled_list: optional file naming the unlabelled images under
            ``unlabelled_dir`` (stems or paths); default: every ``img_suffix`` image.
        img_suffix: suffix of the unlabelled images.
        teacher_checkpoint: skip step 1 and use this checkpoint of ``teacher_config``.
        rounds: self-training rounds (>= 1).
        pixel_conf, max_uncertain, min_mean_conf: pseudo-label filters.
        student_init: ``'scratch'`` (the student config's own initialisation, as ST++)
            or ``'teacher'`` (start from the teacher's weights; same architecture).
        cfg_options: overrides applied to both configs (data roots, ...).
        force: start again, replacing what an earlier run left in ``work_dir``. Without
            it, the same command run again resumes an unfinished run (finished stages
            are kept: the teacher, each round's probabilities, pseudo-labels and
            student; recorded in ``self_train.json``), and a work directory of another
            run is refused before anything trains.
        log: receives one line per stage (default: mmengine's ``print_log``).
    """
    if log is None:
        def log(message: str) -> None:
            print_log(message, logger='current')
    if rounds < 1:
        raise InvalidArgumentError('rounds', f'must be >= 1, got {rounds}')
    if student_init not in ('scratch', 'teacher'):
        raise InvalidArgumentError('student_init', f"must be 'scratch' or 'teacher', got "
                                   f'{student_init!r}')
    start = time.perf_counter()
    check_runner_path(work_dir, 'work_dir')
    from ..io.images import list_images, read_image_list, skipped_note
    from ..io.paths import check_output_apart
    check_output_apart(work_dir, [unlabelled_dir, unlabelled_list, teacher_config,
                                  student_config], 'work_dir')
    if unlabelled_list is not None:
        images = read_image_list(unlabelled_list, img_suffix, root=unlabelled_dir)
    else:
        skipped: List[str] = []
        images = list_images(unlabelled_dir, (img_suffix,), skipped)
        note = skipped_note(unlabelled_dir, skipped, (img_suffix,))
        if note:
            log(note)
        if not images:
            raise DataError(f'{unlabelled_dir}: no *{img_suffix} images')
    # fail on a bad student config or an earlier run's outputs before hours of training
    student_cfg = load_config(student_config, cfg_options)
    if student_init == 'teacher':
        check_student_fits_teacher(student_cfg, student_config, teacher_config,
                                   teacher_checkpoint, cfg_options)
    check_output_apart(work_dir, run_inputs(teacher_config, student_config, student_cfg,
                                            unlabelled_dir, unlabelled_list,
                                            teacher_checkpoint), 'work_dir')
    record = run_record(teacher_config, student_config, unlabelled_dir, images,
                        teacher_checkpoint, rounds, pixel_conf, max_uncertain,
                        min_mean_conf, student_init, img_suffix, cfg_options,
                        (config_hash(load_config(teacher_config, cfg_options)),
                         config_hash(student_cfg)))
    with owned_work_dir(work_dir, TOOL) as manifest:
        resume = check_earlier_run(work_dir, record, rounds, force)
        if resume:
            log(f'resuming the self-training run in {work_dir}: finished stages are kept')
        elif force:
            # the training folders hold nothing but the tool's files once its listed
            # ones are removed: checked before removing anything
            for stage_dir in training_dirs(work_dir, rounds, teacher_checkpoint):
                manifest.check_in_place(stage_dir, unlisted_only=True)
            removed = manifest.remove_all()
            if removed:
                log(f'{work_dir}: removed {len(removed)} outputs of the earlier run')
        write_run_record(work_dir, RUN_RECORD, record, manifest)
        return _stages(teacher_config, student_config, unlabelled_dir, work_dir, images,
                       img_suffix, teacher_checkpoint, rounds, pixel_conf, max_uncertain,
                       min_mean_conf, student_init, cfg_options, resume, progress, log,
                       manifest, start)


def _stages(teacher_config: str, student_config: str, unlabelled_dir: str, work_dir: str,
            images: List[str], img_suffix: str, teacher_checkpoint: Optional[str],
            rounds: int, pixel_conf: float, max_uncertain: float, min_mean_conf: float,
            student_init: str, cfg_options: Optional[dict], resume: bool, progress: bool,
            log: Callable[[str], None], manifest: Manifest,
            start: float) -> SelfTrainingSummary:
    """The stages of :func:`self_train` in its locked work dir."""
    teacher_metrics: Dict[str, float] = {}
    if teacher_checkpoint is None:
        teacher_dir = osp.join(work_dir, 'teacher')
        finished = resume and stage_result(teacher_dir, dict(stage='teacher'))
        if finished:
            teacher_checkpoint, teacher_metrics = finished
            log(f'[1/3] teacher: finished earlier, {teacher_checkpoint}')
        else:
            log(f'[1/3] teacher: training {teacher_config} in {teacher_dir}')
            with owned_output(manifest, teacher_dir, replace=False):
                teacher_metrics = train_and_validate(
                    train_config(teacher_config, work_dir=teacher_dir,
                                 cfg_options=cfg_options))
            teacher_checkpoint = last_checkpoint(teacher_dir)
            mark_stage_done(teacher_dir, teacher_checkpoint, teacher_metrics,
                            dict(stage='teacher'), manifest)
        log(f'teacher: {teacher_checkpoint} {metrics_text(teacher_metrics)}')
    ckpt, config = teacher_checkpoint, teacher_config
    done: List[RoundSummary] = []
    try:
        inputs = files_stamp(unlabelled_dir, images)
    except OSError as exc:
        raise DataError(f'{exc.filename or unlabelled_dir}: cannot read the image '
                        f'({exc.strerror or exc})') from None
    for k in range(1, rounds + 1):
        here = osp.join(work_dir, f'round{k}')
        probs_dir = osp.join(here, 'probs')
        pseudo_dir = osp.join(here, 'pseudo')
        student_dir = osp.join(here, 'student')
        predictor = build_predictor(config, ckpt, cfg_options=cfg_options)
        source = dict(config=osp.abspath(config), checkpoint=osp.abspath(ckpt),
                      checkpoint_stamp=fingerprint(ckpt) if osp.isfile(ckpt) else ckpt,
                      unlabelled_dir=osp.abspath(unlabelled_dir), inputs=inputs, round=k)
        kept = resume and same_prob_source(probs_dir, source)
        with owned_output(manifest, probs_dir):
            if kept:
                log(f'[2/3] round {k}: probabilities finished earlier in {probs_dir}')
            else:
                log(f'[2/3] round {k}: probabilities of {len(images)} unlabelled images '
                    f'with {ckpt}')
                infer_folder(predictor, unlabelled_dir, probs_dir, out_size='original',
                             images=images, source=source, force=True, progress=progress)
        fmt = 'handbone-json' if predictor.task == 'multi-label' else 'label-png'
        earlier = kept and read_pseudo_summary(pseudo_dir)
        with owned_output(manifest, pseudo_dir):
            if earlier:
                pseudo = earlier
            else:
                pseudo = pseudo_label_folder(probs_dir, pseudo_dir, fmt=fmt,
                                             pixel_conf=pixel_conf,
                                             max_uncertain=max_uncertain,
                                             min_mean_conf=min_mean_conf, force=True,
                                             progress=progress)
        log(f'pseudo-labels: {pseudo.accepted} of {pseudo.images} images accepted -> '
            f'{pseudo_dir}')
        if not pseudo.accepted:
            raise DataError(f'{pseudo_dir}: every image was rejected by the confidence '
                            'filters; lower them or train a better teacher')
        stems_file = osp.join(here, 'pseudo_stems.txt')
        accepted = [line for _, line in read_lines(osp.join(pseudo_dir, 'accepted.txt'),
                                                    'list of accepted pseudo-labels')]
        with owned_output(manifest, stems_file):
            atomic_write_text(stems_file, ''.join(
                (a[:-len(img_suffix)] if a.endswith(img_suffix) else osp.splitext(a)[0])
                + '\n' for a in accepted), force=True)
        claims = dict(stage=f'round{k} student', teacher=source['checkpoint_stamp'],
                      pseudo=_list_hash(accepted))
        finished = (resume and kept and earlier) and stage_result(student_dir, claims)
        if finished:
            student_ckpt, metrics = finished
            log(f'[3/3] round {k}: student finished earlier, {student_ckpt}')
        else:
            cfg = train_config(student_config, work_dir=student_dir,
                               cfg_options=cfg_options)
            if student_init == 'teacher':
                cfg.load_from = ckpt  # fits: checked by check_student_fits_teacher
            add_pseudo_labels(cfg, unlabelled_dir, pseudo_dir, predictor.task, img_suffix,
                              stems_file, len(accepted))
            log(f'[3/3] round {k}: student {student_config} on labelled + {len(accepted)} '
                f'pseudo-labelled images in {student_dir}')
            with owned_output(manifest, student_dir, replace=False):
                metrics = train_and_validate(cfg)
            student_ckpt = last_checkpoint(student_dir)
            mark_stage_done(student_dir, student_ckpt, metrics, claims, manifest)
        ckpt, config = student_ckpt, student_config
        log(f'student: {ckpt} {metrics_text(metrics)}')
        done.append(RoundSummary(k, teacher_checkpoint if k == 1 else done[-1].student_checkpoint,
                                 probs_dir, pseudo_dir, pseudo.images, pseudo.accepted,
                                 student_dir, ckpt, metrics))
    summary = SelfTrainingSummary(work_dir, teacher_checkpoint, teacher_metrics, done,
                                  time.perf_counter() - start)
    path = osp.join(work_dir, 'summary.json')
    with owned_output(manifest, path):
        atomic_write_text(path, json.dumps(asdict(summary), indent=1), force=True)
    return summary


def metrics_text(metrics: Dict[str, float],
                 keys: Sequence[str] = ('mIoU', 'mIoU_per_image', 'mDice', 'mDice_dataset')
                 ) -> str:
    """``'mIoU=52.68 mIoU_per_image=52.22'``: the ``keys`` that ``metrics`` has."""
    shown = [f'{k}={metrics[k]:.4g}' for k in keys if k in metrics]
    return ' '.join(shown) if shown else ''
