"""The training recipe's pieces: typed arguments, the resume check, the config table,
the panel contract, and test metrics written once (stream -> store recorder)."""

from __future__ import annotations

import pickle

import pytest

import resnetlab
from resnetlab.errors import ConfigError
from resnetlab.states import RunStatus
from resnetlab.training.args import DEFAULT_DATA, RecipeArgs
from resnetlab.training.callbacks import Callback, FeedsPanels, panels_fed_by
from resnetlab.training.config import TrainConfig
from resnetlab.training.resume import check_resume


def test_resnetlab_train_is_the_api_function():
    from resnetlab import api

    assert resnetlab.train is api.train


def test_recipe_args_split_keywords_and_check_limits():
    args = RecipeArgs.from_keywords("simple-cnn", epochs=2, label_smoothing=0.05, run_dir="x")
    assert (args.model_or_preset, args.data, args.epochs) == ("simple-cnn", DEFAULT_DATA, 2)
    assert args.config_fields == {"label_smoothing": 0.05, "run_dir": "x"}
    assert args.asked_config() == {"epochs": 2, "label_smoothing": 0.05, "run_dir": "x"}
    assert pickle.loads(pickle.dumps(args)) == args  # a worker process gets it whole
    with pytest.raises(ConfigError, match=r"train_limit=0 \(--train-limit\)"):
        RecipeArgs(train_limit=0)
    with pytest.raises(ConfigError, match=r"test_limit=True \(--test-limit\)"):
        RecipeArgs(test_limit=True)


def test_recipe_args_timeout_comes_from_the_keywords_the_config_or_the_default():
    assert RecipeArgs().dist_timeout_s() == TrainConfig.dist_timeout_s
    assert RecipeArgs(config=TrainConfig(dist_timeout_s=7.0)).dist_timeout_s() == 7.0
    assert RecipeArgs(config_fields={"dist_timeout_s": 3}).dist_timeout_s() == 3.0


def saved_config(**extra) -> TrainConfig:
    cfg = TrainConfig(epochs=3, lr=0.4)
    cfg.extra = {"base_lr": 0.2, "model": "resnetv2-micro", "dataset": "mnist", **extra}
    return cfg


def test_resume_accepts_the_saved_settings_and_where_it_runs():
    saved = saved_config(train_limit=256)
    # lr is compared with the base LR (the saved one is scaled for its world size).
    check_resume(saved, RecipeArgs("resnetv2-micro", "mnist", epochs=3, lr=0.2, train_limit=256))
    check_resume(saved, RecipeArgs(device="cpu", compile=True, config_fields={"run_dir": "o"}))


def test_resume_names_every_setting_that_differs_from_the_checkpoint():
    asked = RecipeArgs(
        "simple-cnn",
        "cifar10",
        epochs=2,  # fewer: more would extend the run
        lr=0.5,
        train_limit=128,
        model_overrides={"width": 2},
        resume="3",
        config_fields={"label_smoothing": 0.0},
    )
    with pytest.raises(ConfigError) as err:
        check_resume(saved_config(), asked)
    text = str(err.value)
    assert text.startswith("resume 3: a resumed run continues with its checkpoint's settings")
    for part in (
        "epochs=2 (checkpoint: 3; a run can be extended, not shortened)",
        "lr=0.5 (checkpoint: 0.2)",
        "label_smoothing=0.0 (checkpoint: 0.1)",
        "model='simple-cnn' (checkpoint: 'resnetv2-micro')",
        "model_overrides={'width': 2} (checkpoint: None)",
        "data='cifar10' (checkpoint: 'mnist')",
        "train_limit=128 (checkpoint: None)",
    ):
        assert part in text
    assert text.index("epochs=2") < text.index("model=")  # config fields first, as before
    with pytest.raises(ConfigError, match="unknown TrainConfig fields"):
        check_resume(saved_config(), RecipeArgs(config_fields={"no_such_field": 1}))


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [
        ("epochs", 0, "must be at least 1"),
        ("optimizer", "rmsprop", "choose one of sgd, adamw"),
        ("lr", 0.0, "must be a positive number"),
        ("warmup", 1.0, "is a fraction of training in [0, 1)"),
        ("ema_decay", 1.0, "must be in (0, 1), e.g. 0.999, or None"),
        ("grad_clip", -1.0, "must be positive or None"),
        ("step_milestones", (0.5, 1.5), "are fractions of training in (0, 1)"),
        ("reference_batch", 0, "must be at least 1, or None (the per-rank batch)"),
        ("rank", 2, "must be in [0, world_size=1)"),
    ],
)
def test_config_validation_names_the_field_and_the_fix(field, value, why):
    with pytest.raises(ConfigError) as err:
        TrainConfig(**{field: value})
    assert str(err.value) == f"TrainConfig.{field}={value!r}: {why}"


def test_callbacks_name_the_dashboard_panels_they_feed():
    from resnetlab.inspect import GradientNormCallback

    class Custom(Callback):
        dashboard_panels = ("my_panel", "grad_norms")

    grads = GradientNormCallback(every=3)
    assert isinstance(grads, FeedsPanels) and not isinstance(Callback(), FeedsPanels)
    assert panels_fed_by([Callback(), grads, Custom()]) == ["grad_norms", "my_panel"]
    assert panels_fed_by([]) == []
    assert GradientNormCallback(5).every == 5  # the panel name is no dataclass field


def test_test_metrics_are_logged_once_and_kept_as_final_metrics(fashion_mnist_dir, tmp_path):
    from resnetlab.store import RunStore

    result = resnetlab.train(
        "resnetv2-micro",
        data_dir=fashion_mnist_dir,
        store=tmp_path / "r.db",
        epochs=1,
        batch_size=64,
        train_limit=256,
        val_size=0,
        test_limit=128,
    )
    assert result.status == RunStatus.COMPLETED and isinstance(result.status, RunStatus)
    steps, values = result.stream.series("test_accuracy")
    assert steps.tolist() == [4] and values[0] == result.test_accuracy
    with RunStore(tmp_path / "r.db") as store:
        run = store.get_run(result.run_id)
        rows = store.metrics(run.id, keys=["test_accuracy", "test_loss"])
        # One row per key: written once, by the store recorder.
        assert sorted((r.key, r.step, r.epoch) for r in rows) == [
            ("test_accuracy", 4, 0),
            ("test_loss", 4, 0),
        ]
        assert run.final_metrics["test_accuracy"] == pytest.approx(result.test_accuracy)
        assert run.final_metrics["wall_time"] > 0
        assert run.status is RunStatus.COMPLETED


def test_the_live_session_is_the_recipes_watcher_and_never_fails_the_run(caplog):
    from resnetlab import api

    assert api.start_live(stream=None, live="none", run_dir=None) is None
    session = api.LiveSession("none")
    session.close()  # nothing started: nothing to close

    class BrokenWindow:  # an output that fails to close (a display gone away)
        def close(self):
            raise RuntimeError("display gone")

    session.dashboard = BrokenWindow()
    session.close()
    assert "closing the live dashboard failed" in caplog.text
