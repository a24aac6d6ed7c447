"""Data-parallel throughput: images/s of 1 process vs N processes (torchrun, gloo/nccl).

    .venv/bin/python bench/bench_ddp.py                      # 1 vs 2 processes
    .venv/bin/python bench/bench_ddp.py --nproc 1 2 4 --model resnetv2-mini --batch 128

Each configuration is a real ``torchrun --standalone --nproc-per-node N`` job of this
script (``--worker``) training on real Fashion-MNIST with
:func:`resnetlab.distributed.init_distributed`, the per-rank batch held fixed (weak
scaling: N processes take N times the images per step). After warm-up steps, the ranks
meet at a barrier, run ``--steps`` timed steps, and meet again; images/s = all images
of all ranks / wall time. The peer is the 1-process run of the same script and model;
the ratio printed is ``images/s(N) / images/s(1)``. On CPUs each process gets
``cores / N`` threads, so on a 2-core machine expect little or no gain: the point there
is correctness, the speed-up shows with one GPU per process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA = "/usr/share/datasets/fashion-mnist"


def worker(args: argparse.Namespace) -> None:
    import torch
    from torch import nn

    from resnetlab.data import TensorLoader, load
    from resnetlab.distributed import init_distributed
    from resnetlab.models import create_model

    ctx = init_distributed(args.device)
    if ctx.device.type == "cpu":
        torch.set_num_threads(args.threads or max(1, (os.cpu_count() or 1) // ctx.world_size))
    data = load("fashion-mnist", split="train", root=args.data)
    torch.manual_seed(0)
    model = ctx.wrap_model(create_model(args.model, in_channels=1, num_classes=10, image_size=28))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loader = TensorLoader(
        data.images,
        data.labels,
        args.batch,
        shuffle=True,
        seed=0,
        rank=ctx.rank,
        world_size=ctx.world_size,
        drop_last=True,
        device=ctx.device,
        mean=(0.286,),
        std=(0.353,),
    )
    batches = iter(loader)

    def step() -> None:
        x, y = next(batches)
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    with ctx.guard("benchmark"):
        for _ in range(args.warmup):
            step()
        if ctx.device.type == "cuda":
            torch.cuda.synchronize()
        ctx.barrier()
        start = time.perf_counter()
        for _ in range(args.steps):
            step()
        if ctx.device.type == "cuda":
            torch.cuda.synchronize()
        ctx.barrier()
        elapsed = time.perf_counter() - start
    if ctx.is_main:
        images = args.steps * args.batch * ctx.world_size
        Path(args.result).write_text(
            json.dumps(
                {
                    "nproc": ctx.world_size,
                    "backend": ctx.backend or "none",
                    "device": str(ctx.device),
                    "images_per_s": images / elapsed,
                    "seconds": elapsed,
                }
            )
        )
    ctx.shutdown()


def run(nproc: int, args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "result.json"
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc-per-node={nproc}",
            __file__,
            "--worker",
            "--result",
            str(result),
            "--model",
            args.model,
            "--batch",
            str(args.batch),
            "--steps",
            str(args.steps),
            "--warmup",
            str(args.warmup),
            "--data",
            args.data,
            "--device",
            args.device,
        ]
        threads = args.threads or max(1, (os.cpu_count() or 1) // nproc)
        cmd += ["--threads", str(threads)]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(f"{nproc}-process run failed:\n{proc.stdout}\n{proc.stderr}")
        return {**json.loads(result.read_text()), "threads": threads}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nproc", type=int, nargs="+", default=[1, 2])
    p.add_argument("--model", default="resnetv2-micro")
    p.add_argument("--batch", type=int, default=64, help="per-rank batch")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--device", default="auto")
    p.add_argument("--data", default=DATA)
    p.add_argument(
        "--threads", type=int, default=0, help="CPU threads per process (0: cores / processes)"
    )
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return
    print(
        f"model {args.model}, per-rank batch {args.batch}, {args.steps} timed steps, "
        f"{os.cpu_count()} CPU cores"
    )
    results = [run(n, args) for n in args.nproc]
    base = next((r for r in results if r["nproc"] == 1), results[0])
    print(
        f"{'processes':>9} {'threads':>7} {'backend':>7} {'device':>7} {'images/s':>10} "
        f"{'ratio':>6}"
    )
    for r in results:
        print(
            f"{r['nproc']:>9} {r['threads']:>7} {r['backend']:>7} {r['device']:>7} "
            f"{r['images_per_s']:>10.0f} "
            f"{r['images_per_s'] / base['images_per_s']:>6.2f}"
        )
    print(f"ratio = images/s(N processes) / images/s({base['nproc']} process)")


if __name__ == "__main__":
    main()
