"""The folders a run creates on the way to its work dir, removed again when it is refused.

``--work-dir a/b/w`` creates ``a``, ``a/b`` and ``w`` when none exists. A run refused
before it wrote anything worth keeping removes the work dir it made
(:class:`~mmseg_ext.training.tool_runner.ToolRunner`,
:func:`~mmseg_ext.io.ownership.owned_work_dir`), and with it the empty folders it made
above it: :func:`first_missing` is taken before anything is created, and
:func:`remove_empty_parents` goes up from the work dir to that folder, stopping at the
first one that holds anything.
"""
from __future__ import annotations

import os
import os.path as osp
from typing import Optional


def first_missing(path: str) -> Optional[str]:
    """The highest folder of ``path`` (absolute) that does not exist yet, ``path``
    itself included; None when ``path`` exists."""
    full = osp.abspath(path)
    if osp.lexists(full):
        return None
    while True:
        parent = osp.dirname(full)
        if parent == full or osp.lexists(parent):
            return full
        full = parent


def remove_empty_parents(path: str, top: Optional[str]) -> None:
    """Remove the empty folders above ``path`` (already removed) up to ``top``
    (:func:`first_missing` before the run), ``top`` included; a folder that holds
    anything, and everything above it, stays."""
    if not top:
        return
    full, top = osp.abspath(path), osp.abspath(top)
    if full != top and not full.startswith(top.rstrip(os.sep) + os.sep):
        return
    while full != top:
        full = osp.dirname(full)
        try:
            os.rmdir(full)
        except OSError:
            return
