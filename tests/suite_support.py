"""Constants and helpers shared by test modules (import as ``from suite_support import ...``).

Kept out of ``conftest.py`` on purpose: several test folders have their own conftest, and
``from conftest import X`` would pick whichever of them was imported first.
"""

from __future__ import annotations

import socket
from pathlib import Path

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
CHROMIUM = Path("/usr/bin/chromium")
# Flags that keep headless Chromium quiet on a machine without internet access.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
