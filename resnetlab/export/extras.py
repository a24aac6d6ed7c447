"""Optional packages of the export formats: imported on use, a one-line error without them."""

from __future__ import annotations

import importlib
from types import ModuleType

from resnetlab.errors import ConfigError


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """``module`` imported, or a ``ConfigError`` naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        # One line: the CLI prints it as is, and a notebook shows it without a traceback.
        raise ConfigError(
            f"{purpose} needs the {module.split('.')[0]} package: pip install 'resnetlab[{extra}]'"
        ) from None
