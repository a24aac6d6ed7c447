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
from typing import Any, Literal

from resnetlab.errors import ConfigError
from resnetlab.training.config import TrainConfig

DEFAULT_DATA = "fashion-mnist"
# "store=DEFAULT_STORE" means: the RunStore at $RESNETLAB_RUNS or ./runs/resnetlab.db.
DEFAULT_STORE = "default"

# The named recipes: a network and its epochs (resnetlab train, --quick, --best).
RecipeName = Literal["default", "quick", "best"]

# ``quick=True`` / ``resnetlab train --quick``: the cheaper recipe (models.QUICK_MODEL for
# this many epochs), ~3 minutes and ~93% on Fashion-MNIST on a 2-core CPU.
QUICK_EPOCHS = 20
# ``best=True`` / ``resnetlab train --best``: the best-accuracy recipe (models.BEST_MODEL
# for this many epochs), 94.7% on Fashion-MNIST in ~46 minutes on a 2-core CPU.
BEST_EPOCHS = 40

# RESNETLAB_TINY=1: every run of the recipe at a tiny budget (the docs test runs each
# documented snippet as written under it; also handy for a quick look). Read here only.
TINY_ENV = "RESNETLAB_TINY"
TINY_EPOCHS = 1
TINY_TRAIN_IMAGES = 256  # training images (the validation ones are held out first)
TINY_VAL_IMAGES = 64
TINY_TEST_IMAGES = 256


def tiny_budget() -> bool:
    """Whether ``RESNETLAB_TINY`` asks for the tiny budget (any value but empty/0/no)."""
    return os.environ.get(TINY_ENV, "").strip().lower() not in ("", "0", "no", "false")


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
    # The quick recipe: models.QUICK_MODEL for QUICK_EPOCHS unless a model / epochs is given.
    quick: bool = False
    # The best-accuracy recipe: models.BEST_MODEL for BEST_EPOCHS, the same way.
    best: bool = False
    # Any other TrainConfig fields given as keywords (label_smoothing=0.05, ...).
    config_fields: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_limit("train_limit", self.train_limit)
        check_limit("test_limit", self.test_limit)
        if self.quick and self.best:
            raise ConfigError(
                "quick and best (--quick, --best) are two different recipes: ask for one"
            )
        # A tuple: the list a caller passed may change later; a generator is read once.
        self.callbacks = tuple(self.callbacks or ())
        if tiny_budget():
            self.shrink_to_tiny()

    def shrink_to_tiny(self) -> None:
        """Cap epochs and images to the tiny budget (what ``RESNETLAB_TINY=1`` does).

        Explicit values, so that a resume under the same budget asks for the settings
        the checkpoint holds."""
        self.epochs = min(self.epochs or TINY_EPOCHS, TINY_EPOCHS)
        base = self.config if self.config is not None else TrainConfig()
        asked = self.config_fields.get("val_size", base.val_size)
        # 0 (no validation) and smaller counts stay; a count or a fraction above is capped.
        small = not asked or (isinstance(asked, int) and asked < TINY_VAL_IMAGES)
        self.config_fields["val_size"] = asked if small else TINY_VAL_IMAGES
        self.train_limit = min(self.train_limit or TINY_TRAIN_IMAGES, TINY_TRAIN_IMAGES)
        self.test_limit = min(self.test_limit or TINY_TEST_IMAGES, TINY_TEST_IMAGES)

    @classmethod
    def from_keywords(cls, *args: Any, **keywords: Any) -> RecipeArgs:
        """``resnetlab.train``'s positional and keyword arguments (minus ``live`` and
        ``background``) as RecipeArgs: names that are not fields are TrainConfig fields."""
        names = {f.name for f in dataclasses.fields(cls)} - {"config_fields"}
        given = {k: v for k, v in keywords.items() if k in names}
        rest = {k: v for k, v in keywords.items() if k not in names}
        return cls(*args, **given, config_fields=rest)

    @property
    def recipe(self) -> RecipeName:
        """Which named recipe the run asked for."""
        return "quick" if self.quick else "best" if self.best else "default"

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
