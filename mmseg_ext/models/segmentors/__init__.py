"""Multi-label segmentors and TTA merge (``mmseg.registry.MODELS``)."""
from .encoder_decoder import MultiLabelCascadeEncoderDecoder, MultiLabelEncoderDecoder
from .mean_teacher import MeanTeacherSegmentor
from .postprocess import MultiLabelPostProcessMixin, logits_to_original, resolve_thresholds
from .seg_tta import MultiLabelSegTTAModel

__all__ = ['MultiLabelEncoderDecoder', 'MultiLabelCascadeEncoderDecoder',
           'MultiLabelPostProcessMixin', 'MultiLabelSegTTAModel', 'MeanTeacherSegmentor', 'logits_to_original',
           'resolve_thresholds']
