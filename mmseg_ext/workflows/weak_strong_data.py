"""The weak-to-strong (UniMatch-style) training config made from a labelled-only one.

``tools/self_train.py --method unimatch`` takes the config a user already trains on the
labelled images and makes the semi-supervised one from it, as the shipped
``custom_configs/*/unimatch_*`` configs are made by hand:

- the model becomes a :class:`~mmseg_ext.models.segmentors.WeakToStrongSegmentor`
  (``MultiLabelWeakToStrongSegmentor`` for a multi-label model) around the config's own
  segmentor, optionally initialised from a trained checkpoint;
- the training set becomes a ``ConcatDataset`` of the labelled set and an
  :class:`~mmseg_ext.datasets.unlabelled.UnlabelledImageDataset`, batched by
  :class:`~mmseg_ext.datasets.samplers.LabelledRatioBatchSampler`: each batch holds the
  config's batch of labelled images and as many unlabelled ones;
- the unlabelled images go through the *weak view*: the labelled pipeline's geometry
  (:func:`weak_view_pipeline`), or the config's own ``unlabelled_pipeline``.
"""
from __future__ import annotations

import copy
from typing import List, Optional

from mmengine.config import Config

from ..utils.errors import ConfigError

#: transforms that load labels or draw them: left out of the weak view
LABEL_STEPS = ('LoadAnnotations', 'LoadAnnotationsChecked', 'LoadHandBoneAnnotations',
               'LoadCocoAnnotations', 'RasterizePolygons', 'GenerateEdge',
               'LoadBiomedicalAnnotation')
#: transforms that move pixels or set the image's layout (kept in the weak view: the
#: pseudo-label is made on the same geometry the labelled images see)
GEOMETRY_STEPS = ('LoadImageFromFile', 'LoadImageFromFileChecked', 'Resize', 'RandomResize',
                  'RandomChoiceResize', 'ResizeShortestEdge', 'ResizeToMultiple',
                  'RandomCrop', 'RandomFlip', 'MultiLabelRandomFlip', 'RandomRotate',
                  'MultiLabelRandomRotate', 'RandomRotFlip', 'Pad', 'MultiLabelPad',
                  'RGB2Gray', 'PackSegInputs', 'PackMultiLabelSegInputs')
#: transforms that change the pixels' values only (the strong view's job: left out)
PHOTOMETRIC_STEPS = ('PhotoMetricDistortion', 'AdjustGamma', 'CLAHE',
                     'BioMedicalGaussianBlur', 'BioMedicalGaussianNoise')
#: albumentations transforms that change pixel values only
PHOTOMETRIC_ALBU = ('CLAHE', 'RandomBrightnessContrast', 'RandomGamma', 'GaussNoise',
                    'Blur', 'GaussianBlur', 'MotionBlur', 'MedianBlur', 'Sharpen',
                    'HueSaturationValue', 'ColorJitter', 'RGBShift', 'Equalize', 'ToGray',
                    'RandomToneCurve', 'Emboss', 'ISONoise', 'Posterize', 'Solarize',
                    'ImageCompression', 'Downscale')

#: the method's settings of the shipped unimatch_* configs (docs/semi_supervised.md)
METHOD_DEFAULTS = dict(
    unsup_weight=1.0, unsup_norm='confident', num_strong=2, feature_perturbation=True,
    fp_dropout=0.5, fp_share=0.5,
    cutmix=dict(prob=0.5, area_range=(0.02, 0.4), ratio_range=(0.3, 1 / 0.3)),
    strong_aug=dict(brightness=0.4, contrast=0.4, noise_std=0.1, blur_prob=0.5))


def _is_photometric(step: dict) -> bool:
    kind = step.get('type')
    if kind in PHOTOMETRIC_STEPS:
        return True
    if kind == 'Albumentations':
        inner = step.get('transforms') or []
        return bool(inner) and all(isinstance(t, dict) and t.get('type') in PHOTOMETRIC_ALBU
                                   for t in inner)
    return False


def weak_view_pipeline(train_pipeline: List[dict], config: str) -> List[dict]:
    """The weak view of unlabelled images: ``train_pipeline`` without its label steps
    (:data:`LABEL_STEPS`) and its photometric steps; a ``RandomCrop``'s
    ``cat_max_ratio`` (which reads the label) is dropped.

    Raises:
        ConfigError: naming ``config`` and a step that is neither a known geometric,
            label nor photometric step (say which view it belongs to by giving the
            config an ``unlabelled_pipeline``).
    """
    weak = []
    for step in train_pipeline:
        kind = step.get('type') if isinstance(step, dict) else None
        if kind in LABEL_STEPS or _is_photometric(step):
            continue
        if kind not in GEOMETRY_STEPS:
            raise ConfigError(f'{config}: cannot tell whether the training step {kind!r} '
                              'moves pixels (the weak view of the unlabelled images keeps '
                              'those) or changes their values (the strong view does that); '
                              'give the config an unlabelled_pipeline, the weak view '
                              'written out')
        step = copy.deepcopy(dict(step))
        if kind == 'RandomCrop':
            step.pop('cat_max_ratio', None)  # balances classes by the label: none here
            step.pop('ignore_index', None)
        weak.append(step)
    if not any(str(s.get('type', '')).startswith('Pack') for s in weak):
        raise ConfigError(f'{config}: the training pipeline has no Pack step to end the '
                          'weak view of the unlabelled images with')
    return weak


def check_weak_view(pipeline, config: str) -> None:
    """The weak view (derived, or a config's ``unlabelled_pipeline``) is a list of
    registered transforms that ends by packing the sample.

    Raises:
        ConfigError: naming ``config`` and what is wrong.
    """
    from mmseg.registry import TRANSFORMS
    if not isinstance(pipeline, (list, tuple)) or not pipeline or not all(
            isinstance(step, dict) and 'type' in step for step in pipeline):
        raise ConfigError(f'{config}: unlabelled_pipeline must be a non-empty list of '
                          f'transforms (dicts with a type), got {pipeline!r}')
    for step in pipeline:
        try:
            TRANSFORMS.build(copy.deepcopy(dict(step)))
        except Exception as exc:  # noqa: BLE001  (any failure of a transform's own checks)
            raise ConfigError(f'{config}: the weak view of the unlabelled images cannot '
                              f'build {step.get("type")!r}: {exc}') from None
    if not str(pipeline[-1].get('type', '')).split('.')[-1].startswith('Pack'):
        raise ConfigError(f'{config}: the weak view of the unlabelled images must end with '
                          f'a Pack step (PackSegInputs, PackMultiLabelSegInputs), got '
                          f'{pipeline[-1].get("type")!r}')


#: weak-view steps that bring an image to a size of their own
SIZING_STEPS = ('RandomCrop', 'Resize', 'RandomResize', 'RandomChoiceResize',
                'ResizeShortestEdge', 'ResizeToMultiple')


def check_unlabelled_sizes(cfg: Config, config: str, paths) -> None:
    """Unlabelled images that the weak view (of the weak-to-strong ``cfg``) leaves at
    their own size must fit the batch size the model's data preprocessor pads to:
    a larger one cannot be stacked with the others.

    Raises:
        ConfigError: naming the first image that does not fit, its size and the
            preprocessor's.
        DataError: an image that cannot be read (:func:`~mmseg_ext.io.images.image_size`).
    """
    from ..io.images import image_size
    pipeline = cfg.train_dataloader.dataset.datasets[1].pipeline
    if any(str(s.get('type', '')).split('.')[-1] in SIZING_STEPS for s in pipeline):
        return
    pre = cfg.model.get('data_preprocessor') or \
        cfg.model.segmentor.get('data_preprocessor') or {}
    size = pre.get('size')
    if not size:
        return
    height, width = size
    for path in paths:
        h, w = image_size(path)  # an unreadable one is named now, not after the teacher
        if h > height or w > width:
            raise ConfigError(f'{path}: {w}x{h} pixels, larger than the {width}x{height} '
                              f'batches of {config} (its data preprocessor size), and its '
                              'training pipeline neither crops nor resizes: crop or resize '
                              'in the pipeline, or give smaller images')


def weak_to_strong_config(cfg: Config, config: str, task: str, unlabelled_dir: str,
                          unlabelled_list: str, img_suffix: str, conf_thresh: float,
                          init_checkpoint: Optional[str]) -> None:
    """Turn the labelled-only ``cfg`` (in place) into its weak-to-strong training.

    Args:
        cfg: the loaded config of ``config``; its ``train_dataloader.dataset`` is the
            labelled set, its ``model`` the student.
        task: ``'multi-label'`` or ``'multi-class'`` (:func:`~mmseg_ext.config.model.config_task`).
        unlabelled_dir, unlabelled_list, img_suffix: the unlabelled images (a list
            file of their paths under ``unlabelled_dir``).
        conf_thresh: the confidence a weak-view prediction needs to teach the strong
            views (per pixel; per pixel and class for multi-label).
        init_checkpoint: start the student from these weights (a trained
            labelled-only model of the same config), or from the config's own
            initialisation when None.

    Raises:
        ConfigError: naming ``config``: the model is already a semi-supervised wrapper,
            the labelled set is a wrapper data set, the data preprocessor mixes batches
            (``batch_augments``), or the weak view cannot be made.
    """
    model = cfg.model
    if 'WeakToStrong' in str(model.get('type')) or 'MeanTeacher' in str(model.get('type')):
        raise ConfigError(f'{config}: its model is already a semi-supervised wrapper '
                          f'({model.get("type")}); give the labelled-only config')
    if (model.get('data_preprocessor') or {}).get('batch_augments'):
        raise ConfigError(f'{config}: its data preprocessor has batch_augments, which would '
                          'mix labelled and unlabelled images; the weak-to-strong method '
                          'makes its own CutMix of the unlabelled images: give a config '
                          'without them')
    loader = cfg.train_dataloader
    labelled = loader.dataset
    if labelled.get('type') in ('ConcatDataset', 'RepeatDataset', 'ClassBalancedDataset'):
        raise ConfigError(f'{config}: train_dataloader.dataset is a {labelled.get("type")}; '
                          'the weak-to-strong training adds the unlabelled set itself and '
                          'needs the plain labelled data set')
    labelled = copy.deepcopy(labelled.to_dict() if hasattr(labelled, 'to_dict')
                             else dict(labelled))
    pipeline = cfg.get('unlabelled_pipeline')  # the config's own weak view, if any
    if pipeline is None:
        pipeline = weak_view_pipeline(labelled.get('pipeline') or [], config)
    student = copy.deepcopy(model.to_dict() if hasattr(model, 'to_dict') else dict(model))
    if init_checkpoint is not None:
        student['init_cfg'] = dict(type='Pretrained', checkpoint=init_checkpoint)
    kind = ('MultiLabelWeakToStrongSegmentor' if task == 'multi-label'
            else 'WeakToStrongSegmentor')
    cfg.model = dict(type=kind, segmentor=student, conf_thresh=conf_thresh,
                     **copy.deepcopy(METHOD_DEFAULTS))
    # the labelled set's class list and label mapping, without listing its files
    like = {k: labelled[k] for k in ('type', 'metainfo', 'reduce_zero_label', 'ignore_index')
            if k in labelled}
    unlabelled = dict(type='UnlabelledImageDataset', data_root='',
                      data_prefix=dict(img_path=unlabelled_dir), img_suffix=img_suffix,
                      ann_file=unlabelled_list, metainfo_from=like, pipeline=pipeline)
    per_batch = int(loader.get('batch_size', 1))
    loader.batch_size = 2 * per_batch
    loader.batch_sampler = dict(type='LabelledRatioBatchSampler',
                                labelled_per_batch=per_batch)
    loader.dataset = dict(type='ConcatDataset', datasets=[labelled, unlabelled])
