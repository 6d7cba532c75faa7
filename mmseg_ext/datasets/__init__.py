"""Datasets (registered in ``mmseg.registry.DATASETS``) and their transforms."""
from . import transforms  # noqa: F401
from .coco_semantic import CocoSemanticDataset  # noqa: F401
from .hand_bone import HandBoneDataset  # noqa: F401
from .port_structures import PortStructuresDataset  # noqa: F401
