"""Synthetic data sets in real file layouts, for the demo, tests and benchmarks."""
from ...utils.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    'SHAPES_CLASSES': '.shapes',
    'make_shapes_dataset': '.shapes',
    'SyntheticHandBone': '.hand_bone',
    'make_handbone_dataset': '.hand_bone',
    'render_hand': '.hand_bone',
})
