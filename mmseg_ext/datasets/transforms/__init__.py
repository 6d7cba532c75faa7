"""Data transforms (registered in ``mmseg.registry.TRANSFORMS``)."""
