"""Metrics (registered in ``mmseg.registry.METRICS``)."""
