"""The default recipe (issue 18): the 48-map network, test-time flips, ``--quick``.

Each user-facing path that evaluates a trained run — the trainer's validation and test
pass, ``resnetlab eval`` and ``TrainedModel.predict`` — averages an image with its mirror
when the run trained with flips, and the quick recipe is the older, cheaper network.
"""

from __future__ import annotations

import re

import pytest
import torch

import resnetlab
from resnetlab.cli import main
from resnetlab.models import DEFAULT_MODEL, QUICK_MODEL, count_parameters, create_model
from resnetlab.store import RunStore
from resnetlab.training.config import TrainConfig
from resnetlab.training.evaluate import evaluate
from resnetlab.training.tta import FlipAverage

SMALL = dict(
    epochs=2,
    batch_size=64,
    train_limit=1024,
    val_size=128,
    test_limit=256,
    live=None,
    progress=False,
    verbose=False,
    precision="fp32",  # the comparisons below are exact up to float rounding
)


def test_the_default_network_is_wider_than_the_quick_one():
    default = create_model(DEFAULT_MODEL, in_channels=1, image_size=28)
    quick = create_model(QUICK_MODEL, in_channels=1, image_size=28)
    assert count_parameters(default) > 2 * count_parameters(quick)
    assert TrainConfig().epochs == 25 and TrainConfig().tta_flip is None  # the trainer decides


def test_configs_saved_before_test_time_flips_evaluate_without_them():
    old = TrainConfig().to_dict()
    del old["tta_flip"]
    assert not TrainConfig.from_dict(old).eval_flips
    assert not TrainConfig(flip=False).eval_flips  # never mirror what never trained mirrored


@pytest.mark.parametrize(
    ("loader_flips", "tta_flip", "expected"),
    [(True, None, True), (False, None, False), ("list", None, False), (False, True, True)],
)
def test_test_time_flips_follow_what_the_network_trained_on(
    micro_model, make_loader, tmp_path, loader_flips, tta_flip, expected
):
    """Default: flips at evaluation exactly when the training batches were mirrored (a
    network that never saw a mirror scores ~3 points worse with them); ``tta_flip=True``
    says your own loader mirrors. The run store records what was used."""
    from resnetlab.training import Trainer

    train = make_loader(64, augment=loader_flips is True)
    if loader_flips == "list":
        train = list(train)
    val = make_loader(64, train=False, augment=False)
    model = micro_model()
    store = RunStore(tmp_path / "runs.db")
    config = TrainConfig(
        epochs=1, val_size=0, channels_last=False, precision="fp32", tta_flip=tta_flip
    )
    trainer = Trainer(model, train, val, config=config, store=store)
    assert trainer.config.eval_flips is expected
    assert store.get_run(trainer.run_id).config["tta_flip"] is expected
    plain, flipped = evaluate(model, val), evaluate(FlipAverage(model), val)
    assert plain.loss != pytest.approx(flipped.loss)  # the two are told apart
    got = trainer.validate()
    assert got.loss == pytest.approx((flipped if expected else plain).loss)


def _loss(out: str) -> float:
    return float(re.search(r"loss (\d+\.\d+)", out).group(1))


def test_validation_test_eval_and_predict_all_average_the_mirror(
    fashion_mnist_dir, tmp_path, capsys
):
    db = tmp_path / "runs.db"
    result = resnetlab.train(
        "resnetv2-micro", data_dir=fashion_mnist_dir, store=db, run_name="flips", **SMALL
    )
    assert result.config.eval_flips
    model = result.model.eval()
    from resnetlab.data import TensorLoader, channel_stats, load, split_validation

    train = load("fashion-mnist", "train", root=fashion_mnist_dir)
    train, _ = split_validation(train, 128, seed=0)
    mean, std = channel_stats(train.subset(torch.arange(1024)))
    test = load("fashion-mnist", "test", root=fashion_mnist_dir).subset(torch.arange(256))
    loader = TensorLoader(test.images, test.labels, 128, shuffle=False, mean=mean, std=std)
    with torch.no_grad():
        flipped, plain = evaluate(FlipAverage(model), loader), evaluate(model, loader)
    assert flipped.accuracy > 0.3  # above chance (0.1): the predictions below mean something
    assert abs(flipped.loss - plain.loss) > 1e-3  # else this test could not tell them apart
    # The recorded test loss is the flip-averaged one...
    assert abs(result.test_metrics["test_loss"] - flipped.loss) < 1e-5
    with RunStore(db, read_only=True) as store:
        assert abs(store.get_run("flips").final_metrics["test_loss"] - flipped.loss) < 1e-5

    # ...as `resnetlab eval` reports it, and --no-tta gives the plain network's.
    common = ["--runs-db", str(db), "--data-dir", str(fashion_mnist_dir), "--limit", "256"]
    capsys.readouterr()
    assert main(["eval", "flips", *common]) == 0
    out = capsys.readouterr().out
    assert "test-time flips" in out and abs(_loss(out) - flipped.loss) < 1e-4
    assert main(["eval", "flips", "--no-tta", *common]) == 0
    out = capsys.readouterr().out
    assert "test-time flips" not in out and abs(_loss(out) - plain.loss) < 1e-4

    # predict() agrees with the evaluated network, image by image.
    trained = resnetlab.load_model("flips", runs_db=db)
    assert trained.flips
    preds = [p.index for p in trained.predict(list(test.images[:64].numpy()))]
    with torch.no_grad():
        x = (test.images[:64].float() / 255.0 - trained.mean) / trained.std
        expected = FlipAverage(trained.net)(x).argmax(1).tolist()
    assert preds == expected


def test_quick_trains_the_quick_network_for_twenty_epochs(fashion_mnist_dir, tmp_path, capsys):
    db = tmp_path / "runs.db"
    # An explicit --epochs still wins; the network is the quick one.
    rc = main(
        [
            "train",
            "--quick",
            "--epochs",
            "1",
            "--train-limit",
            "256",
            "--val-size",
            "64",
            "--test-limit",
            "128",
            "--data-dir",
            str(fashion_mnist_dir),
            "--runs-db",
            str(db),
            "--live",
            "none",
            "--no-progress",
            "--run-name",
            "quick",
        ]
    )
    assert rc == 0
    with RunStore(db, read_only=True) as store:
        run = store.get_run("quick")
    assert run.config["extra"]["model"] == QUICK_MODEL and run.config["epochs"] == 1

    from resnetlab.distributed.context import DistContext
    from resnetlab.training.args import QUICK_EPOCHS, RecipeArgs
    from resnetlab.training.recipe import fresh_plan

    plan = fresh_plan(RecipeArgs(quick=True), DistContext())
    assert plan.config.epochs == QUICK_EPOCHS == 20
    assert fresh_plan(RecipeArgs(), DistContext()).config.epochs == 25


def _tiny_cli_run(flag: str, data_dir, db, name: str) -> int:
    return main(
        ["train", flag, "--epochs", "1", "--train-limit", "256", "--val-size", "64"]
        + ["--test-limit", "128", "--data-dir", str(data_dir), "--runs-db", str(db)]
        + ["--live", "none", "--no-progress", "--run-name", name]
    )


def test_best_trains_the_widest_network_for_forty_epochs(fashion_mnist_dir, tmp_path):
    from resnetlab.distributed.context import DistContext
    from resnetlab.models import BEST_MODEL
    from resnetlab.training.args import BEST_EPOCHS, RecipeArgs
    from resnetlab.training.recipe import fresh_plan

    db = tmp_path / "runs.db"
    assert _tiny_cli_run("--best", fashion_mnist_dir, db, "best") == 0
    with RunStore(db, read_only=True) as store:
        run = store.get_run("best")
    assert run.config["extra"]["model"] == BEST_MODEL and run.config["epochs"] == 1
    best = create_model(BEST_MODEL, in_channels=1, image_size=28)
    default = create_model(DEFAULT_MODEL, in_channels=1, image_size=28)
    assert count_parameters(best) > 3 * count_parameters(default)
    assert fresh_plan(RecipeArgs(best=True), DistContext()).config.epochs == BEST_EPOCHS == 40


def test_quick_and_best_together_are_refused_before_anything_runs(tmp_path, capsys):
    from resnetlab.errors import ConfigError

    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--quick", "--best", "--runs-db", str(tmp_path / "runs.db")])
    assert exit_info.value.code == 2
    assert "not allowed with argument --quick" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="ask for one"):
        resnetlab.train(quick=True, best=True, store=tmp_path / "runs.db", live=None)
    assert list(tmp_path.iterdir()) == []  # no database, no run folder
