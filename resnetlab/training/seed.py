"""Seeding every random number generator a run touches."""

from __future__ import annotations

import random
import threading

import numpy as np
import torch

# One user of torch's global generator at a time among the runs of this process (thread
# jobs): held while seeding, while a run builds its model, and around each dropout draw
# of a run (resnetlab.training.rng). Re-entrant: seeding under it is fine.
RNG_LOCK = threading.RLock()


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, numpy and torch (CPU and every CUDA device)."""
    with RNG_LOCK:
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)  # also seeds all CUDA devices
