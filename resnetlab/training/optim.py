"""Optimisers with weight decay only where it belongs.

Weight decay shrinks conv and linear weights (a regulariser); applied to BatchNorm scales
and shifts or to biases it only fights the normalisation, so those go in a group without it.
"""

from __future__ import annotations

import torch
from torch import nn

from resnetlab.errors import ConfigError
from resnetlab.training.config import TrainConfig


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two groups: ``decay`` (conv/linear weights) and ``no_decay`` (BN/norm params, biases)."""
    decay, no_decay = [], []
    seen: set[int] = set()
    for module in model.modules():
        is_norm = isinstance(module, (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm))
        for name, p in module.named_parameters(recurse=False):
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            if is_norm or name.endswith("bias") or p.ndim <= 1:
                no_decay.append(p)
            else:
                decay.append(p)
    groups = [{"params": decay, "weight_decay": weight_decay, "name": "decay"}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0, "name": "no_decay"})
    return groups


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """SGD (momentum, optional Nesterov) or AdamW over :func:`param_groups`."""
    groups = param_groups(model, config.weight_decay)
    if not any(g["params"] for g in groups):
        raise ConfigError("the model has no trainable parameters (all requires_grad=False)")
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            groups,
            lr=config.lr,
            momentum=config.momentum,
            nesterov=config.nesterov and config.momentum > 0,
        )
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr, betas=(config.momentum, 0.999))
    raise ConfigError(f"unknown optimizer {config.optimizer!r}; choose sgd or adamw")
