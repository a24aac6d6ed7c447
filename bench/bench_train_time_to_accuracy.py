"""Time to 93% / 94% / 95% / 96% test accuracy of ``resnetlab train`` on Fashion-MNIST.

    .venv/bin/python bench/bench_train_time_to_accuracy.py            # the default recipe
    .venv/bin/python bench/bench_train_time_to_accuracy.py --quick    # resnetlab train --quick
    .venv/bin/python bench/bench_train_time_to_accuracy.py --best     # resnetlab train --best
    .venv/bin/python bench/bench_train_time_to_accuracy.py --epochs 40 -O stem_channels=64 \
        -O "stack_channels=(64,128,256)"
    python3 bench/bench_train_time_to_accuracy.py --best --device cuda --compile  # a GPU

Runs ``resnetlab.train()`` with the default recipe (the same as ``resnetlab train``) and,
after every epoch, measures the test accuracy as the final test pass does (the
evaluation weights, with the run's test-time flips). The clock excludes those extra test
passes (the real command does not make them), so "time to X%" is the wall time the
default command needs until its weights first score X% on the test set. These per-epoch
test figures are for this benchmark only: every choice of the recipe was made on the
validation split. Also prints the measured training throughput and the load average, so
a result taken on a loaded machine can be rescaled.
"""

from __future__ import annotations

import argparse
import os
import time

import resnetlab
from resnetlab.data import Augment, TensorLoader, channel_stats, load, split_validation
from resnetlab.training.cli import parse_model_option
from resnetlab.training.config import TrainConfig
from resnetlab.training.recipe import RECIPE_EPOCHS, RECIPE_MODELS, default_config

TARGETS = (0.93, 0.94, 0.95, 0.96)


class TestEveryEpoch:
    """Evaluates the test set at each epoch end; its own time is kept off the clock."""

    def __init__(
        self,
        data: str,
        data_dir: str | None,
        cfg: TrainConfig,
        test_limit: int | None = None,
        cutout: int = 0,
    ) -> None:
        self.cutout = cutout
        train = load(data, "train", root=data_dir)
        if cfg.val_size:
            train, _ = split_validation(train, cfg.val_size, seed=cfg.seed)
        mean, std = channel_stats(train)
        test = load(data, "test", root=data_dir)
        self.loader = TensorLoader(
            test.images[:test_limit],
            test.labels[:test_limit],
            1024,
            shuffle=False,
            mean=mean,
            std=std,
            channels_last=cfg.channels_last,
            device=cfg.device,  # resident on the GPU like the training data, when there
        )
        self.rows: list[tuple[int, float, float]] = []
        self.excluded = 0.0

    def on_fit_start(self, trainer, logs):
        self.t0 = time.perf_counter()
        if self.cutout:  # no config field: set on the training loader, as ablate_recipe.py
            aug = trainer.train_loader.augment or Augment()
            trainer.train_loader.augment = Augment(
                crop_padding=aug.crop_padding, flip=aug.flip, cutout=self.cutout
            )

    def on_epoch_end(self, trainer, logs):
        t = time.perf_counter()
        clock = t - self.t0 - self.excluded  # training time so far, without these passes
        # The evaluation weights (the EMA when kept) with the run's flips: the final test.
        acc = trainer.validate(self.loader).accuracy
        self.excluded += time.perf_counter() - t
        self.rows.append((trainer.epoch, clock, acc))
        print(
            f"epoch {trainer.epoch:2d}  {clock:7.1f} s  test_accuracy {acc:.4f}  "
            f"val_accuracy {logs.get('val_accuracy', float('nan')):.4f}  "
            f"train_accuracy {logs.get('accuracy', float('nan')):.4f}  "
            f"epoch {logs['epoch_time']:.1f} s",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--ema", type=float, dest="ema_decay", help="EMA decay, e.g. 0.999")
    parser.add_argument("--no-tta", action="store_true", help="no test-time flips")
    parser.add_argument(
        "--quick", action="store_true", help="the recipe of resnetlab train --quick"
    )
    parser.add_argument("--best", action="store_true", help="the recipe of resnetlab train --best")
    parser.add_argument("--model", default=None, help="preset (default: the default model)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "-O",
        dest="overrides",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="model config override, as resnetlab train -O",
    )
    parser.add_argument(
        "--cutout", type=int, default=0, metavar="SIDE", help="erase a SIDE x SIDE square"
    )
    parser.add_argument("--device", help="auto (default), cpu, cuda, cuda:N")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--train-limit", type=int, help="train on N images (checks)")
    parser.add_argument("--test-limit", type=int, help="test on the first N images (checks)")
    parser.add_argument("--data-dir")
    parser.add_argument("--runs-db", default=None, help="run store (default: a temp file)")
    args = parser.parse_args()
    named = "quick" if args.quick else "best" if args.best else "default"
    epochs = args.epochs or RECIPE_EPOCHS[named]
    model = args.model or RECIPE_MODELS[named]
    cfg = default_config(
        epochs=epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        ema_decay=args.ema_decay,
        seed=args.seed,
        tta_flip=False if args.no_tta else None,
        device=args.device,
        compile=args.compile or None,
    )
    cb = TestEveryEpoch("fashion-mnist", args.data_dir, cfg, args.test_limit, args.cutout)
    t0 = time.perf_counter()
    load_avg = os.getloadavg()
    result = resnetlab.train(
        model,
        config=cfg,
        data_dir=args.data_dir,
        callbacks=[cb],
        model_overrides=dict(parse_model_option(o) for o in args.overrides),
        device=cfg.device,
        compile=cfg.compile,
        train_limit=args.train_limit,
        test_limit=args.test_limit,
        store=args.runs_db or "/tmp/resnetlab-bench-runs.db",
        live=None,
        progress=False,  # the per-epoch lines above are the output
        verbose=False,
    )
    wall = time.perf_counter() - t0
    print(
        f"\nmachine: {os.cpu_count()} CPUs, load average at start {load_avg[0]:.1f}, "
        f"at end {os.getloadavg()[0]:.1f}"
    )
    print(
        f"final test accuracy {result.test_accuracy:.4f}; wall time of the run "
        f"{wall:.0f} s (incl. the extra per-epoch test passes {cb.excluded:.0f} s)"
    )
    for target in TARGETS:
        hit = next((r for r in cb.rows if r[2] >= target), None)
        print(
            f"time to {target:.0%}: "
            + (f"{hit[1]:.0f} s (epoch {hit[0]})" if hit else "not reached")
        )
    steps = [r for r in result.stream.series("images_per_s")[1]]
    if steps:
        steps.sort()
        print(
            f"training throughput (median of logging windows): {steps[len(steps) // 2]:.0f} img/s"
        )


if __name__ == "__main__":
    main()
