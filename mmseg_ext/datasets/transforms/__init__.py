"""Data transforms (registered in ``mmseg.registry.TRANSFORMS``); imported on first access."""
from ...utils.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    'Albumentations': '.albumentations_bridge',
    'LoadCocoAnnotations': '.coco_loading',
    'LoadHandBoneAnnotations': '.hand_bone_loading',
    'RasterizePolygons': '.hand_bone_loading',
    'LoadImageFromFileChecked': '.loading',
    'LoadAnnotationsChecked': '.loading',
    'PackMultiLabelSegInputs': '.multilabel_formatting',
    'MultiLabelPad': '.multilabel_geometry',
    'MultiLabelRandomFlip': '.multilabel_geometry',
    'MultiLabelRandomRotate': '.multilabel_geometry',
})
