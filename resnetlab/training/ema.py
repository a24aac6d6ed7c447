"""An exponential moving average of a model's weights and of its BatchNorm statistics."""

from __future__ import annotations

import copy

import torch
from torch import nn


class ModelEMA:
    """``ema = d * ema + (1 - d) * live`` after every optimiser step.

    Parameters *and* floating-point buffers (BN running mean/var) are averaged: the
    average network must normalise with statistics that belong to averaged weights,
    not with the live model's (copying them cost 13 points of test accuracy, issue 18).
    Integer buffers (``num_batches_tracked``) are copied.

    ``warmup``: the decay of update ``n`` (from 0) is ``min(decay, (1 + n) / (10 + n))``
    (TensorFlow's ``num_updates`` rule), so the random initialisation is forgotten
    quickly and a short run averages roughly its last ~10% of steps rather than
    carrying a ``decay ** steps`` share of the init weights.

    The average is a separate module in eval mode, used for validation, the best
    checkpoint and the final test when enabled. :meth:`state_dict` is the module's own
    (the checkpoint format is unchanged); the update count is read back from the copied
    ``num_batches_tracked`` (one per training step), so a resumed run continues the
    warm-up exactly for networks with BatchNorm.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999, *, warmup: bool = True) -> None:
        self.decay = decay
        self.warmup = warmup
        self.updates = 0
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    def current_decay(self) -> float:
        """The decay the next :meth:`update` uses."""
        if not self.warmup:
            return self.decay
        n = self.updates
        return min(self.decay, (1.0 + n) / (10.0 + n))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        weight = 1.0 - self.current_decay()
        self.updates += 1
        ema_float, live_float = [], []
        for p, q in zip(self.module.parameters(), model.parameters(), strict=True):
            ema_float.append(p)
            live_float.append(q.detach())
        for eb, b in zip(self.module.buffers(), model.buffers(), strict=True):
            if eb.is_floating_point():
                ema_float.append(eb)
                live_float.append(b.detach())
            else:
                eb.copy_(b)
        torch._foreach_lerp_(ema_float, live_float, weight)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict(state)
        self.updates = _count_from_buffers(self.module, default=self.updates)


def _count_from_buffers(module: nn.Module, default: int) -> int:
    """Training steps recorded in BN's ``num_batches_tracked`` (the largest), else ``default``."""
    counts = [
        int(b.max())
        for name, b in module.named_buffers()
        if name.endswith("num_batches_tracked") and b.numel()
    ]
    return max(counts) if counts else default
