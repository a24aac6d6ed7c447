"""Each run its own random stream, also when several runs share a process (thread jobs).

What a training run draws at random, and from where:

* the data order and the batched augmentation: the loader's own ``torch.Generator``
  (seeded from the run's seed, epoch and rank), the validation split: its own too;
* the model's initial weights: torch's global generator, seeded by ``seed_everything``
  just before the model is built. :func:`seeded_model` does both under
  :data:`~resnetlab.training.seed.RNG_LOCK` (which ``seed_everything`` takes too), so
  that another run's seeding or drawing cannot interleave;
* dropout masks: torch's global generator (``F.dropout`` takes no generator).
  :class:`RunGenerator` keeps the run's own state of it and swaps it in, under the
  lock, around each dropout module's forward; the state it leaves behind is the run's,
  so a run alone in its process draws exactly the numbers it drew before, and its
  checkpoints (which save the global state) resume exactly.

Not covered: a user's own callbacks or modules that draw from the global generator while
another thread trains, and a ``torch.compile``-d model (its compiled dropout does not call
module hooks): use process jobs (``background="process"``), whose generators are their own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from resnetlab.training.seed import RNG_LOCK, seed_everything


def _get_state(device: torch.device) -> torch.Tensor:
    if device.type == "cuda":
        return torch.cuda.get_rng_state(device)
    return torch.get_rng_state()


def _set_state(device: torch.device, state: torch.Tensor) -> None:
    if device.type == "cuda":
        torch.cuda.set_rng_state(state, device)
    else:
        torch.set_rng_state(state)


def seeded_model(seed: int, build: Callable[[], nn.Module]) -> nn.Module:
    """``build()`` right after ``seed_everything(seed)``, under :data:`RNG_LOCK`."""
    with RNG_LOCK:
        seed_everything(seed)
        return build()


def seed_state(seed: int) -> torch.Tensor:
    """The CPU generator state right after ``torch.manual_seed(seed)``: where a fresh run's
    dropout stream starts (``Trainer.fit`` seeds the global generators at its start)."""
    return torch.Generator().manual_seed(seed).get_state()


def has_dropout(model: nn.Module) -> bool:
    """Whether ``model`` has a dropout module that draws (p > 0)."""
    return any(isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0 for m in model.modules())


class RunGenerator:
    """The run's own state of torch's global generator (on the model's device), swapped in
    under :data:`RNG_LOCK` around every dropout module's forward in training mode."""

    def __init__(
        self, states: Mapping[str, torch.Tensor] | None = None, seed: int | None = None
    ) -> None:
        # Per device ("cpu", "cuda:0"). One missing: the state of a generator seeded with
        # ``seed`` (what seed_everything gives it), else the global state at the first draw.
        self.states: dict[str, torch.Tensor] = dict(states or {})
        self.seed = seed
        self._handles: list[Any] = []
        self._device: torch.device | None = None

    @classmethod
    def for_run(cls, seed: int, rng: Mapping[str, Any] | None = None) -> RunGenerator:
        """A fresh run's stream (from ``seed``, as ``Trainer.fit`` seeds the global
        generators), or a resumed one's: the checkpoint's ``rng`` states."""
        if rng is None:
            return cls({"cpu": seed_state(seed)}, seed=seed)
        states = {"cpu": rng["torch"]} if rng.get("torch") is not None else {}
        states.update({f"cuda:{i}": s for i, s in enumerate(rng.get("cuda") or [])})
        return cls(states)

    def attach(self, model: nn.Module) -> RunGenerator:
        for module in model.modules():
            if isinstance(module, nn.modules.dropout._DropoutNd) and module.p > 0:
                self._handles.append(module.register_forward_pre_hook(self._before))
                self._handles.append(module.register_forward_hook(self._after, always_call=True))
        return self

    def detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _before(self, module: nn.Module, inputs: tuple[Any, ...]) -> None:
        if not module.training:
            return
        RNG_LOCK.acquire()  # released by _after, which runs even if the forward fails
        device = inputs[0].device if inputs and isinstance(inputs[0], torch.Tensor) else None
        self._device = device if device is not None else torch.device("cpu")
        key = str(self._device)
        if key not in self.states and self.seed is not None:
            self.states[key] = torch.Generator(self._device).manual_seed(self.seed).get_state()
        state = self.states.get(key)
        if state is not None:
            _set_state(self._device, state)

    def _after(self, module: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
        if not module.training or self._device is None:
            return
        try:
            # The run's state stays in the global generator too: a run alone draws (and
            # checkpoints) exactly what it did without this class.
            self.states[str(self._device)] = _get_state(self._device)
        finally:
            self._device = None
            RNG_LOCK.release()
