"""Runner-side components: the CPU distributed model wrapper (mmengine ``MODEL_WRAPPERS``),
and the hooks the tools' runner registers itself (``finite_loss``: stop a diverged
training before it saves; ``split_overlap``: say when validation images are training
images).

For an exponential-moving-average copy of a model (checkpoints and validation with
averaged weights) use mmengine's own ``EMAHook``; the mean-teacher segmentor keeps its
EMA teacher itself (:func:`mmseg_ext.models.segmentors.mean_teacher.update_teacher`).
"""
from .cpu_distributed import CPUDistributedDataParallel

__all__ = ['CPUDistributedDataParallel']
