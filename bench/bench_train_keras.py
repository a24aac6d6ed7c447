"""Training images/s: our Trainer vs a plain PyTorch loop vs Keras 3 on JAX, same network.

    .venv/bin/python bench/bench_train_keras.py                       # every core
    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_train_keras.py     # one thread per side

The first run creates ``bench/.venv-keras`` (``python3 -m venv`` + ``pip install
"keras>=3" "jax[cpu]"``); later runs reuse it (``--reinstall`` rebuilds it). The Keras side,
``bench/keras_resnet_v2.py``, runs in that environment as a subprocess and prints JSON;
it builds ``resnetv2-mini`` (stride-2 stem, as the preset) layer by layer
from the ResNet V2 description, reads Fashion-MNIST itself, and trains with the same batch
size, augmentation (crop pad 2 + flip, in the graph), optimizer and loss. The PyTorch
sides are the functions of ``bench_train_throughput.py``, imported, not copied.

Threads: ``OMP_NUM_THREADS=1`` limits torch here and is passed on to the Keras side as
``--threads 1`` (XLA's intra-op pool, which ignores OpenMP variables).

The sides alternate for ``--rounds`` rounds; the best round of each is kept and the
ratios are printed. Both models' trainable parameter counts are printed and must agree.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train_throughput import make_model, ours, peer  # noqa: E402

from resnetlab.data import channel_stats, load  # noqa: E402
from resnetlab.models import DEFAULT_MODEL  # noqa: E402
from resnetlab.training.config import TrainConfig  # noqa: E402
from resnetlab.training.recipe import use_all_cores  # noqa: E402

BENCH = Path(__file__).resolve().parent
VENV = BENCH / ".venv-keras"
KERAS_SCRIPT = BENCH / "keras_resnet_v2.py"


def venv_python(reinstall: bool = False) -> Path:
    """The Keras venv's python, creating the venv (keras>=3, jax[cpu]) when missing."""
    python = VENV / "bin" / "python"
    check = [str(python), "-c", "import keras, jax"]
    env = dict(os.environ, KERAS_BACKEND="jax")  # keras defaults to TensorFlow otherwise
    if (
        not reinstall
        and python.exists()
        and subprocess.run(check, capture_output=True, env=env).returncode == 0
    ):
        return python
    print(f"creating {VENV} (keras>=3, jax[cpu]) ...", flush=True)
    subprocess.run(["python3", "-m", "venv", "--clear", str(VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "keras>=3", "jax[cpu]"], check=True)
    subprocess.run(check, check=True, env=env)
    return python


def keras_side(
    python: Path, images: int, batch_size: int, threads: int, precision: str, data_dir: str | None
) -> dict:
    """Run the Keras script once; its JSON result."""
    cmd = [
        str(python),
        str(KERAS_SCRIPT),
        "--images",
        str(images),
        "--batch-size",
        str(batch_size),
        "--threads",
        str(threads),
        "--precision",
        precision,
    ]
    if data_dir:
        cmd += ["--data-dir", data_dir]
    env = dict(os.environ, KERAS_BACKEND="jax")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"Keras side failed ({' '.join(cmd)}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def timed(fn, *args) -> tuple[float, float]:
    """(images/s returned by fn, process CPU seconds per wall second during the call)."""
    t0, c0 = time.perf_counter(), time.process_time()
    rate = fn(*args)
    return rate, (time.process_time() - c0) / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8192, help="training images per epoch")
    parser.add_argument("--batch-size", type=int, default=TrainConfig().batch_size)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers (torch loop)")
    parser.add_argument(
        "--keras-bf16", action="store_true", help="also time Keras with the mixed_bfloat16 policy"
    )
    parser.add_argument("--reinstall", action="store_true", help="rebuild bench/.venv-keras")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()

    python = venv_python(args.reinstall)
    cores = use_all_cores()
    keras_threads = (
        int(os.environ["OMP_NUM_THREADS"]) if os.environ.get("OMP_NUM_THREADS", "").isdigit() else 0
    )
    ds = load("fashion-mnist", "train", root=args.data_dir)
    images, labels = ds.images[: args.images], ds.labels[: args.images]
    mean, std = channel_stats(images)
    torch_params = sum(p.numel() for p in make_model().parameters() if p.requires_grad)
    print(
        f"{DEFAULT_MODEL}, batch "
        f"{args.batch_size}, {len(images)} images/epoch, torch {torch.__version__}, "
        f"{cores} torch threads, Keras XLA threads {keras_threads or 'default'}, "
        f"load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )

    sides = [
        "ours (default: precision auto)",
        "ours (fp32)",
        "torch loop (fp32)",
        "keras/jax (fp32)",
    ] + (["keras/jax (mixed_bfloat16)"] if args.keras_bf16 else [])
    best = dict.fromkeys(sides, 0.0)
    cpu = dict.fromkeys(sides, 0.0)
    info: dict = {}
    for r in range(args.rounds):
        rates: dict[str, tuple[float, float]] = {
            sides[0]: timed(ours, images, labels, mean, std, args.batch_size, "auto"),
            sides[1]: timed(ours, images, labels, mean, std, args.batch_size, "fp32"),
            sides[2]: timed(peer, images, labels, mean, std, args.batch_size, args.workers),
        }
        for side, precision in zip(sides[3:], ("fp32", "bf16"), strict=False):
            info = keras_side(
                python, args.images, args.batch_size, keras_threads, precision, args.data_dir
            )
            rates[side] = (info["images_per_s"], info["cpu_per_wall"])
        for k, (v, c) in rates.items():
            if v > best[k]:
                best[k], cpu[k] = v, c
        print(
            f"round {r + 1}: "
            + "   ".join(f"{k} {v:.0f}" for k, (v, _) in rates.items())
            + f" img/s   (load average {os.getloadavg()[0]:.1f})",
            flush=True,
        )

    print(
        f"\ntrainable parameters: torch {torch_params:,}   keras {info['trainable_params']:,}"
        f" (keras incl. BN moving stats {info['all_params']:,})"
    )
    if abs(torch_params - info["trainable_params"]) > 0.01 * torch_params:
        print("WARNING: parameter counts differ by more than 1%: not the same network")
    print(f"keras {info['keras']}, jax {info['jax']}, backend {info['backend']}, jit_compile")
    keras_rate, loop_rate = best["keras/jax (fp32)"], best["torch loop (fp32)"]
    for k, v in best.items():
        print(
            f"best {k:<32} {v:7.0f} img/s   /keras-fp32 {v / keras_rate:5.2f}   "
            f"/torch-loop {v / loop_rate:5.2f}   (CPU s per wall s {cpu[k]:.2f})"
        )
    print(f"(load average now {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
