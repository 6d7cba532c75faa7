"""Datasets (registered in ``mmseg.registry.DATASETS``) and their transforms."""
from . import transforms  # noqa: F401
