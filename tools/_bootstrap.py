"""Imported first by every tool: make the checkout importable.

Importing :mod:`mmseg_ext` is cheap (no torch, no mmseg), so tools that need no model start
at once. A tool that builds a model calls :func:`mmseg_ext.register_all_modules` at the
start of its ``main``: the environment check then fails with its one line (exit 2,
through :func:`mmseg_ext.utils.cli.cli_main`) before any work.
"""
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
