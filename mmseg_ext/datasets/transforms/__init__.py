"""Data transforms (registered in ``mmseg.registry.TRANSFORMS``)."""
from .albumentations_bridge import Albumentations  # noqa: F401
from .coco_loading import LoadCocoAnnotations  # noqa: F401
from .hand_bone_loading import LoadHandBoneAnnotations, RasterizePolygons  # noqa: F401
from .loading import LoadImageFromFileChecked  # noqa: F401
from .multilabel_formatting import PackMultiLabelSegInputs  # noqa: F401
from .multilabel_geometry import MultiLabelPad, MultiLabelRandomFlip, MultiLabelRandomRotate  # noqa: F401,E501
