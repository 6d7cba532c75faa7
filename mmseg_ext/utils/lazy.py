"""Package attributes that import their module on first access (PEP 562).

A package ``__init__`` that re-exports its classes would import all of them, and with
them torch and mmseg, whenever any of its modules is imported. With
:func:`lazy_exports` ``from mmseg_ext.datasets import HandBoneDataset`` still works, but
``import mmseg_ext.datasets.splits`` imports only what ``splits`` needs.
"""
from __future__ import annotations

import importlib
from typing import Callable, Dict, List, Tuple


def lazy_exports(package: str, table: Dict[str, str]
                 ) -> Tuple[Callable, Callable, List[str]]:
    """Return the ``__getattr__``, ``__dir__`` and ``__all__`` of ``package``.

    Args:
        package: the package's ``__name__``.
        table: exported name -> module relative to the package (``'.hand_bone'``).
    """
    def __getattr__(name: str):
        module = table.get(name)
        if module is None:
            raise AttributeError(f'module {package!r} has no attribute {name!r}')
        return getattr(importlib.import_module(module, package), name)

    def __dir__() -> List[str]:
        return sorted(set(table) | set(vars(importlib.import_module(package))))

    return __getattr__, __dir__, sorted(table)
