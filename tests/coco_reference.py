"""An independent reference for COCO label maps: pycocotools' ``annToMask`` per
annotation, painted in the chosen order (used by the COCO data set and converter tests)."""
import contextlib
import io
from typing import Dict, Sequence

import numpy as np
from pycocotools.coco import COCO


def load_coco(ann_file: str) -> COCO:
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(ann_file)


def reference_label_maps(coco: COCO, classes: Sequence[str], order: str) -> Dict[str, np.ndarray]:
    """``{file_name: (H, W) uint8 label map}`` in file order; ``order`` is ``'file'``,
    ``'area_desc'`` or ``'polygon_length'`` (later annotations painted on top)."""
    index = {name: i for i, name in enumerate(classes)}
    name_of = {c['id']: c['name'] for c in coco.dataset['categories']}
    out = {}
    for img in coco.dataset['images']:
        anns = list(coco.imgToAnns[img['id']])          # file order
        if order == 'area_desc':
            anns.sort(key=lambda a: -a['area'])
        elif order == 'polygon_length':
            anns.sort(key=lambda a: len(a['segmentation'][0]))
        mask = np.zeros((img['height'], img['width']), np.uint8)
        for a in anns:
            mask[coco.annToMask(a) == 1] = index[name_of[a['category_id']]]
        out[img['file_name']] = mask
    return out
