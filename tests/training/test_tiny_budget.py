"""RESNETLAB_TINY=1: the docs test's budget, read by the recipe's arguments and the
experiments' budget alone."""

from __future__ import annotations

import pytest

from resnetlab.errors import ConfigError
from resnetlab.inspect.experiments.budget import TINY_SUBSET, Budget, tiny_subset
from resnetlab.training import recipe
from resnetlab.training.args import (
    TINY_EPOCHS,
    TINY_TEST_IMAGES,
    TINY_TRAIN_IMAGES,
    TINY_VAL_IMAGES,
    RecipeArgs,
)


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESNETLAB_TINY", "1")


def test_without_the_variable_nothing_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RESNETLAB_TINY", raising=False)
    args = RecipeArgs.from_keywords("simple-cnn", epochs=20)
    assert (args.epochs, args.train_limit, args.test_limit) == (20, None, None)
    assert "val_size" not in args.config_fields
    assert Budget.parse("10min") == Budget(seconds=600.0)
    assert tiny_subset(4000) == 4000


@pytest.mark.usefixtures("tiny")
def test_recipe_args_are_capped_explicitly() -> None:
    args = RecipeArgs.from_keywords("simple-cnn", epochs=20, train_limit=12000)
    assert args.epochs == TINY_EPOCHS
    assert args.config_fields["val_size"] == TINY_VAL_IMAGES
    assert args.train_limit == TINY_TRAIN_IMAGES
    assert args.test_limit == TINY_TEST_IMAGES
    # Explicit values: a resume under the same budget asks for what the checkpoint holds.
    assert RecipeArgs().epochs == TINY_EPOCHS
    # Smaller asks are kept, and "no validation" stays none.
    small = RecipeArgs.from_keywords(train_limit=100, test_limit=50, val_size=0)
    assert (small.train_limit, small.test_limit, small.config_fields["val_size"]) == (100, 50, 0)
    assert RecipeArgs.from_keywords(val_size=10).config_fields["val_size"] == 10
    assert RecipeArgs.from_keywords(val_size=0.2).config_fields["val_size"] == TINY_VAL_IMAGES


@pytest.mark.usefixtures("tiny")
def test_experiment_budgets_become_one_epoch_once_valid() -> None:
    assert Budget.parse("10min") == Budget(epochs=1)
    assert Budget.parse("5ep") == Budget(epochs=1)
    with pytest.raises(ConfigError, match="not a budget"):
        Budget.parse("soon")
    assert tiny_subset(4000) == TINY_SUBSET and tiny_subset(100) == 100


@pytest.mark.slow
@pytest.mark.usefixtures("tiny")
def test_a_tiny_recipe_run_trains_one_epoch_on_a_few_hundred_images(fashion_mnist_dir) -> None:
    result = recipe.run(RecipeArgs("simple-cnn", store=None, data_dir=str(fashion_mnist_dir)))
    assert len(result.history) == 1
    assert result.config.epochs == 1 and result.config.val_size == TINY_VAL_IMAGES
    assert result.config.extra["train_limit"] == TINY_TRAIN_IMAGES
