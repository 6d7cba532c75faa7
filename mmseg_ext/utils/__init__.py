"""Helpers shared by the plugin and its tools.

Nothing is imported here on purpose: :mod:`mmseg_ext.utils.env_check` must be importable
before torch, mmcv or mmseg are known to work.
"""
