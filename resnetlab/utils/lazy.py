"""Lazy public names for package ``__init__`` modules.

``import resnetlab.live`` should not import matplotlib, nor ``import resnetlab`` torch:
each package lists its public names and where they live, and imports them on first use.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` for ``package`` that imports ``names`` on first use.

    ``names`` maps a public name to ``"module"`` (the attribute of the same name),
    ``"module:attribute"``, or ``"module:"`` (the module itself).
    """
    namespace = sys.modules[package].__dict__

    def __getattr__(name: str) -> Any:
        try:
            target = names[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        module, sep, attr = target.partition(":")
        value: Any = importlib.import_module(module)
        attr = attr if sep else name
        if attr:
            value = getattr(value, attr)
        namespace[name] = value  # later look-ups skip this function
        return value

    return __getattr__
