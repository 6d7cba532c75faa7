"""The class lists and palettes of the competitions, in one place.

Imports only numpy, so the file-format layer (``io``), the data sets, the synthetic
generators and the tools can all use them without pulling in torch or mmseg. The
configs under ``custom_configs/_base_/datasets`` repeat the lists as plain data (config
files stay readable on their own); ``tests/test_class_names.py`` keeps them equal.
"""
from __future__ import annotations

from typing import List, Tuple

import numpy as np


def random_palette(n: int, seed: int = 29) -> List[List[int]]:
    """``n`` reproducible ``[R, G, B]`` colours in [40, 255] (the hand-bone rule: seed 29
    gives the 29 hand-bone colours; other seeds give colours for other class lists)."""
    rng = np.random.default_rng(seed)
    return rng.integers(40, 256, size=(n, 3)).tolist()


#: The 29 hand-bone classes, in the order of the competition's submission file.
HAND_BONE_CLASSES: Tuple[str, ...] = tuple(f'finger-{i}' for i in range(1, 20)) + (
    'Trapezium', 'Trapezoid', 'Capitate', 'Hamate', 'Scaphoid', 'Lunate', 'Triquetrum',
    'Pisiform', 'Radius', 'Ulna')
HAND_BONE_PALETTE: List[List[int]] = random_palette(len(HAND_BONE_CLASSES))

#: Recycling trash: background + 10 categories, in the submission's class-id order.
TRASH_CLASSES: Tuple[str, ...] = (
    'Background', 'General trash', 'Paper', 'Paper pack', 'Metal', 'Glass', 'Plastic',
    'Styrofoam', 'Plastic bag', 'Battery', 'Clothing')
TRASH_PALETTE: List[List[int]] = [
    [0, 0, 0], [192, 0, 128], [0, 128, 192], [0, 128, 64], [128, 0, 0], [64, 0, 128],
    [64, 0, 192], [192, 128, 64], [192, 192, 128], [64, 64, 128], [128, 0, 192]]

#: Port structures: background + 4 object classes.
PORT_CLASSES: Tuple[str, ...] = (
    'background', 'container_truck', 'forklift', 'reach_stacker', 'ship')
PORT_PALETTE: List[List[int]] = [
    [0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200]]
