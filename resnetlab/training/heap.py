"""Keep freed activation memory in the process heap during CPU training.

With glibc's defaults a training step on the CPU returns its large activation and
gradient buffers to the kernel (``munmap`` above the dynamic mmap threshold, heap trims
below it) and faults them in again, page by page, on the next step. Raising the mmap
threshold to its maximum (32 MiB) and never trimming keeps those pages mapped: on this
project's 2-core machine an epoch of 40,960 images takes 0.30M minor page faults instead
of 1.25M and runs 1.08x faster (``bench/bench_heap.py``, docs/bench/training.md). The cost is that the heap stays at its peak size until the
process ends (a few hundred MB for the default model), which is what a trainer wants.

``RESNETLAB_HEAP=default`` leaves glibc as it is. Other C libraries (macOS, musl): a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys
from typing import Literal

from resnetlab.errors import ConfigError

log = logging.getLogger(__name__)

HeapMode = Literal["keep", "default"]
"""``keep``: tuned for training (the default); ``default``: glibc's own settings."""

ENV = "RESNETLAB_HEAP"
M_TRIM_THRESHOLD = -1  # mallopt(3) parameter numbers, from <malloc.h>
M_MMAP_THRESHOLD = -3
# glibc's ceiling for the mmap threshold on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX).
MMAP_THRESHOLD = 32 * 2**20
NEVER_TRIM = 2**31 - 1  # the largest int mallopt takes: in practice, never trim

_applied: HeapMode | None = None


def heap_mode() -> HeapMode:
    """The mode ``RESNETLAB_HEAP`` asks for; unset or empty means ``keep``."""
    value = os.environ.get(ENV, "").strip().lower() or "keep"
    if value not in ("keep", "default"):
        raise ConfigError(
            f"environment variable {ENV}={value!r} is not a heap mode: unset it (or set "
            f"'keep') for the training heap, or set {ENV}=default for glibc's own settings"
        )
    return value  # type: ignore[return-value]


def keep_training_heap() -> bool:
    """Apply the training heap settings once per process; True when they are in force."""
    global _applied
    mode = heap_mode()  # checked on every call: a bad value is an error, not a no-op
    if _applied is not None:
        return _applied == "keep"
    _applied = "default"
    if mode == "default" or not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    ok = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    ok = mallopt(M_TRIM_THRESHOLD, NEVER_TRIM) == 1 and ok
    if ok:
        _applied = "keep"
        log.debug("heap: mmap threshold %d MiB, no trimming", MMAP_THRESHOLD >> 20)
    return ok
