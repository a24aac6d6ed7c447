"""RecipeArgs: the arguments of one run of the training recipe, as one typed object.

``resnetlab.train(...)`` builds it from its keywords; the recipe
(:func:`resnetlab.training.recipe.run`) reads it; a background training job forwards it
whole to its thread or worker process (it pickles when its parts do: pass a preset name
rather than a live model to a process).
"""

from __future__ import annotations

import dataclasses
import numbers
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from resnetlab.errors import ConfigError
from resnetlab.training.config import TrainConfig

DEFAULT_DATA = "fashion-mnist"
# "store=DEFAULT_STORE" means: the RunStore at $RESNETLAB_RUNS or ./runs/resnetlab.db.
DEFAULT_STORE = "default"


def check_limit(name: str, value: Any) -> None:
    """A ``train_limit``/``test_limit`` is None or a positive int (ConfigError otherwise)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        flag = "--" + name.replace("_", "-")
        raise ConfigError(
            f"{name}={value!r} ({flag}): must be a positive number of images; "
            "leave it out to use the whole split"
        )


@dataclass
class RecipeArgs:
    """What one training run is asked to do; the fields are ``resnetlab.train``'s keywords.

    ``None`` means "the recipe's default" (or, on resume, "as the checkpoint saved it").
    """

    model_or_preset: Any = None  # a preset name (None: models.DEFAULT_MODEL) or an nn.Module
    data: str = DEFAULT_DATA
    epochs: int | None = None
    batch_size: int | None = None
    optimizer: str | None = None
    schedule: str | None = None
    lr: float | None = None
    device: str = "auto"
    precision: str | None = None
    compile: bool = False
    seed: int | None = None
    run_name: str | None = None
    data_dir: str | os.PathLike[str] | None = None
    callbacks: Iterable[Any] = ()  # kept as a tuple
    stream: Any = None  # a MetricStream (None: a new one)
    store: Any = DEFAULT_STORE  # DEFAULT_STORE, True, a path, a RunStore, or None/False
    progress: bool = False
    resume: str | os.PathLike[str] | None = None  # a checkpoint, run folder, or run id/name
    # A checkpoint, run folder, or run id/name whose weights start this new run (fine-tuning).
    init_from: str | os.PathLike[str] | None = None
    config: TrainConfig | None = None  # the base config (None: TrainConfig())
    model_overrides: Mapping[str, Any] | None = None
    train_limit: int | None = None  # N training images, after the validation split
    test_limit: int | None = None  # only the first N test images
    evaluate_test: bool = True
    # Any other TrainConfig fields given as keywords (label_smoothing=0.05, ...).
    config_fields: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_limit("train_limit", self.train_limit)
        check_limit("test_limit", self.test_limit)
        # A tuple: the list a caller passed may change later; a generator is read once.
        self.callbacks = tuple(self.callbacks or ())

    @classmethod
    def from_keywords(cls, *args: Any, **keywords: Any) -> RecipeArgs:
        """``resnetlab.train``'s positional and keyword arguments (minus ``live`` and
        ``background``) as RecipeArgs: names that are not fields are TrainConfig fields."""
        names = {f.name for f in dataclasses.fields(cls)} - {"config_fields"}
        given = {k: v for k, v in keywords.items() if k in names}
        rest = {k: v for k, v in keywords.items() if k not in names}
        return cls(*args, **given, config_fields=rest)

    def asked_config(self) -> dict[str, Any]:
        """The TrainConfig settings given as keywords, ``None`` ones left out."""
        fields = dict(
            epochs=self.epochs,
            batch_size=self.batch_size,
            optimizer=self.optimizer,
            schedule=self.schedule,
            lr=self.lr,
            precision=self.precision,
            seed=self.seed,
            **self.config_fields,
        )
        return {k: v for k, v in fields.items() if v is not None}

    def dist_timeout_s(self) -> float:
        """The collective timeout to launch with: asked, the base config's, or the default."""
        timeout = self.config_fields.get("dist_timeout_s") or (
            self.config.dist_timeout_s if self.config is not None else TrainConfig.dist_timeout_s
        )
        return float(timeout)
