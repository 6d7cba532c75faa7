"""Building the data set of a config to list its images (no pipeline run)."""
from __future__ import annotations

import copy
from typing import List


def build_dataset(dataset: dict):
    """The mmseg data set of a config dict (in the mmseg scope)."""
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS
    init_default_scope('mmseg')
    return DATASETS.build(copy.deepcopy(dataset))


def loader_images(cfg, loader: str) -> List[str]:
    """The image paths of the data set of ``cfg``'s ``loader`` (``'test_dataloader'``),
    built without its pipeline (wrappers keep their members' own); ``[]`` when the
    config has no such data set."""
    dataset = (cfg.get(loader) or {}).get('dataset')
    if not dataset:
        return []
    dataset = dataset.to_dict() if hasattr(dataset, 'to_dict') else dict(dataset)
    built = build_dataset(dict(dataset, pipeline=[]) if 'pipeline' in dataset else dataset)
    return [built.get_data_info(i)['img_path'] for i in range(len(built))]
