"""Ablation of the Fashion-MNIST recipe: which levers pay for their time (issue 18).

    OMP_NUM_THREADS=2 nice -n 10 .venv/bin/python bench/ablate_recipe.py --list
    OMP_NUM_THREADS=2 nice -n 10 .venv/bin/python bench/ablate_recipe.py w48-e25 | tee bench/results/w48-e25.txt
    .venv/bin/python bench/ablate_recipe.py --table                 # all arms measured so far

Each arm is one ``resnetlab.train()`` run (no store, no dashboard, no test pass inside)
on the full training set minus the 5,000-image validation split. Every run keeps an EMA
of the weights (it does not change training), so one run gives four evaluation variants:
the live weights or their EMA, each with or without test-time flip averaging. Selection
is honest: the variant is chosen by *validation* accuracy; the test set is evaluated
once per variant at the end, and the table's "test (sel.)" is the test accuracy of the
variant the validation split picked. The row goes to ``bench/results/ablation.jsonl``
with the load average and the measured training throughput, so a run taken while other
processes load the cores can be rescaled (time on an idle machine ~ images / img/s).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import torch

import resnetlab
from resnetlab.data import Augment, TensorLoader, load, split_validation
from resnetlab.training.evaluate import evaluate
from resnetlab.training.tta import FlipAverage

RESULTS = Path(__file__).resolve().parent / "results" / "ablation.jsonl"
W48 = {"stem_channels": 48, "stack_channels": (48, 96, 192)}
W40 = {"stem_channels": 40, "stack_channels": (40, 80, 160)}
W64 = {"stem_channels": 64, "stack_channels": (64, 128, 256)}
# The stem at full resolution, the first stack strided instead (its 3x3 conv, so every
# pixel is seen): the stacks cost what they cost with the stride-2 stem.
STEM1 = {"stem_stride": 1, "stack_strides": (2, 2, 2), "stride_layer": "3x3"}

# name -> (TrainConfig fields, model overrides, cutout side)
ARMS: dict[str, tuple[dict[str, Any], dict[str, Any], int]] = {
    "smoke": ({"epochs": 1, "train_limit": 8192}, {}, 4),  # checks the script, ~10 s
    "base-e20": ({"epochs": 20}, {}, 0),
    "base-e30": ({"epochs": 30}, {}, 0),
    "ls0-e20": ({"epochs": 20, "label_smoothing": 0.0}, {}, 0),
    "cutout8-e20": ({"epochs": 20}, {}, 8),
    "bs512-e20": ({"epochs": 20, "batch_size": 512, "lr": 0.4}, {}, 0),
    "stem1-e20": ({"epochs": 20}, STEM1, 0),
    "res28-e10": ({"epochs": 10}, {"stem_stride": 1}, 0),
    "w40-e25": ({"epochs": 25}, W40, 0),
    "w48-e20": ({"epochs": 20}, W48, 0),
    "w48-e22": ({"epochs": 22}, W48, 0),
    "w48-e25": ({"epochs": 25}, W48, 0),
    "w48-bs512-e22": ({"epochs": 22, "batch_size": 512, "lr": 0.4}, W48, 0),
    "w48-e30": ({"epochs": 30}, W48, 0),
    "w48-stem1-e25": ({"epochs": 25}, {**W48, **STEM1}, 0),
    "w64-e20": ({"epochs": 20}, W64, 0),
    "deep2-e20": ({"epochs": 20}, {"stack_units": (2, 2, 2)}, 0),
}
EMA_DECAY = 0.999


class Grab:
    """Keeps the trainer; sets the cutout side on its training loader (no config field)."""

    def __init__(self, cutout: int) -> None:
        self.cutout = cutout
        self.trainer: Any = None

    def on_fit_start(self, trainer: Any, logs: dict[str, Any]) -> None:
        self.trainer = trainer
        if self.cutout:
            aug = trainer.train_loader.augment or Augment()
            trainer.train_loader.augment = Augment(
                crop_padding=aug.crop_padding, flip=aug.flip, cutout=self.cutout
            )

    def on_epoch_end(self, trainer: Any, logs: dict[str, Any]) -> None:
        print(
            f"epoch {trainer.epoch:2d}  {logs['epoch_time']:5.1f} s  loss {logs['loss']:.4f}  "
            f"train_acc {logs['accuracy']:.4f}  val_acc(ema) {logs.get('val_accuracy', 0):.4f}  "
            f"load {os.getloadavg()[0]:.2f}",
            flush=True,
        )


def _loaders(cfg: Any, data_dir: str | None) -> tuple[TensorLoader, TensorLoader]:
    """The validation split and the test set, normalised exactly as the run was."""
    train = load("fashion-mnist", "train", root=data_dir)
    _, val = split_validation(train, cfg.val_size, seed=cfg.seed)
    test = load("fashion-mnist", "test", root=data_dir)
    mean, std = cfg.extra["mean"], cfg.extra["std"]

    def make(ds: Any) -> TensorLoader:
        return TensorLoader(
            ds.images,
            ds.labels,
            1024,
            shuffle=False,
            mean=mean,
            std=std,
            channels_last=cfg.channels_last,
        )

    return make(val), make(test)


def _variants(trainer: Any) -> dict[str, torch.nn.Module]:
    live, ema = trainer.model, trainer.ema.module
    return {"live": live, "live+flip": FlipAverage(live), "ema": ema, "ema+flip": FlipAverage(ema)}


def run_arm(name: str, data_dir: str | None) -> dict[str, Any]:
    fields, overrides, cut = ARMS[name]
    grab = Grab(cut)
    load_start = os.getloadavg()
    t0 = time.perf_counter()
    result = resnetlab.train(
        data_dir=data_dir,
        model_overrides=overrides,
        live=None,
        store=None,
        evaluate_test=False,
        callbacks=[grab],
        progress=False,
        verbose=False,
        ema_decay=EMA_DECAY,
        **fields,
    )
    wall = time.perf_counter() - t0
    trainer, cfg = grab.trainer, result.config
    val_loader, test_loader = _loaders(cfg, data_dir)
    row: dict[str, Any] = {
        "arm": name,
        "epochs": cfg.epochs,
        "batch_size": cfg.batch_size,
        "lr": cfg.lr,
        "label_smoothing": cfg.label_smoothing,
        "cutout": cut,
        "model_overrides": {
            k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()
        },
        "params": sum(p.numel() for p in trainer.model.parameters()),
        "train_wall_s": round(wall, 1),
        "fit_s": round(trainer.fit_seconds, 1),
        "epoch_s": [round(h["epoch_time"], 2) for h in result.history],
        "img_per_s": round(_median(result.stream.series("images_per_s")[1]), 0),
        "load_start": round(load_start[0], 2),
        "load_end": round(os.getloadavg()[0], 2),
        "threads": torch.get_num_threads(),
        "val": {},
        "test": {},
    }
    t_eval = time.perf_counter()
    for variant, model in _variants(trainer).items():
        kw = dict(autocast=trainer.autocast, channels_last=cfg.channels_last)
        row["val"][variant] = evaluate(model, val_loader, **kw).accuracy
        row["test"][variant] = evaluate(model, test_loader, **kw).accuracy
    row["eval_s"] = round(time.perf_counter() - t_eval, 1)
    picked = max(row["val"], key=row["val"].get)
    row["selected"] = picked
    row["test_selected"] = row["test"][picked]
    return row


def _median(values: Any) -> float:
    values = sorted(float(v) for v in values)
    return values[len(values) // 2] if values else float("nan")


def format_table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| arm | params | epochs | train wall | img/s | load | val live / ema / ema+flip "
        "| test live | test ema | test live+flip | test ema+flip | selected (val) | test (sel.) |"
    )
    lines = [head, "| --- |" + " ---: |" * 12]
    for r in rows:
        v, t = r["val"], r["test"]
        lines.append(
            f"| {r['arm']} | {r['params'] / 1e3:.0f}k | {r['epochs']} | {r['train_wall_s']:.0f} s "
            f"| {r['img_per_s']:.0f} | {r['load_start']:.1f}-{r['load_end']:.1f} "
            f"| {v['live']:.4f} / {v['ema']:.4f} / {v['ema+flip']:.4f} "
            f"| {t['live']:.4f} | {t['ema']:.4f} | {t['live+flip']:.4f} | {t['ema+flip']:.4f} "
            f"| {r['selected']} | **{r['test_selected']:.4f}** |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("arms", nargs="*", help="arm names (see --list)")
    parser.add_argument("--list", action="store_true", help="list the arms")
    parser.add_argument("--table", action="store_true", help="print the table of measured arms")
    parser.add_argument("--data-dir")
    parser.add_argument("--results", type=Path, default=RESULTS, help="the JSON-lines file")
    args = parser.parse_args()
    if args.list:
        for name, (fields, overrides, cut) in ARMS.items():
            print(f"{name:16s} {fields} {overrides} cutout={cut}")
        return
    if args.table:
        rows = [json.loads(line) for line in args.results.read_text().splitlines() if line.strip()]
        print(format_table(rows))
        return
    for name in args.arms:
        if name not in ARMS:
            parser.error(f"unknown arm {name!r}; --list shows them")
    for name in args.arms:
        print(f"== arm {name}: {ARMS[name]}  (uptime: {os.getloadavg()})", flush=True)
        row = run_arm(name, args.data_dir)
        print(json.dumps(row), flush=True)
        print(format_table([row]), flush=True)
        args.results.parent.mkdir(exist_ok=True)
        with args.results.open("a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
