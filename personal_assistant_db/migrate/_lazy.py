"""The lazy facade shared by ``migrate`` and ``migrate.adoption`` (a leaf: imports only importlib).

``lazy_facade(globals(), homes)`` returns the module's ``__getattr__`` and ``__dir__``: a public
name is imported from its home submodule on first access and cached in the module's namespace, so
importing the package itself loads nothing else.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_facade"]


def lazy_facade(
    namespace: dict[str, Any], homes: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for the package whose ``globals()`` is ``namespace``.

    ``homes`` maps each public name to its submodule, relative to the package.
    """
    package = namespace["__name__"]

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{home}"), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted([*namespace, *namespace["__all__"]])

    return __getattr__, __dir__
