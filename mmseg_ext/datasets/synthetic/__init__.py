"""Synthetic data sets in real file layouts, for the demo, tests and benchmarks."""
from .hand_bone import SyntheticHandBone, make_handbone_dataset, render_hand
from .shapes import SHAPES_CLASSES, make_shapes_dataset

__all__ = ['SHAPES_CLASSES', 'make_shapes_dataset']
__all__ += ['SyntheticHandBone', 'make_handbone_dataset', 'render_hand']
