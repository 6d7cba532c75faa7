"""Multi-label segmentors, TTA merge and the semi-supervised wrappers
(``mmseg.registry.MODELS``)."""
from .encoder_decoder import MultiLabelCascadeEncoderDecoder, MultiLabelEncoderDecoder
from .mean_teacher import MeanTeacherSegmentor
from .postprocess import MultiLabelPostProcessMixin, logits_to_original, resolve_thresholds
from .seg_tta import MultiLabelSegTTAModel
from .weak_strong import MultiLabelWeakToStrongSegmentor, WeakToStrongSegmentor

__all__ = ['MultiLabelEncoderDecoder', 'MultiLabelCascadeEncoderDecoder',
           'MultiLabelPostProcessMixin', 'MultiLabelSegTTAModel', 'MeanTeacherSegmentor', 'logits_to_original',
           'resolve_thresholds', 'WeakToStrongSegmentor', 'MultiLabelWeakToStrongSegmentor']
