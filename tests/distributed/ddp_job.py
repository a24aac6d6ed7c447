"""A tiny data-parallel training job that the tests launch in real processes.

    python -m torch.distributed.run --standalone --nproc-per-node 2 \
        tests/distributed/ddp_job.py OUT --data /usr/share/datasets/fashion-mnist

Each rank trains resnetv2-micro on a Fashion-MNIST subset with a plain loop built on
:class:`resnetlab.distributed.DistContext` and writes what it saw to ``OUT/rank{R}.pt``
(sample indices, reduced losses, final parameters, results of the collectives, and an
evaluation of the trained weights on held-out images split over the ranks).
Run without torchrun and with ``--global-from DIR`` it is the single-process reference:
it replays the global batches (rank 0's shard + rank 1's shard) recorded in DIR.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from pathlib import Path

import torch
from torch import nn

from resnetlab.data import TensorLoader, load
from resnetlab.distributed import RankLostError, init_distributed, unwrap
from resnetlab.models import create_model
from resnetlab.utils.atomic import atomic_write

MEAN, STD = (0.286,), (0.353,)  # Fashion-MNIST pixel statistics


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("out", type=Path)
    p.add_argument("--data", required=True)
    p.add_argument("--subset", type=int, default=1024)
    p.add_argument("--batch", type=int, default=32, help="per-rank batch")
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument(
        "--bn",
        choices=("eval", "train"),
        default="eval",
        help="eval: BatchNorm uses fixed statistics, so ranks compute exactly "
        "what one process computes on the global batch",
    )
    p.add_argument("--checkpoint-at", type=int, default=0)
    p.add_argument("--resume", type=Path)
    p.add_argument("--global-from", type=Path, help="single-process reference mode")
    p.add_argument("--die-at", type=int, default=-1, help="rank 1 stops itself at this step")
    p.add_argument("--die-how", choices=("kill", "stop"), default="kill")
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--step-sleep", type=float, default=0.0)
    p.add_argument(
        "--eval-n",
        type=int,
        default=255,
        help="images evaluated after training (odd: not divisible by 2 ranks)",
    )
    return p.parse_args(argv)


def batches(
    args: argparse.Namespace, images: torch.Tensor, labels: torch.Tensor, rank: int, world_size: int
) -> tuple[TensorLoader, torch.Tensor]:
    """This rank's loader, and the sample indices it will visit in epoch 0."""
    if args.global_from is None:
        loader = TensorLoader(
            images,
            labels,
            args.batch,
            shuffle=True,
            seed=0,
            rank=rank,
            world_size=world_size,
            drop_last=True,
            mean=MEAN,
            std=STD,
        )
        return loader, loader.epoch_indices(0)
    # Reference: global batch t = rank 0's batch t followed by rank 1's batch t.
    shards = [
        torch.load(args.global_from / f"rank{r}.pt", weights_only=True)["indices"] for r in (0, 1)
    ]
    b = args.batch
    order = torch.cat(
        [torch.cat([s[t * b : (t + 1) * b] for s in shards]) for t in range(len(shards[0]) // b)]
    )
    loader = TensorLoader(
        images[order], labels[order], 2 * b, shuffle=False, drop_last=True, mean=MEAN, std=STD
    )
    return loader, order


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)
    rank_env = os.environ.get("RANK", "0")
    args.out.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        filename=args.out / f"rank{rank_env}.log",
        level=logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    ctx = init_distributed("cpu", timeout_s=args.timeout, heartbeat_s=0.5)
    try:
        with ctx.guard("training"):
            result = train(args, ctx)
    except RankLostError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        ctx.shutdown()
        return 3
    torch.save(result, args.out / f"rank{ctx.rank}.pt")
    ctx.shutdown()
    return 0


def train(args: argparse.Namespace, ctx) -> dict:
    r = ctx.rank
    check = {
        "metrics": ctx.reduce_metrics(
            {"loss": r + 1.0, "images_per_s": 100.0 * (r + 1), "step": 7}, weight=r + 1
        ),
        "gathered": ctx.all_gather_object(r * 10),
        "system": ctx.gather_system_metrics({"cpu_percent": 10.0 * r}),
        "broadcast": ctx.broadcast_object(f"from rank {r}"),
        "sum": ctx.all_reduce_sum(torch.tensor([r + 1.0, 1.0], dtype=torch.float64)).tolist(),
    }
    plan = ctx.batch_plan(args.lr, per_rank_batch=args.batch, reference_batch=args.batch)
    data = load("fashion-mnist", split="test", root=args.data)
    images, labels = data.images[: args.subset], data.labels[: args.subset]

    torch.manual_seed(0)
    model = create_model("resnetv2-micro", in_channels=1, num_classes=10, image_size=28)
    start = 0
    state = None
    if args.resume is not None:
        state = torch.load(args.resume, weights_only=True)
        model.load_state_dict(state["model"])
        start = state["step"]
    model = ctx.wrap_model(model)
    init = torch.cat([p.detach().flatten().clone() for p in unwrap(model).parameters()])
    # The global batch is world_size x per-rank batch; the reference's batch is twice as
    # big on one process, so both use the same lr (no scaling in this comparison).
    opt = torch.optim.SGD(model.parameters(), lr=plan.base_lr, momentum=0.9)
    if state is not None:
        opt.load_state_dict(state["optimizer"])
    loader, indices = batches(args, images, labels, ctx.rank, ctx.world_size)
    model.train()
    if args.bn == "eval":
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()
    losses = []
    for step, (x, y) in enumerate(loader):
        if step >= args.steps:
            break
        if step < start:
            continue
        if step == args.die_at and ctx.rank == 1:
            (args.out / "died_at").write_text(repr(time.time()))
            os.kill(os.getpid(), signal.SIGKILL if args.die_how == "kill" else signal.SIGSTOP)
        t0 = time.perf_counter()
        out = model(x)
        loss = nn.functional.cross_entropy(out, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        acc = (out.argmax(1) == y).float().mean().item()
        logs = ctx.reduce_metrics(
            {
                "loss": loss.item(),
                "accuracy": acc,
                "step": step + 1,
                "images_per_s": len(y) / (time.perf_counter() - t0),
            },
            weight=len(y),
        )
        losses.append(logs["loss"])
        if ctx.is_main and step + 1 == args.checkpoint_at:
            with atomic_write(args.out / "checkpoint.pt") as fh:
                torch.save(
                    {
                        "model": unwrap(model).state_dict(),
                        "optimizer": opt.state_dict(),
                        "step": step + 1,
                    },
                    fh,
                )
        time.sleep(args.step_sleep)
    params = torch.cat([p.detach().flatten() for p in unwrap(model).parameters()])
    return {
        "params": params,
        "init_params": init,
        "indices": indices[: args.steps * loader.batch_size],
        "losses": losses,
        "check": check,
        "world_size": ctx.world_size,
        "global_batch": plan.global_batch,
        "eval": evaluation(args, ctx, unwrap(model), data.images, data.labels),
    }


def evaluation(
    args: argparse.Namespace, ctx, model: nn.Module, images: torch.Tensor, labels: torch.Tensor
) -> dict:
    """The trained weights evaluated on ``--eval-n`` unseen images two ways: split over the
    ranks (each its ``ctx.eval_indices`` share, sums all-reduced) and by this rank alone on
    all of them (what one process reports)."""
    from resnetlab.training.evaluate import evaluate

    held_out = torch.arange(args.subset, args.subset + args.eval_n)
    x, y = images[held_out], labels[held_out]

    def run(idx: torch.Tensor, reduce) -> dict:
        loader = TensorLoader(x[idx], y[idx], 64, shuffle=False, mean=MEAN, std=STD)
        res = evaluate(model, loader, num_classes=10, all_reduce_sum=reduce)
        return {
            "accuracy": res.accuracy,
            "loss": res.loss,
            "count": res.count,
            "confusion": res.confusion,
        }

    with ctx.guard("evaluation"):
        shard = ctx.eval_indices(args.eval_n)
        return {
            "shard": shard,
            "sharded": run(shard, ctx.all_reduce_sum),
            "alone": run(torch.arange(args.eval_n), None),
        }


if __name__ == "__main__":
    sys.exit(main())
