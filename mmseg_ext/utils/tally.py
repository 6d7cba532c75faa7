"""Counts by key (what a reader skipped, and why), summed and listed in one line.

A report of skipped items keeps ``counts`` (a :class:`collections.Counter`: key -> how
many times it was met) and derives from :class:`Tally` its :attr:`~Tally.total` and the
key-ordered :meth:`~Tally.listing` its one-line summary is made of (the COCO index's
``SkipReport``, the hand bone reader's ``UnknownLabelCounter``).
"""
from __future__ import annotations

from collections import Counter
from typing import Callable


class Tally:
    """Mixin of a class with ``counts: Counter`` (set by the subclass)."""

    counts: Counter

    @property
    def total(self) -> int:
        """Everything counted, all keys together."""
        return sum(self.counts.values())

    def listing(self, item: Callable[[str, int], str]) -> str:
        """``item(key, count)`` of every key in key order, joined with ``', '``."""
        return ', '.join(item(key, n) for key, n in sorted(self.counts.items()))
