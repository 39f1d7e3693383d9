"""Attributes of a package loaded on first use (PEP 562), for an ``__init__`` that should not
import what a user of one of its parts does not need:

    __getattr__, __dir__ = lazy_attributes(__name__, {"Name": "package.module"}, globals())

Each name is imported from its module the first time it is read, then kept in the package's
namespace; ``dir()`` lists them before they are loaded."""
from __future__ import annotations

import importlib
from typing import Any, Callable, Iterable


def lazy_attributes(package: str, where: dict[str, str], namespace: dict[str, Any],
                    listed: Iterable[str] | None = None
                    ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The package's ``__getattr__`` and ``__dir__`` for the names of ``where`` (name ->
    the module that defines it); ``dir()`` lists ``listed`` (default: those names) beside
    what the namespace holds."""
    shown = set(where if listed is None else listed)

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | shown)

    return __getattr__, __dir__
