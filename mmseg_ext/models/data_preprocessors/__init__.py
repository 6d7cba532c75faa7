"""Data preprocessors and batch-level augmentations (``mmseg.registry.MODELS``)."""
from .batch_augments import BatchAugmentSegDataPreProcessor, SegCutMix

__all__ = ['BatchAugmentSegDataPreProcessor', 'SegCutMix']
