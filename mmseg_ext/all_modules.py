"""Importing this module registers every component of the plugin in mmseg's registries.

It is an import location of mmseg's registries (see :mod:`mmseg_ext.registration`), so the
first lookup in any of them runs it; :func:`mmseg_ext.register_all_modules` does the same
on demand.
"""
from .registration import register_all_modules

register_all_modules()
