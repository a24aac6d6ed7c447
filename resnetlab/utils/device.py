"""``resolve_device``: the one place a device name ("auto", "cpu", "cuda:1") becomes a device."""

from __future__ import annotations

import torch

from resnetlab.errors import ConfigError


def resolve_device(device: str | torch.device = "auto", local_rank: int = 0) -> torch.device:
    """``"auto"``: this process's GPU (``cuda:LOCAL_RANK``) when CUDA is present, else the CPU.

    A name torch does not know, or a GPU this machine lacks, is a ConfigError saying
    which names work here.
    """
    if isinstance(device, torch.device):
        return device
    name = str(device).strip()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError):
        raise ConfigError(
            f"device={device!r} is not a device name; use 'auto', 'cpu', 'cuda' or 'cuda:N'"
        ) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device={device!r}: this machine has no usable CUDA GPU; use device='cpu' "
                "or 'auto'"
            )
        count = torch.cuda.device_count()
        index = local_rank if dev.index is None else dev.index
        if index >= count:
            raise ConfigError(
                f"device={device!r} (LOCAL_RANK={local_rank}) but this machine has {count} "
                f"GPU(s); start at most {count} processes per node or name an existing GPU"
            )
        dev = torch.device("cuda", index)
    elif dev.type not in ("cpu", "mps", "xpu", "meta"):
        raise ConfigError(f"device={device!r}: unsupported here; use 'auto', 'cpu' or 'cuda:N'")
    return dev
