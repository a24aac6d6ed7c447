"""``resnetlab inspect ...`` writes valid PNGs; ``resnetlab experiment`` writes a report."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from PIL import Image

from resnetlab.cli import main
from resnetlab.errors import ConfigError
from resnetlab.inspect.experiments.budget import Budget


def _png(path: Path) -> tuple[int, int]:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.width > 200 and im.height > 150
        return im.size


def test_features_from_a_real_checkpoint(trained_run, fashion_mnist_dir, tmp_path, capsys):
    trainer, _, _ = trained_run
    out = tmp_path / "features.png"
    rc = main(
        [
            "inspect",
            "features",
            str(trainer.last_checkpoint),
            "--layer",
            "stacks.1.units.0.layers.1.conv",
            "--data-dir",
            str(fashion_mnist_dir),
            "--index",
            "3",
            "-o",
            str(out),
        ]
    )
    assert rc == 0
    assert "16 feature maps of stacks.1.units.0.layers.1.conv" in capsys.readouterr().out
    _png(out)


def test_filters_graph_and_gradients_write_pngs(fashion_mnist_dir, tmp_path, capsys):
    filters, graph, text, grads = (tmp_path / n for n in ("f.png", "g.png", "g.txt", "gr.png"))
    assert (
        main(
            [
                "inspect",
                "filters",
                "resnetv2-micro",
                "--layer",
                "stacks.1.units.0.layers.1.conv",
                "--maps",
                "6",
                "--steps",
                "8",
                "-o",
                str(filters),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "inspect",
                "graph",
                "resnetv2-20",
                "--set",
                "stack_shortcut=true",
                "-o",
                str(graph),
                "--text",
                str(text),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "inspect",
                "gradients",
                "plain-20",
                "--batch",
                "16",
                "--data-dir",
                str(fashion_mnist_dir),
                "-o",
                str(grads),
            ]
        )
        == 0
    )
    for p in (filters, graph, grads):
        _png(p)
    assert "[stack shortcut: projection 1x1/2]" in text.read_text()
    out = capsys.readouterr().out
    assert "6 patterns of stacks.1.units.0.layers.1.conv" in out
    assert "first (stem.conv) / last (stacks.2.units.1.layers.2.conv)" in out


def test_bad_input_is_a_clear_error(tmp_path, capsys):
    rc = main(
        [
            "inspect",
            "features",
            "resnetv2-micro",
            "--layer",
            "stacks.5",
            "-o",
            str(tmp_path / "x.png"),
        ]
    )
    assert rc == 2 and not (tmp_path / "x.png").exists()
    assert "layer 'stacks.5' not found" in capsys.readouterr().err
    rc = main(["inspect", "graph", "no-such-model", "-o", str(tmp_path / "g.png")])
    assert rc == 2 and "neither a checkpoint" in capsys.readouterr().err


def test_budget_parsing():
    assert Budget.parse("2") == Budget(epochs=2) == Budget.parse("2ep")
    assert Budget.parse("5min").seconds == 300 and Budget.parse("90s").seconds == 90
    assert Budget(seconds=60).epochs_for(seconds_per_epoch=7, runs=4) == 2
    with pytest.raises(ConfigError, match="not a budget"):
        Budget.parse("fast")


def test_experiment_smoke_run_writes_a_report(fashion_mnist_dir, tmp_path, capsys):
    store = tmp_path / "runs.db"
    rc = main(
        [
            "experiment",
            "degradation",
            "--budget",
            "1ep",
            "--subset",
            "128",
            "--test-subset",
            "64",
            "--depths",
            "11,20",
            "--width",
            "2",
            "--batch-size",
            "64",
            "--grad-every",
            "1",
            "--seeds",
            "1",
            "--parallel",
            "0",
            "--data-dir",
            str(fashion_mnist_dir),
            "--store",
            str(store),
            "-o",
            str(tmp_path / "reports"),
        ]
    )
    assert rc == 0
    report = tmp_path / "reports" / "degradation.md"
    assert f"report -> {report}" in capsys.readouterr().out
    text = report.read_text()
    # the exact command, the budget and the hardware at the top
    assert (
        "resnetlab experiment degradation --budget 1ep --subset 128"
        in text.split("- **Budget**")[0]
    )
    assert "**Budget**: 1 epoch per run; 128 training images" in text
    assert "**Hardware**: CPU" in text
    for name in (
        "plain-11",
        "resnetv1-11",
        "resnetv2-11",
        "plain-20",
        "resnetv1-20",
        "resnetv2-20",
    ):
        assert f"| {name} |" in text
    for png in ("curves.png", "grad-heatmaps.png", "grad-at-init.png"):
        assert f"(degradation/{png})" in text
        _png(tmp_path / "reports" / "degradation" / png)
    with sqlite3.connect(store) as db:
        names = [r[0] for r in db.execute("SELECT name FROM runs ORDER BY id")]
        keys = db.execute(
            "SELECT COUNT(DISTINCT key) FROM metrics WHERE key LIKE 'grad_norm/%'"
        ).fetchone()[0]
    assert names == [
        "degradation/plain-11/seed0",
        "degradation/resnetv1-11/seed0",
        "degradation/resnetv2-11/seed0",
        "degradation/plain-20/seed0",
        "degradation/resnetv1-20/seed0",
        "degradation/resnetv2-20/seed0",
    ]
    assert keys > 20


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["experiment", "stack-shortcut", "--seeds", "-1"], "--seeds"),
        (["experiment", "stack-shortcut", "--seeds", "0"], "--seeds"),
        (["experiment", "degradation", "--test-subset", "0"], "--test-subset"),
        (["experiment", "degradation", "--subset", "-3"], "--subset"),
        (["experiment", "bottleneck-ratio", "--width", "0"], "--width"),
        (["experiment", "bottleneck-ratio", "--batch-size", "0"], "--batch-size"),
        (["experiment", "degradation", "--grad-every", "0"], "--grad-every"),
        (["experiment", "degradation", "--depths", ","], "--depths"),
    ],
)
def test_experiment_bad_counts_name_the_option(argv, option, tmp_path, capsys):
    out = tmp_path / "reports"
    assert main([*argv, "--no-store", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and option in err
    assert not out.exists()  # nothing trained, no report written


def test_gradients_of_a_preset_repeat_with_the_seed(fashion_mnist_dir, tmp_path, capsys):
    """A preset starts from seeded weights: the same --seed, the same norms; another, others."""

    def ratio(seed: int) -> str:
        argv = ["inspect", "gradients", "resnetv2-micro", "--batch", "16", "--seed", str(seed)]
        argv += ["--data-dir", str(fashion_mnist_dir), "-o", str(tmp_path / f"{seed}.png")]
        assert main(argv) == 0
        return capsys.readouterr().out.split(" = ")[1].split(" ->")[0]

    assert ratio(1) == ratio(1) != ratio(2)


@pytest.mark.parametrize("batch", ["0", "-5"])
def test_gradients_bad_batch_names_the_option(batch, tmp_path, capsys):
    png = tmp_path / "g.png"
    assert main(["inspect", "gradients", "resnetv2-micro", "--batch", batch, "-o", str(png)]) == 2
    assert f"--batch {batch} must be at least 1" in capsys.readouterr().err
    assert not png.exists()


def test_gradients_ratio_ends_on_the_main_path(fashion_mnist_dir, tmp_path, capsys):
    # resnetv2-micro's last conv in model order is stack 1's projection shortcut; the
    # ratio's "last" is the last conv on the main path, and --set yes/no words work here too
    png = tmp_path / "g.png"
    assert (
        main(
            [
                "inspect",
                "gradients",
                "resnetv2-micro",
                "--batch",
                "8",
                "--data-dir",
                str(fashion_mnist_dir),
                "--set",
                "stack_shortcut=no",
                "-o",
                str(png),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "first (stem.conv) / last (stacks.1.units.0.layers.1.conv)" in out
    _png(png)
