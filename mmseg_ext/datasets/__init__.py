"""Datasets (registered in ``mmseg.registry.DATASETS``) and their transforms.

Names are imported on first access (:mod:`mmseg_ext.utils.lazy`), so the format and
split modules of this package load without torch or mmseg.
"""
from ..utils.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    'CocoSemanticDataset': '.coco_semantic',
    'HandBoneDataset': '.hand_bone',
    'PortStructuresDataset': '.port_structures',
    'UnlabelledImageDataset': '.unlabelled',
    'LabelledRatioBatchSampler': '.samplers',
})
