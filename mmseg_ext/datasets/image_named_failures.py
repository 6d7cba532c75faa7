"""Dataset mixin: a pipeline failure on an item becomes one error naming its image.

Mixed in before :class:`mmseg.datasets.BaseSegDataset` by the data sets of this package
(``class HandBoneDataset(ImageNamedFailuresMixin, BaseSegDataset)``), so a transform
that fails on one sample (a keep-ratio resize of a 1xN image rounds a side to 0) stops
with one :class:`~mmseg_ext.utils.errors.DataFileError` naming the image and its size
instead of an OpenCV traceback from a data-loader worker.
"""
from __future__ import annotations

from .transforms.pipeline_geometry import pipeline_errors


class ImageNamedFailuresMixin:
    """``prepare_data`` wrapped in
    :func:`~mmseg_ext.datasets.transforms.pipeline_geometry.pipeline_errors`.

    The image is the item's ``img_path`` (``'item <idx>'`` when its data info has
    none). Needs ``get_data_info`` and a ``prepare_data`` further along the MRO (mmengine's
    ``BaseDataset``).
    """

    def prepare_data(self, idx: int):
        """The pipeline's output for item ``idx``; a transform's failure (a keep-ratio
        resize of a 1xN image) is one error naming the image
        (:func:`~mmseg_ext.datasets.transforms.pipeline_geometry.pipeline_errors`)."""
        with pipeline_errors(self.get_data_info(idx).get('img_path', f'item {idx}')):
            return super().prepare_data(idx)
