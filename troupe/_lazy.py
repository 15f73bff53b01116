"""Module-level ``__getattr__`` for packages whose names load on first use.

Several packages keep ``import`` cheap by mapping each public name to the module that defines it
and importing that module only when the name is first read (PEP 562). The lookup is the same
everywhere, so it lives here once.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_getattr(namespace: dict[str, Any], names: Mapping[str, str]) -> Callable[[str], Any]:
    """The ``__getattr__`` for the package whose ``globals()`` is ``namespace``.

    ``names`` maps each lazy name to the module to import it from. A name, once loaded, is stored
    in ``namespace`` so later reads skip this function.
    """
    package = namespace["__name__"]

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    return __getattr__
