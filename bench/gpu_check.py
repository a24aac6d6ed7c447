"""Every GPU check of the training recipe in one device run (issue 18), with its figures.

Prepared on the CPU machine for a session that is lent a GPU (the device tool gives
minutes, so everything runs in one call of under ten):

    mkdir -p .data && cp -r /usr/share/datasets/fashion-mnist .data/   # the data travels
    # device tool: run(command="python3 bench/gpu_check.py", carry=[".data"], timeout_s=590)

1. **The CUDA path, asserted** on a real batch inside the trainer: the training data
   resident on the GPU, bf16 autocast, channels_last weights and inputs, the compiled
   forward, a finite loss; and the step time of each candidate network, eager.
2. **Time to 94/95/96%** of the GPU candidates with ``torch.compile``
   (``bench_train_time_to_accuracy.py --device cuda --compile``), each given as many
   epochs as its measured step time fits into its share of the budget.

Logs go to ``$OUT`` (what the device tool brings back), else ``./gpu-check/``; the summary
is ``summary.txt``. ``--device cpu --smoke`` runs the same steps on a few hundred images
here, to check the script itself before spending device time on it.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import resnetlab  # noqa: E402
from resnetlab.models.presets import create_model  # noqa: E402
from resnetlab.training.cli import parse_model_option  # noqa: E402

BENCH = ROOT / "bench" / "bench_train_time_to_accuracy.py"
STEPS_PER_EPOCH = 215  # 55,000 training images (60,000 minus validation) / batch 256
# name -> (model overrides of resnetv2-mini-w48 as -O pairs, most epochs worth running)
CANDIDATES: dict[str, tuple[list[str], int]] = {
    # The CPU --best network, 14-7-4 after the stride-2 stem.
    "w96": (["stem_channels=96", "stack_channels=(96,192,384)"], 60),
    # Full resolution (28-14-7), two units per stack: ~8x the FLOPs of w96.
    "w96-res28-d2": (
        [
            "stem_channels=96",
            "stack_channels=(96,192,384)",
            "stem_stride=1",
            "stack_strides=(1,2,2)",
            "stack_units=(2,2,2)",
        ],
        80,
    ),
}


class CudaPathProbe:
    """A callback that checks, on the first real batch, what the CUDA path promises."""

    def __init__(self) -> None:
        self.checks: list[tuple[str, bool, str]] = []

    def on_batch_end(self, trainer, logs) -> None:
        if self.checks:
            return
        loader = trainer.train_loader
        weight = next(p for p in trainer.model.parameters() if p.dim() == 4)
        with torch.no_grad(), trainer.autocast():
            batch, labels = next(iter(loader))
            out = trainer.forward_model(batch)
            loss = F.cross_entropy(out.float(), labels)
        self.checks = [
            (
                "training data on the GPU",
                loader.images.device.type == "cuda",
                str(loader.images.device),
            ),
            ("batch on the GPU", batch.device.type == "cuda", str(batch.device)),
            ("precision bf16", trainer.precision == "bf16", str(trainer.precision)),
            ("autocast output bf16", out.dtype == torch.bfloat16, str(out.dtype)),
            (
                "conv weights channels_last",
                weight.is_contiguous(memory_format=torch.channels_last),
                str(tuple(weight.stride())),
            ),
            (
                "inputs channels_last",
                batch.dim() == 4 and batch.is_contiguous(memory_format=torch.channels_last),
                str(tuple(batch.stride())),
            ),
            (
                "forward compiled",
                type(trainer.forward_model).__name__ == "OptimizedModule",
                type(trainer.forward_model).__name__,
            ),
            ("finite loss", bool(torch.isfinite(loss)), f"{loss.item():.3f}"),
        ]


def step_time(pairs: list[str], device: str, steps: int) -> float:
    """Seconds per training step (batch 256, bf16 autocast, channels_last), eager."""
    model = create_model(
        "resnetv2-mini-w48",
        in_channels=1,
        image_size=28,
        **dict(parse_model_option(o) for o in pairs),
    )
    model = model.to(device, memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    x = torch.randn(256, 1, 28, 28, device=device).to(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (256,), device=device)

    def step() -> None:
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16):
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return (time.perf_counter() - t) / steps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--budget", type=float, default=360.0, help="seconds for part 2")
    parser.add_argument("--smoke", action="store_true", help="a few hundred images (CPU check)")
    args = parser.parse_args()
    out = Path(os.environ.get("OUT") or ROOT / "gpu-check")
    out.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []

    def say(text: str) -> None:
        print(text, flush=True)
        lines.append(text)
        (out / "summary.txt").write_text("\n".join(lines) + "\n")

    t_start = time.perf_counter()
    say(f"python {platform.python_version()}, torch {torch.__version__}")
    if torch.cuda.is_available():
        say(f"GPU {torch.cuda.get_device_name()}, bf16 {torch.cuda.is_bf16_supported()}")
    data_dir = str(ROOT / ".data") if (ROOT / ".data").is_dir() else None

    # 1. The CUDA path, asserted inside a real (short) training run.
    probe = CudaPathProbe()
    t = time.perf_counter()
    try:
        resnetlab.train(
            epochs=1,
            device=args.device,
            compile=True,
            data_dir=data_dir,
            callbacks=[probe],
            train_limit=2048 if args.smoke else 8192,
            test_limit=1024,
            store=None,
            live=None,
            progress=False,
            verbose=False,
        )
    except Exception as exc:  # say what broke, then measure what still runs
        probe.checks.append(("a compiled training run", False, f"{type(exc).__name__}: {exc}"))
    say(f"compiled 1-epoch check run: {time.perf_counter() - t:.0f} s")
    for name, ok, seen in probe.checks:
        say(f"{'PASS' if ok else 'FAIL'}  {name}  ({seen})")
    step_s = {}
    for name, (pairs, _) in CANDIDATES.items():
        step_s[name] = step_time(pairs, args.device, 3 if args.smoke else 20)
        say(f"step time {name}: {step_s[name] * 1000:.1f} ms (eager, batch 256)")

    # 2. Time to accuracy, each candidate within its share of what is left.
    share = args.budget / len(CANDIDATES)
    for name, (pairs, most) in CANDIDATES.items():
        # Compiled steps run faster than the eager probe; the compile (~1.5 min) and each
        # epoch's validation and test passes (~30% of an epoch) cost more: budget for those.
        epoch_s = step_s[name] * STEPS_PER_EPOCH * 1.3
        epochs = max(1, min(most, int((share - 90) / epoch_s)))
        cmd = [sys.executable, str(BENCH), "--device", args.device, "--compile"]
        if args.smoke:
            epochs, cmd = 1, [*cmd, "--train-limit", "512", "--test-limit", "512"]
        cmd += ["--epochs", str(epochs)] + [a for p in pairs for a in ("-O", p)]
        if data_dir:
            cmd += ["--data-dir", data_dir]
        say(f"\n{name}: {epochs} epochs: {' '.join(cmd[1:])}")
        log = out / f"time-to-accuracy-{name}.txt"
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
        try:
            with log.open("w") as fh:
                rc = subprocess.run(
                    cmd,
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                    env=env,
                    timeout=share + 60,
                    check=False,
                ).returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
        tail = log.read_text().splitlines()[-6:]
        say(f"exit {rc}; " + " | ".join(tail))
    say(f"\nwhole check: {time.perf_counter() - t_start:.0f} s")
    return 0 if all(ok for _, ok, _ in probe.checks) else 1


if __name__ == "__main__":
    sys.exit(main())
