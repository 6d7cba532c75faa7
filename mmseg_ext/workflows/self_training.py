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

``method='unimatch'`` replaces steps 2-4 with one online training: the student config
wrapped in a weak-to-strong (UniMatch-style) segmentor
(:func:`~.weak_strong_data.weak_to_strong_config`), trained on the labelled set plus
the unlabelled images, by default from the teacher's weights. Either method can add a
**control** (``control=True``): the teacher trained on its labelled images alone for as
many iterations as the student, from the teacher's weights, so that what the unlabelled
images add is told apart from what the extra iterations add.

Everything is written under ``work_dir``: ``teacher/``, ``round<k>/probs``,
``round<k>/pseudo``, ``round<k>/student``, and ``summary.json`` at the end. Checkpoints
are the last ones of each run (never chosen on the validation set).

The work directory is the tool's alone (:mod:`mmseg_ext.io.ownership`): locked while a
run uses it, every output listed in its manifest, ``force`` removing only listed
outputs that are unchanged; a folder the tool did not make, or one that is, holds or
lies inside an input, is refused. A resumed stage proves what it is
(:func:`~.stages.stage_result`): the teacher's marker its checkpoint; a round's
probabilities the model's fingerprint and the unlabelled images' names and
fingerprints: size, time, content (else they, the pseudo-labels and the student are made again); the
student's marker the teacher's fingerprint and the accepted pseudo-labelled list.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os.path as osp
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from mmengine.config import Config
from mmengine.logging import print_log

from ..config.loading import check_runner_path, config_hash, load_config
from ..config.model import config_task
from ..config.outputs import check_no_shared_outputs
from ..config.schedule import set_iterations
from ..inference.predictor import TEST_FIRST, ProbabilityPredictor, build_predictor, infer_folder
from ..io.atomic import atomic_write_text
from ..io.images import list_images, read_image_list, skipped_note
from ..io.ownership import Manifest, files_stamp, fingerprint, owned_work_dir
from ..io.paths import check_output_apart
from ..training.runner import train_config
from ..training.stages import (
    check_run_record,
    discard_stale_pointer,
    last_checkpoint,
    mark_stage_done,
    owned_output,
    same_prob_source,
    stage_result,
    train_and_validate,
    write_run_record,
)
from ..utils.errors import ConfigError, DataError, InvalidArgumentError, OutputExistsError
from ..utils.readers import dumps_json, read_lines
from .pseudo_label import PseudoLabelSummary, pseudo_label_folder, read_pseudo_summary
from .student_data import add_pseudo_labels, check_student_fits_teacher


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
class TrainedStage:
    """One training of a run: its folder, last checkpoint, iterations and final
    validation metrics."""
    work_dir: str
    checkpoint: str
    iters: int
    metrics: Dict[str, float] = field(default_factory=dict)


@dataclass
class SelfTrainingSummary:
    work_dir: str
    teacher_checkpoint: str
    teacher_metrics: Dict[str, float]
    rounds: List[RoundSummary]
    seconds: float
    #: ``'offline'`` (pseudo-label rounds) or ``'unimatch'`` (one weak-to-strong training)
    method: str = 'offline'
    #: the weak-to-strong student (``method='unimatch'``)
    student: Optional[TrainedStage] = None
    #: the labelled-only continuation of the teacher (``control=True``)
    control: Optional[TrainedStage] = None

    @property
    def final_checkpoint(self) -> str:
        if self.student is not None:
            return self.student.checkpoint
        return self.rounds[-1].student_checkpoint


#: the parameters of the self-training run a work directory holds
RUN_RECORD = 'self_train.json'
#: the tool named in the work directory's manifest
TOOL = 'tools/self_train.py'
#: the semi-supervised methods of :func:`self_train`
METHODS = ('offline', 'unimatch')
#: each method's default ``pixel_conf``: offline, chosen on CamVid pseudo-label quality
#: (docs/semi_supervised.md); unimatch, the paper's threshold
PIXEL_CONF = {'offline': 0.9, 'unimatch': 0.95}
#: the unlabelled images of a weak-to-strong run, one a line (its data set's ann_file)
UNLABELLED_LIST = 'unlabelled.txt'


def run_record(teacher_config: str, student_config: str, unlabelled_dir: str,
               images: Sequence[str], teacher_checkpoint: Optional[str], rounds: int,
               pixel_conf: float, max_uncertain: float, min_mean_conf: float,
               student_init: str, img_suffix: str, cfg_options: Optional[dict],
               config_hashes: Sequence[str] = (), method: str = 'offline',
               student_iters: Optional[int] = None, control: bool = False) -> dict:
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
        config_hashes=list(config_hashes), method=method, student_iters=student_iters,
        control=control)


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


def training_dirs(work_dir: str, rounds: int, teacher_checkpoint: Optional[str],
                  method: str = 'offline', control: bool = False) -> List[str]:
    """The folders the run's trainings write in place: the teacher's (unless given
    ``teacher_checkpoint``), each round's student (or the weak-to-strong student) and
    the control's."""
    dirs = [] if teacher_checkpoint else [osp.join(work_dir, 'teacher')]
    if method == 'unimatch':
        dirs.append(osp.join(work_dir, 'student'))
    else:
        dirs += [osp.join(work_dir, f'round{k}', 'student') for k in range(1, rounds + 1)]
    return dirs + ([osp.join(work_dir, 'control')] if control else [])


def _list_hash(names: Sequence[str]) -> str:
    return hashlib.sha256('\n'.join(names).encode()).hexdigest()[:16]


def self_train(teacher_config: str, student_config: str, unlabelled_dir: str, work_dir: str,
               unlabelled_list: Optional[str] = None, img_suffix: str = '.jpg',
               teacher_checkpoint: Optional[str] = None, rounds: int = 1,
               pixel_conf: Optional[float] = None, max_uncertain: float = 1.0,
               min_mean_conf: float = 0.0, student_init: Optional[str] = None,
               cfg_options: Optional[dict] = None, force: bool = False,
               progress: bool = True,
               log: Optional[Callable[[str], None]] = None, method: str = 'offline',
               student_iters: Optional[int] = None,
               control: bool = False) -> SelfTrainingSummary:
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
        pixel_conf, max_uncertain, min_mean_conf: pseudo-label filters
            (``method='unimatch'``: ``pixel_conf`` is the confidence a weak-view
            prediction needs to teach, and the other two stay at their defaults);
            ``pixel_conf`` None: the method's default (:data:`PIXEL_CONF`).
        student_init: ``'scratch'`` (the student config's own initialisation, as ST++)
            or ``'teacher'`` (start from the teacher's weights; same architecture).
            Default: ``'scratch'`` for ``'offline'``, ``'teacher'`` for ``'unimatch'``
            (the measured recipe, docs/semi_supervised.md).
        cfg_options: overrides applied to both configs (data roots, ...).
        force: start again, replacing what an earlier run left in ``work_dir``. Without
            it, the same command run again resumes an unfinished run (finished stages
            are kept: the teacher, each round's probabilities, pseudo-labels and
            student; recorded in ``self_train.json``), and a work directory of another
            run is refused before anything trains.
        log: receives one line per stage (default: mmengine's ``print_log``).
        method: ``'offline'`` (pseudo-label rounds) or ``'unimatch'`` (one
            weak-to-strong training of ``student_config`` on the labelled set and the
            unlabelled images; ``rounds`` must be 1).
        student_iters: train each student (and the control) this many iterations
            (:func:`~mmseg_ext.config.schedule.set_iterations`); default: the student
            config's schedule.
        control: also train the teacher on its labelled images alone, from the
            teacher's weights, for the student's iterations (needs
            ``student_init='teacher'``).
    """
    if log is None:
        log = _print_log
    student_init = check_method_arguments(method, rounds, student_init, max_uncertain,
                                          min_mean_conf, student_iters, control)
    if pixel_conf is None:
        pixel_conf = PIXEL_CONF[method]
    start = time.perf_counter()
    check_runner_path(work_dir, 'work_dir')
    check_output_apart(work_dir, [unlabelled_dir, unlabelled_list, teacher_config,
                                  student_config], 'work_dir')
    if teacher_checkpoint and '://' not in teacher_checkpoint:
        from ..utils.checkpoint import check_checkpoint_bytes, check_checkpoint_file
        check_checkpoint_file(teacher_checkpoint)  # named now, not after the record
        check_checkpoint_bytes(teacher_checkpoint)
    images = unlabelled_images(unlabelled_dir, unlabelled_list, img_suffix, log)
    # fail on a bad student config or an earlier run's outputs before hours of training
    student_cfg = load_config(student_config, cfg_options)
    if student_iters is not None:
        set_iterations(student_cfg, student_iters, student_config)
    if student_init == 'teacher':
        check_student_fits_teacher(student_cfg, student_config, teacher_config,
                                   teacher_checkpoint, cfg_options)
    check_output_apart(work_dir, run_inputs(teacher_config, student_config, student_cfg,
                                            unlabelled_dir, unlabelled_list,
                                            teacher_checkpoint), 'work_dir')
    teacher_cfg = load_config(teacher_config, cfg_options)
    check_same_classes(teacher_cfg, teacher_config, student_cfg, student_config)
    check_no_shared_outputs(teacher_cfg, teacher_config, 'the teacher and student '
                            'trainings')
    check_no_shared_outputs(student_cfg, student_config, 'the student trainings of '
                            'each round')
    if teacher_checkpoint:
        check_teacher_checkpoint(teacher_cfg, teacher_config, teacher_checkpoint)
    if config_task(teacher_cfg) == 'multi-label' and not 0.5 < pixel_conf <= 1.0:
        # pseudo_label_folder's own check, made before the teacher trains or predicts
        raise InvalidArgumentError('pixel_conf', f'{pixel_conf} must be in (0.5, 1] for '
                                   'a multi-label teacher (p and 1 - p are both '
                                   'confidences)')
    if method == 'unimatch':  # a config the wrapper refuses is named before training
        check_weak_to_strong(student_cfg, student_config, unlabelled_dir, images,
                             img_suffix, pixel_conf)
    record = run_record(teacher_config, student_config, unlabelled_dir, images,
                        teacher_checkpoint, rounds, pixel_conf, max_uncertain,
                        min_mean_conf, student_init, img_suffix, cfg_options,
                        (config_hash(teacher_cfg), config_hash(student_cfg)),
                        method, student_iters, control)
    with owned_work_dir(work_dir, TOOL) as manifest:
        # lists the teacher's data sets: after the lock, so a run in use is named first
        check_unlabelled_apart(teacher_cfg, teacher_config, unlabelled_dir, images, log)
        if osp.abspath(student_config) != osp.abspath(teacher_config):
            # the student's labelled set is its own config's
            check_unlabelled_apart(student_cfg, student_config, unlabelled_dir, images, log)
        resume = start_or_resume(work_dir, record, rounds, force, teacher_checkpoint,
                                 manifest, log, method, control)
        run = _Run(teacher_config, student_config, unlabelled_dir, work_dir, images,
                   img_suffix, pixel_conf, max_uncertain, min_mean_conf, student_init,
                   cfg_options, resume, progress, log, manifest,
                   student_classes(student_cfg), method, student_iters, control,
                   student_cfg.train_cfg.get('max_iters', 0))
        return _stages(run, teacher_checkpoint, rounds, start)


def check_method_arguments(method: str, rounds: int, student_init: Optional[str],
                           max_uncertain: float, min_mean_conf: float,
                           student_iters: Optional[int], control: bool) -> str:
    """The arguments of :func:`self_train` that depend on ``method``; returns the
    student initialisation (its default is the method's).

    Raises:
        InvalidArgumentError: naming the argument.
    """
    if method not in METHODS:
        raise InvalidArgumentError('method', f'must be one of {", ".join(METHODS)}, got '
                                   f'{method!r}')
    if rounds < 1:
        raise InvalidArgumentError('rounds', f'must be >= 1, got {rounds}')
    if student_init is None:
        student_init = 'teacher' if method == 'unimatch' else 'scratch'
    if student_init not in ('scratch', 'teacher'):
        raise InvalidArgumentError('student_init', f"must be 'scratch' or 'teacher', got "
                                   f'{student_init!r}')
    if student_iters is not None and not 1 <= student_iters <= 2 ** 31 - 1:
        raise InvalidArgumentError('student_iters', f'must be in [1, 2**31 - 1], got '
                                   f'{student_iters}')
    if control and student_init != 'teacher':
        raise InvalidArgumentError('control', 'needs a student started from the teacher: '
                                   'the labelled-only control of a student from scratch is '
                                   'the teacher itself')
    if method == 'unimatch':
        if rounds != 1:
            raise InvalidArgumentError('rounds', f'the unimatch method trains one student '
                                       f'(its targets improve while it trains), got {rounds}')
        for name, value, default in (('max_uncertain', max_uncertain, 1.0),
                                     ('min_mean_conf', min_mean_conf, 0.0)):
            if value != default:
                raise InvalidArgumentError(name, 'filters offline pseudo-label images; the '
                                           'unimatch method keeps every image and filters '
                                           'pixels by pixel_conf')
    return student_init


def check_weak_to_strong(student_cfg: Config, student_config: str, unlabelled_dir: str,
                         images: Sequence[str], img_suffix: str, conf_thresh: float) -> None:
    """The weak-to-strong config made from ``student_cfg`` builds (its model and weak
    view), before anything trains.

    Raises:
        ConfigError: naming ``student_config`` (:func:`~.weak_strong_data.weak_to_strong_config`,
            or the wrapper's own checks).
    """
    import copy
    import warnings

    from ..config.model import build_bare_model
    from ..config.schedule import check_iteration_loop
    from .weak_strong_data import (
        check_unlabelled_sizes,
        check_weak_view,
        weak_to_strong_config,
    )
    check_iteration_loop(student_cfg, student_config, 'the weak-to-strong training (its '
                         'batches of labelled and unlabelled images never end an epoch)')
    cfg = copy.deepcopy(student_cfg)
    weak_to_strong_config(cfg, student_config, config_task(student_cfg), unlabelled_dir,
                          '', img_suffix, conf_thresh, None)
    check_weak_view(cfg.train_dataloader.dataset.datasets[1].pipeline, student_config)
    check_unlabelled_sizes(cfg, student_config,
                           [osp.join(unlabelled_dir, rel) for rel in images])
    try:
        with warnings.catch_warnings():  # a library's notes would come before the error
            warnings.simplefilter('ignore')
            build_bare_model(cfg)
    except ConfigError as exc:
        raise ConfigError(f'{student_config}: as a weak-to-strong training: {exc}') from None


def check_same_classes(teacher_cfg: Config, teacher_config: str, student_cfg: Config,
                       student_config: str) -> None:
    """The teacher predicts the classes the student learns, in order. Pseudo-labels of
    fewer classes would teach the student that its other classes are absent from
    every unlabelled image; of another order, that one class is another.

    Raises:
        ConfigError: naming both configs and their class lists.
    """
    from ..config.tta import config_classes
    teacher = config_classes(teacher_cfg, TEST_FIRST)  # the classes it predicts
    student = config_classes(student_cfg, ('train_dataloader',))
    if teacher and student and teacher != student:
        at = next((i for i, (a, b) in enumerate(zip(teacher, student)) if a != b),
                  min(len(teacher), len(student)))
        first = (f'class {at} is {teacher[at]!r} against {student[at]!r}'
                 if at < min(len(teacher), len(student)) else 'one list ends first')
        if len(teacher) != len(student):
            why = 'pseudo-labels would mark a missing class absent'
        else:  # as many classes: another order, or another name
            kind = 'another class order' if set(teacher) == set(student) \
                else 'another class name'
            why = f'{kind}: pseudo-labels would teach the student one class as another'
        raise ConfigError(f'{teacher_config}: the teacher predicts {len(teacher)} classes, '
                          f'the student ({student_config}) learns {len(student)}, and '
                          f'{first}; give both configs the same classes in the same order '
                          f'({why})')


def check_teacher_checkpoint(teacher_cfg: Config, teacher_config: str,
                             teacher_checkpoint: str) -> None:
    """The given teacher checkpoint fits the teacher config's model and was trained on
    its classes in its order (:func:`~mmseg_ext.config.checks.check_checkpoint_classes`,
    as ``tools/test.py`` checks): its channel ``k`` becomes label ``k`` of the
    pseudo-labels, which the student learns as the config's class ``k``.

    Raises:
        CheckpointError: the checkpoint does not fit the model.
        ConfigError: it was trained on other classes, or in another order.
    """
    from ..config.checks import check_checkpoint_classes, check_fits_config
    loaded = check_fits_config(teacher_cfg, teacher_checkpoint, teacher_config)
    check_checkpoint_classes(teacher_cfg, loaded, teacher_config, teacher_checkpoint,
                             loaders=TEST_FIRST)


def student_classes(student_cfg: Config) -> Tuple[str, ...]:
    """The classes the student learns, in order (its training set's)."""
    from ..config.tta import config_classes
    return config_classes(student_cfg, ('train_dataloader',))


def check_predicts_student_classes(predicted: Sequence[str], learnt: Sequence[str],
                                   checkpoint: str, student_config: str) -> None:
    """The model that makes a round's pseudo-labels names its channels (the
    checkpoint's classes) as the student's classes, in order: label ``k`` of a
    pseudo-label PNG is channel ``k``, learnt as the student's class ``k``.

    Raises:
        ConfigError: naming the checkpoint, the student config and the first
            difference.
    """
    predicted, learnt = tuple(predicted), tuple(learnt)
    if not learnt or predicted == learnt:
        return
    if len(predicted) != len(learnt):
        where = f'it predicts {len(predicted)} classes, the student learns {len(learnt)}'
    else:
        k = next(i for i, (a, b) in enumerate(zip(predicted, learnt)) if a != b)
        where = f'its class {k} is {predicted[k]!r}, the student\'s is {learnt[k]!r}'
    raise ConfigError(f'{checkpoint}: the pseudo-labels of this checkpoint would teach '
                      f'the student ({student_config}) one class as another: {where}')


def _print_log(message: str) -> None:
    print_log(message, logger='current')


def check_unlabelled_apart(cfg, config: str, unlabelled_dir: str,
                           images: Sequence[str],
                           log: Optional[Callable[[str], None]] = None) -> None:
    """Unlabelled images that are the teacher's training images (the same files by any
    path or link, byte-identical copies, or the same pixels re-encoded:
    :func:`~mmseg_ext.io.image_identity.same_images`) are refused: their pseudo-labels
    would stand beside their labels.
    Validation images among them are named in one warning line: the student then trains
    on pseudo-labels of the images it is scored on, so its validation score is
    optimistic against the teacher's (legitimate only when the validation images are
    the test images of a competition, scored elsewhere).

    Raises:
        DataError: naming the unlabelled image and the training image it is.
    """
    from ..datasets.build import loader_images
    from ..io.image_identity import same_images
    unlabelled = [osp.join(unlabelled_dir, rel) for rel in images]
    train = same_images(unlabelled, loader_images(cfg, 'train_dataloader'))
    if train:
        raise DataError(f'{train[0][0]}: an unlabelled image is a training image of '
                        f'{config} ({train[0][1]}; {len(train)} such): leave the '
                        'labelled images out of the unlabelled ones')
    val = [other for _, other in
           same_images(unlabelled, loader_images(cfg, 'val_dataloader'))]
    if val:
        message = (f'{unlabelled_dir}: {len(val)} of the {len(images)} unlabelled images '
                   f'are validation images of {config} (e.g. {val[0]}): the student trains '
                   'on their pseudo-labels, so its validation score is optimistic against '
                   "the teacher's")
        if log is None:
            print_log(message, logger='current', level=logging.WARNING)
        else:  # the caller's channel (a finished run's logger would write into its log)
            log(f'warning: {message}')





def unlabelled_images(unlabelled_dir: str, unlabelled_list: Optional[str],
                      img_suffix: str, log: Callable[[str], None]) -> List[str]:
    """The unlabelled images, relative to ``unlabelled_dir``: those ``unlabelled_list``
    names, or else every ``img_suffix`` image under it (a note on the files skipped
    goes to ``log``).

    Raises:
        DataError: the folder holds no ``img_suffix`` image, or an image whose suffix
            differs from ``img_suffix`` in case (``UPPER.JPG`` for ``.jpg``: the
            student's data set names each image by its stem and ``img_suffix``, and
            would look for ``UPPER.jpg``).
    """
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
    other_case = [rel for rel in images if not rel.endswith(img_suffix)]
    if other_case:
        raise DataError(f'{osp.join(unlabelled_dir, other_case[0])}: its suffix differs in '
                        f'case from the image suffix {img_suffix!r} ({len(other_case)} '
                        'such): the student\'s data set names each image by its stem and '
                        'that suffix, so it could not read it; rename the images to end in '
                        f'{img_suffix!r}, or set the image suffix to theirs')
    return images


#: the records of finished stages (each written last by its stage), relative to the
#: work dir
FINISHED_STAGE_RECORDS = ('teacher/done.json', 'round*/probs/index.json',
                          'round*/pseudo/pseudo_labels.json', 'round*/student/done.json',
                          'student/done.json', 'control/done.json', 'summary.json')


def finished_stages(work_dir: str) -> List[str]:
    """The finished-stage records an earlier run left in ``work_dir``."""
    import glob
    root = glob.escape(work_dir)
    return sorted(p for pattern in FINISHED_STAGE_RECORDS
                  for p in glob.glob(osp.join(root, pattern)))


def interrupted_checkpoints(work_dir: str) -> List[str]:
    """Checkpoints an earlier run saved in a stage it did not finish (a training
    interrupted after its first save): kept unless ``force``."""
    import glob
    root = glob.escape(work_dir)
    return sorted(p for pattern in ('*/iter_*.pth', 'round*/student/iter_*.pth')
                  for p in glob.glob(osp.join(root, pattern)))


def start_or_resume(work_dir: str, record: dict, rounds: int, force: bool,
                    teacher_checkpoint: Optional[str], manifest: Manifest,
                    log: Callable[[str], None], method: str = 'offline',
                    control: bool = False) -> bool:
    """Whether this run resumes an unfinished run of the same command in the locked
    ``work_dir``; with ``force`` an earlier run's listed outputs are removed first.

    Resume record: reads the earlier ``self_train.json`` (:func:`check_earlier_run`)
    and writes this run's ``record`` there.
    """
    try:
        resume = check_earlier_run(work_dir, record, rounds, force)
    except OutputExistsError:
        if finished_stages(work_dir) or interrupted_checkpoints(work_dir):
            raise
        # an earlier run that failed before it finished any stage or saved a
        # checkpoint: nothing of it is worth keeping, so a corrected command replaces
        # its (listed) outputs
        log(f'{work_dir}: the earlier run finished no stage; replacing what it left')
        force, resume = True, check_earlier_run(work_dir, record, rounds, True)
    if resume:
        log(f'resuming the self-training run in {work_dir}: finished stages are kept')
    elif force:
        # the training folders hold nothing but the tool's files once its listed
        # ones are removed: checked before removing anything
        for stage_dir in training_dirs(work_dir, rounds, teacher_checkpoint, method,
                                       control):
            manifest.check_in_place(stage_dir, unlisted_only=True)
        removed = manifest.remove_all()
        if removed:
            log(f'{work_dir}: removed {len(removed)} outputs of the earlier run')
    write_run_record(work_dir, RUN_RECORD, record, manifest)
    return resume


@dataclass
class _Run:
    """What every stage of one :func:`self_train` call reads: its arguments, the
    unlabelled images (relative paths), whether it resumes an earlier run of the same
    command, and the manifest of its locked work dir (every output is listed there)."""
    teacher_config: str
    student_config: str
    unlabelled_dir: str
    work_dir: str
    images: List[str]
    img_suffix: str
    pixel_conf: float
    max_uncertain: float
    min_mean_conf: float
    student_init: str
    cfg_options: Optional[dict]
    resume: bool
    progress: bool
    log: Callable[[str], None]
    manifest: Manifest
    #: the classes the student learns, in order (:func:`student_classes`)
    student_classes: Tuple[str, ...] = ()
    method: str = 'offline'
    #: iterations of each student and of the control, when set (else the student
    #: config's own schedule: ``student_max_iters``)
    student_iters: Optional[int] = None
    control: bool = False
    student_max_iters: int = 0

    @property
    def stage_count(self) -> int:
        """The stages the progress lines count: teacher, student (and pseudo-labels)."""
        return 2 if self.method == 'unimatch' else 3

    def set_student_iterations(self, cfg: Config) -> None:
        """Give a student's (or the control's) training ``cfg`` ``student_iters``."""
        if self.student_iters is not None:
            set_iterations(cfg, self.student_iters, self.student_config)


def _stages(run: _Run, teacher_checkpoint: Optional[str], rounds: int,
            start: float) -> SelfTrainingSummary:
    """The stages of :func:`self_train` in its locked work dir: the teacher (unless
    given its checkpoint), ``rounds`` rounds, then ``summary.json``."""
    teacher_metrics: Dict[str, float] = {}
    if teacher_checkpoint is None:
        teacher_checkpoint, teacher_metrics = _teacher_stage(run)
    inputs = _unlabelled_stamp(run.unlabelled_dir, run.images)
    ckpt, config = teacher_checkpoint, run.teacher_config
    done: List[RoundSummary] = []
    student = None
    if run.method == 'unimatch':
        student = _weak_to_strong_stage(run, teacher_checkpoint, inputs)
    else:
        for k in range(1, rounds + 1):
            done.append(_round(run, k, config, ckpt, inputs))
            ckpt, config = done[-1].student_checkpoint, run.student_config
    control = _control_stage(run, teacher_checkpoint) if run.control else None
    summary = SelfTrainingSummary(run.work_dir, teacher_checkpoint, teacher_metrics, done,
                                  time.perf_counter() - start, run.method, student,
                                  control)
    path = osp.join(run.work_dir, 'summary.json')
    with owned_output(run.manifest, path):
        atomic_write_text(path, dumps_json(asdict(summary), indent=1), force=True)
    return summary


def _teacher_stage(run: _Run) -> Tuple[str, Dict[str, float]]:
    """Stage 1: train ``teacher_config`` in ``teacher/``; its checkpoint and metrics.

    Resume record: ``teacher/done.json`` with the claims ``{stage: 'teacher'}``, read
    when resuming (:func:`~mmseg_ext.training.stages.stage_result`) and written once trained.
    """
    teacher_dir = osp.join(run.work_dir, 'teacher')
    finished = run.resume and stage_result(teacher_dir, dict(stage='teacher'))
    if finished:
        checkpoint, metrics = finished
        run.log(f'[1/{run.stage_count}] teacher: finished earlier, {checkpoint}')
    else:
        run.log(f'[1/{run.stage_count}] teacher: training {run.teacher_config} in '
                f'{teacher_dir}')
        checkpoint, metrics = _train_stage(
            run, teacher_dir, train_config(run.teacher_config, work_dir=teacher_dir,
                                           cfg_options=run.cfg_options),
            dict(stage='teacher'))
    run.log(f'teacher: {checkpoint} {metrics_text(metrics)}')
    return checkpoint, metrics


def _model_stamp(checkpoint: str):
    """The fingerprint of a local checkpoint (its URL otherwise)."""
    return fingerprint(checkpoint) if osp.isfile(checkpoint) else checkpoint


def _weak_to_strong_stage(run: _Run, teacher_ckpt: str, inputs: dict) -> TrainedStage:
    """``method='unimatch'``: train the student config wrapped in the weak-to-strong
    segmentor on its labelled set plus the unlabelled images (listed in
    ``unlabelled.txt``) in ``student/``, from the teacher's weights unless
    ``student_init='scratch'``.

    Resume record: ``student/done.json`` with the claims ``{stage, teacher: the
    teacher's fingerprint (or None from scratch), unlabelled: the images' stamp hash}``.
    """
    from .weak_strong_data import weak_to_strong_config
    init = teacher_ckpt if run.student_init == 'teacher' else None
    claims = dict(stage='weak-to-strong student', teacher=_model_stamp(init) if init else None,
                  unlabelled=_list_hash([dumps_json(inputs)]))

    def student_config(student_dir: str) -> Config:
        list_file = osp.join(run.work_dir, UNLABELLED_LIST)
        with owned_output(run.manifest, list_file):
            atomic_write_text(list_file, ''.join(rel + '\n' for rel in run.images),
                              force=True)
        cfg = train_config(run.student_config, work_dir=student_dir,
                           cfg_options=run.cfg_options)
        run.set_student_iterations(cfg)
        weak_to_strong_config(cfg, run.student_config, config_task(cfg),
                              osp.abspath(run.unlabelled_dir), osp.abspath(list_file),
                              run.img_suffix, run.pixel_conf, init)
        start = 'the teacher' if init else 'its own initialisation'
        run.log(f'[2/2] student: weak-to-strong training of {run.student_config} from '
                f'{start}, {run.student_max_iters} iterations on labelled + '
                f'{len(run.images)} unlabelled images in {student_dir}')
        return cfg

    return _continuation(run, 'student', claims, student_config)


def _control_stage(run: _Run, teacher_ckpt: str) -> TrainedStage:
    """``control=True``: the student config trained on its labelled set alone, from
    the teacher's weights, for the student's iterations, in ``control/`` (what the
    extra iterations add without the unlabelled images).

    Resume record: ``control/done.json`` with the claims ``{stage, teacher: the
    teacher's fingerprint}``.
    """
    def control_config(control_dir: str) -> Config:
        cfg = train_config(run.student_config, work_dir=control_dir,
                           cfg_options=run.cfg_options)
        run.set_student_iterations(cfg)
        cfg.load_from = teacher_ckpt  # fits: checked by check_student_fits_teacher
        run.log(f'control: {run.student_config} from the teacher, {run.student_max_iters} '
                f'iterations on the labelled images alone in {control_dir}')
        return cfg

    return _continuation(run, 'control', dict(stage='control',
                                              teacher=_model_stamp(teacher_ckpt)),
                         control_config)


def _continuation(run: _Run, name: str, claims: dict,
                  make_config: Callable[[str], Config]) -> TrainedStage:
    """The training ``run.work_dir/name`` of ``run.student_max_iters`` iterations: kept
    from an earlier run of the same command when its marker proves ``claims``, else
    trained from ``make_config(stage_dir)``."""
    stage_dir = osp.join(run.work_dir, name)
    finished = run.resume and stage_result(stage_dir, claims)
    if finished:
        checkpoint, metrics = finished
        run.log(f'{name}: finished earlier, {checkpoint}')
    else:
        checkpoint, metrics = _train_stage(run, stage_dir, make_config(stage_dir), claims)
    run.log(f'{name}: {checkpoint} {metrics_text(metrics)}')
    return TrainedStage(stage_dir, checkpoint, run.student_max_iters, metrics)


def _train_stage(run: _Run, stage_dir: str, cfg: Config, claims: dict
                 ) -> Tuple[str, Dict[str, float]]:
    """Train ``cfg`` in ``stage_dir`` as the run's output and write its done marker
    with ``claims``; its last checkpoint and final validation metrics."""
    discard_stale_pointer(stage_dir, run.manifest)
    with owned_output(run.manifest, stage_dir, replace=False):
        metrics = train_and_validate(cfg)
    checkpoint = last_checkpoint(stage_dir)
    mark_stage_done(stage_dir, checkpoint, metrics, claims, run.manifest)
    return checkpoint, metrics


def _unlabelled_stamp(unlabelled_dir: str, images: Sequence[str]) -> dict:
    """Names and fingerprints (size, time, content) of the unlabelled images (part of each
    round's probability source: a changed image makes the round again)."""
    try:
        return files_stamp(unlabelled_dir, images)
    except OSError as exc:
        raise DataError(f'{exc.filename or unlabelled_dir}: cannot read the image '
                        f'({exc.strerror or exc})') from None


def _round(run: _Run, k: int, config: str, ckpt: str, inputs: dict) -> RoundSummary:
    """Round ``k`` in ``round<k>/``: the model ``config``/``ckpt`` (the teacher, or the
    last round's student) predicts the unlabelled images, its confident predictions
    become pseudo-labels, and a student trains on them."""
    here = osp.join(run.work_dir, f'round{k}')
    probs_dir = osp.join(here, 'probs')
    predictor = build_predictor(config, ckpt, cfg_options=run.cfg_options)
    check_predicts_student_classes(predictor.classes, run.student_classes, ckpt,
                                   run.student_config)
    source = dict(config=osp.abspath(config), checkpoint=osp.abspath(ckpt),
                  checkpoint_stamp=_model_stamp(ckpt),
                  unlabelled_dir=osp.abspath(run.unlabelled_dir), inputs=inputs, round=k)
    kept = _probabilities_stage(run, k, predictor, ckpt, source, probs_dir)
    pseudo = _pseudo_label_stage(run, here, predictor.task, probs_dir, kept)
    student_dir = osp.join(here, 'student')
    student_ckpt, metrics = _student_stage(run, k, ckpt, source['checkpoint_stamp'],
                                           predictor.task, pseudo, student_dir)
    return RoundSummary(k, ckpt, probs_dir, pseudo.out_dir, pseudo.summary.images,
                        pseudo.summary.accepted, student_dir, student_ckpt, metrics)


def _probabilities_stage(run: _Run, k: int, predictor: ProbabilityPredictor, ckpt: str,
                         source: dict, probs_dir: str) -> bool:
    """Stage 2a of round ``k``: the class probabilities of the unlabelled images in
    ``probs_dir``, predicted with checkpoint ``ckpt``; whether an earlier run's were kept.

    Resume record: ``probs/index.json``'s ``source`` (the model's fingerprint and the
    images' stamp), compared when resuming (:func:`~mmseg_ext.training.stages.same_prob_source`) and
    written with the probabilities.
    """
    kept = run.resume and same_prob_source(probs_dir, source)
    with owned_output(run.manifest, probs_dir):
        if kept:
            run.log(f'[2/3] round {k}: probabilities finished earlier in {probs_dir}')
        else:
            run.log(f'[2/3] round {k}: probabilities of {len(run.images)} unlabelled '
                    f'images with {ckpt}')
            infer_folder(predictor, run.unlabelled_dir, probs_dir, out_size='original',
                         images=run.images, source=source, force=True,
                         progress=run.progress, tool=TOOL)
    return kept


@dataclass
class _PseudoLabels:
    """A round's pseudo-labels: their folder and summary, whether an earlier run's were
    kept, and the accepted images (``accepted.txt``) with their stems file."""
    out_dir: str
    summary: PseudoLabelSummary
    kept: bool
    accepted: List[str]
    stems_file: str


def _pseudo_label_stage(run: _Run, here: str, task: str, probs_dir: str,
                        probs_kept: bool) -> _PseudoLabels:
    """Stage 2b: the confident predictions of ``probs_dir`` as pseudo-labels in
    ``here/pseudo`` (label PNGs, or polygon JSON for a multi-label ``task``), and
    ``here/pseudo_stems.txt``: the stems of the accepted images (the student's
    ``ann_file``).

    Resume record: ``pseudo/pseudo_labels.json`` (the report, written last), read when
    the probabilities were kept (``probs_kept``); else everything is made again.

    Raises:
        DataError: the filters rejected every image.
    """
    pseudo_dir = osp.join(here, 'pseudo')
    fmt = 'handbone-json' if task == 'multi-label' else 'label-png'
    earlier = probs_kept and read_pseudo_summary(pseudo_dir)
    with owned_output(run.manifest, pseudo_dir):
        if earlier:
            pseudo = earlier
        else:
            pseudo = pseudo_label_folder(probs_dir, pseudo_dir, fmt=fmt,
                                         pixel_conf=run.pixel_conf,
                                         max_uncertain=run.max_uncertain,
                                         min_mean_conf=run.min_mean_conf, force=True,
                                         progress=run.progress)
    run.log(f'pseudo-labels: {pseudo.accepted} of {pseudo.images} images accepted -> '
            f'{pseudo_dir}')
    if not pseudo.accepted:
        raise DataError(f'{pseudo_dir}: every image was rejected by the confidence '
                        'filters; lower them or train a better teacher')
    stems_file = osp.join(here, 'pseudo_stems.txt')
    accepted = [line for _, line in read_lines(osp.join(pseudo_dir, 'accepted.txt'),
                                                'list of accepted pseudo-labels')]
    suffix = run.img_suffix
    with owned_output(run.manifest, stems_file):
        atomic_write_text(stems_file, ''.join(
            (a[:-len(suffix)] if a.endswith(suffix) else osp.splitext(a)[0])
            + '\n' for a in accepted), force=True)
    return _PseudoLabels(pseudo_dir, pseudo, bool(earlier), accepted, stems_file)


def _student_stage(run: _Run, k: int, teacher_ckpt: str, teacher_stamp: str, task: str,
                   pseudo: _PseudoLabels, student_dir: str
                   ) -> Tuple[str, Dict[str, float]]:
    """Stage 3 of round ``k``: train ``student_config`` on its labelled set plus the
    pseudo-labelled images in ``student_dir``; its checkpoint and metrics.

    Resume record: ``student/done.json`` with the claims ``{stage, teacher: the
    teacher's fingerprint, pseudo: the accepted list's hash}``, read when resuming with
    kept pseudo-labels and written once trained.
    """
    claims = dict(stage=f'round{k} student', teacher=teacher_stamp,
                  pseudo=_list_hash(pseudo.accepted))
    finished = (run.resume and pseudo.kept) and stage_result(student_dir, claims)
    if finished:
        checkpoint, metrics = finished
        run.log(f'[3/3] round {k}: student finished earlier, {checkpoint}')
    else:
        cfg = train_config(run.student_config, work_dir=student_dir,
                           cfg_options=run.cfg_options)
        run.set_student_iterations(cfg)
        if run.student_init == 'teacher':
            cfg.load_from = teacher_ckpt  # fits: checked by check_student_fits_teacher
        add_pseudo_labels(cfg, run.unlabelled_dir, pseudo.out_dir, task, run.img_suffix,
                          pseudo.stems_file, len(pseudo.accepted))
        run.log(f'[3/3] round {k}: student {run.student_config} on labelled + '
                f'{len(pseudo.accepted)} pseudo-labelled images in {student_dir}')
        checkpoint, metrics = _train_stage(run, student_dir, cfg, claims)
    run.log(f'student: {checkpoint} {metrics_text(metrics)}')
    return checkpoint, metrics


def metrics_text(metrics: Dict[str, float],
                 keys: Sequence[str] = ('mIoU', 'mIoU_per_image', 'mDice', 'mDice_dataset')
                 ) -> str:
    """``'mIoU=52.68 mIoU_per_image=52.22'``: the ``keys`` that ``metrics`` has."""
    shown = [f'{k}={metrics[k]:.4g}' for k in keys if k in metrics]
    return ' '.join(shown) if shown else ''


#: the most per-class columns the final table shows
MAX_CLASS_COLUMNS = 10


def _main_metric(metrics: Dict[str, float]) -> Optional[str]:
    return next((k for k in ('mDice', 'mIoU') if k in metrics), None)


def summary_table(summary: SelfTrainingSummary) -> str:
    """The run's final table, one row per model (teacher, control, each student):
    iterations, the main validation metric (``mDice``, else ``mIoU``), the per-class
    ``Dice.<class>`` values, and the difference from the teacher and the control."""
    rows: List[Tuple[str, Optional[int], Dict[str, float]]] = [
        ('teacher', None, summary.teacher_metrics)]
    if summary.control is not None:
        rows.append(('control (labelled only)', summary.control.iters,
                     summary.control.metrics))
    budget = summary.control.iters if summary.control else None
    for r in summary.rounds:
        # round k's student trained k times the student's iterations past the teacher
        rows.append((f'student, round {r.round}', budget * r.round if budget else None,
                     r.student_metrics))
    if summary.student is not None:
        rows.append(('student (unimatch)', summary.student.iters, summary.student.metrics))
    key = next((k for k in (_main_metric(m) for _, _, m in rows) if k), None)
    if key is None:
        return 'no validation metrics to compare'
    classes = list(dict.fromkeys(k for _, _, m in rows for k in m if k.startswith('Dice.')))
    if len(classes) > MAX_CLASS_COLUMNS:  # summary.json has them all
        classes = []
    head = ['model', 'iters', key, *classes, 'vs teacher']
    base = summary.teacher_metrics.get(key)
    control = summary.control.metrics.get(key) if summary.control else None
    if control is not None:
        head.append('vs control')
    lines = []
    for name, iters, m in rows:
        value = m.get(key)
        cells = [name, '' if iters is None else str(iters), _cell(value),
                 *(_cell(m.get(c)) for c in classes),
                 _delta(value, base) if name != 'teacher' else '']
        if control is not None:  # only against a continuation of the same length
            same = name.startswith('student') and iters == summary.control.iters
            cells.append(_delta(value, control) if same else '')
        lines.append(cells)
    widths = [max(len(str(c)) for c in col) for col in zip(head, *lines)]
    return '\n'.join('  '.join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip()
                     for row in [head, *lines])


def _cell(value: Optional[float]) -> str:
    return '-' if value is None else f'{value:.4f}'


def _delta(value: Optional[float], base: Optional[float]) -> str:
    return '-' if value is None or base is None else f'{value - base:+.4f}'
