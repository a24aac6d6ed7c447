"""Mixed precision that is correct on both CPU and CUDA.

* ``bf16``: autocast to bfloat16 (CPU and CUDA); no loss scaling needed.
* ``fp16``: autocast to float16 with a GradScaler; CUDA only (CPU fp16 training is slow
  and unscaled fp16 gradients underflow).
* ``fp32``: nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch

from resnetlab.errors import ConfigError


def cpu_has_native_bf16() -> bool:
    """True when the CPU computes bfloat16 in hardware (AVX512-BF16 or AMX)."""
    try:
        amx = getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()
        return bool(torch.cpu._is_avx512_bf16_supported() or amx)
    except Exception:  # private helpers moved: be conservative
        return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """Turn ``auto`` into a concrete choice and reject impossible ones with the fix.

    ``auto``: bf16 on a CUDA GPU that supports it and on CPUs with native bf16 (there it
    trains the default model ~2x faster than fp32); fp32 everywhere else (emulated bf16
    would be slower).
    """
    if precision == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
        if device.type == "cpu" and cpu_has_native_bf16():
            return "bf16"
        return "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError(
            f"precision='fp16' needs a CUDA device, but training runs on {device}; "
            "use precision='bf16' (autocast works on CPU) or 'fp32'"
        )
    if precision not in ("fp32", "bf16", "fp16"):
        raise ConfigError(f"unknown precision {precision!r}; choose fp32, bf16, fp16 or auto")
    return precision


def autocast_factory(precision: str, device: torch.device) -> Callable[[], Any]:
    """A zero-argument callable giving the autocast context for one forward pass."""
    if precision == "fp32":
        return contextlib.nullcontext
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return lambda: torch.autocast(device_type=device.type, dtype=dtype)


def make_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler | None:
    """A GradScaler for fp16 on CUDA, else None."""
    if precision == "fp16":
        return torch.amp.GradScaler(device.type)
    return None
