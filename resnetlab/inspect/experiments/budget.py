"""The budget of an experiment: epochs per run, or minutes for the whole experiment.

``"2"`` / ``"2ep"``: every run trains 2 epochs over the experiment's training subset
(for less work than one epoch, use a smaller ``--subset``).

``"6min"`` / ``"6m"`` / ``"0.5h"``: the whole experiment should take about that long. Each
run gets an equal share of the time, turned into whole epochs by timing a few training
steps of that very model first, so deep and shallow nets get the same wall-clock time
(and therefore different numbers of epochs).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass

from resnetlab.errors import ConfigError

# RESNETLAB_TINY=1 (the docs test, quick looks): one epoch per run on a few hundred images.
TINY_ENV = "RESNETLAB_TINY"
TINY_SUBSET = 256


def tiny_budget() -> bool:
    """Whether ``RESNETLAB_TINY`` asks for the tiny budget (any value but empty/0/no)."""
    return os.environ.get(TINY_ENV, "").strip().lower() not in ("", "0", "no", "false")


def tiny_subset(images: int) -> int:
    """A subset size, capped to :data:`TINY_SUBSET` under the tiny budget."""
    return min(images, TINY_SUBSET) if tiny_budget() else images


_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z ]*)\s*$")
_UNITS = {
    "": "epochs",
    "ep": "epochs",
    "epoch": "epochs",
    "epochs": "epochs",
    "e": "epochs",
    "m": "minutes",
    "min": "minutes",
    "mins": "minutes",
    "minute": "minutes",
    "minutes": "minutes",
    "h": "hours",
    "hour": "hours",
    "hours": "hours",
    "s": "seconds",
    "sec": "seconds",
    "seconds": "seconds",
}


@dataclass(frozen=True)
class Budget:
    """Either whole epochs per run or wall-clock seconds for the whole experiment."""

    epochs: int | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        if (self.epochs is None) == (self.seconds is None):
            raise ConfigError("a budget is either epochs or time, e.g. '2ep' or '5min'")
        if self.epochs is not None and self.epochs < 1:
            raise ConfigError(f"budget of {self.epochs} epochs: give at least 1 epoch")
        if self.seconds is not None and self.seconds <= 0:
            raise ConfigError("a time budget must be positive, e.g. '5min'")

    @classmethod
    def parse(cls, text: str | int | float | Budget) -> Budget:
        """``"2"``, ``"2ep"``, ``"90s"``, ``"5min"``, ``"1h"`` → a Budget (one epoch under
        the tiny budget, once ``text`` is known to be valid)."""
        budget = cls._parse(text)
        return cls(epochs=1) if tiny_budget() else budget

    @classmethod
    def _parse(cls, text: str | int | float | Budget) -> Budget:
        if isinstance(text, Budget):
            return text
        if isinstance(text, int | float) and not isinstance(text, bool):
            text = str(text)
        match = _RE.match(str(text).lower())
        unit = _UNITS.get(match.group(2).strip()) if match else None
        if match is None or unit is None:
            raise ConfigError(
                f"--budget {text!r} is not a budget; use epochs per run ('2', "
                "'2ep') or time for the whole experiment ('90s', '5min', '1h')"
            )
        value = float(match.group(1))
        if unit == "epochs":
            if not value.is_integer():
                raise ConfigError(
                    f"--budget {text!r}: epochs must be whole; for less work "
                    "use 1 epoch with a smaller --subset"
                )
            return cls(epochs=int(value))
        scale = {"seconds": 1.0, "minutes": 60.0, "hours": 3600.0}[unit]
        return cls(seconds=value * scale)

    def epochs_for(self, seconds_per_epoch: float, runs: int) -> int:
        """Epochs one run gets: fixed, or its share of the time at the measured speed."""
        if self.epochs is not None:
            return self.epochs
        share = self.seconds / max(runs, 1)
        return max(1, math.floor(share / max(seconds_per_epoch, 1e-9)))

    def describe(self) -> str:
        if self.epochs is not None:
            return f"{self.epochs} epoch{'s' if self.epochs != 1 else ''} per run"
        amount = (
            f"{self.seconds:.0f} seconds"
            if self.seconds < 120
            else f"{self.seconds / 60:.3g} minutes"
        )
        return (
            f"{amount} for the whole experiment, shared equally between the runs "
            "(epochs per run from a timed probe of each model, the same for all its seeds)"
        )
