"""Module-level functions for process jobs (a spawned worker imports them by name)."""

from __future__ import annotations

import asyncio
import os
import signal
import time

from resnetlab import jobs


def busy(report_every: int = 200_000) -> int:
    """Spin the CPU forever, printing a heartbeat: only kill() ends it."""
    n = 0
    while True:
        n += 1
        if n % report_every == 0:
            print("busy", n, flush=True)


def stubborn() -> None:
    """Ignore SIGTERM and sleep: only SIGKILL ends it."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("ignoring SIGTERM", flush=True)
    while True:
        time.sleep(0.05)


def poll_stop_flag() -> int:
    """Read the stop flag as fast as possible (a training loop checks it every batch)."""
    me = jobs.current()
    print("polling", flush=True)
    n = 0
    while not me.stopping:
        n += 1
    return n


def counter(steps: int, dt: float = 0.01) -> int:
    """Print and log metrics each step; returns early when asked to stop."""
    ctx = jobs.current()
    for i in range(steps):
        print(f"step {i}")
        ctx.log(i, loss=1.0 / (i + 1))
        if ctx.sleep(dt):
            return i
    return steps


async def async_counter(steps: int) -> int:
    for i in range(steps):
        print(f"async step {i}")
        await asyncio.sleep(0.005)
    return steps


def fail(message: str) -> None:
    print("about to fail")
    raise ValueError(message)


def pid() -> int:
    return os.getpid()


def write_fd(text: str) -> str:
    """Write straight to file descriptor 1, as C code would."""
    os.write(1, text.encode())
    return "written"


def tiny_train(
    *,
    epochs: int = 2,
    batches: int = 12,
    run_dir: str | None = None,
    batch_delay: float = 0.0,
    callbacks=(),
    stream=None,
) -> dict:
    """A real Trainer on a tiny synthetic task; follows resnetlab.train's callback protocol.

    ``batch_delay`` slows each batch so that a test can act while training runs.
    """
    import torch
    from torch import nn

    from resnetlab.training.config import TrainConfig
    from resnetlab.training.trainer import Trainer

    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batches * 8, 1, 4, 4, generator=gen)
    y = (x.mean((1, 2, 3)) > 0).long()
    loader = [(x[i * 8 : (i + 1) * 8], y[i * 8 : (i + 1) * 8]) for i in range(batches)]
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))

    class Slow:
        def on_batch_end(self, trainer, logs):
            time.sleep(batch_delay)

    config = TrainConfig(
        epochs=epochs,
        batch_size=8,
        device="cpu",
        run_dir=run_dir,
        log_every=2,
        lr=0.05,
        schedule="constant",
        channels_last=False,
        val_size=0,
        keep_last=5,
    )
    trainer = Trainer(
        model,
        loader,
        config=config,
        stream=stream,
        callbacks=[*([Slow()] if batch_delay else []), *callbacks],
    )
    trainer.fit()
    print(f"trainer {trainer.status} at epoch {trainer.epoch} step {trainer.step}")
    return {
        "status": trainer.status,
        "epoch": trainer.epoch,
        "step": trainer.step,
        "last_checkpoint": str(trainer.last_checkpoint) if trainer.last_checkpoint else None,
    }
