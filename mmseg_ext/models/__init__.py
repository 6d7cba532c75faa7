"""Heads, losses and segmentors (registered in ``mmseg.registry.MODELS``)."""
