"""A training process killed with SIGKILL leaves a consistent store and a loadable checkpoint."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

from resnetlab.store import INTERRUPTED, RUNNING, RunStore
from resnetlab.training.checkpoint import load_checkpoint, model_from_checkpoint

SCRIPT = textwrap.dedent("""
    import sys, torch
    torch.set_num_threads(1)
    from resnetlab.data import TensorLoader, load
    from resnetlab.models import create_model
    from resnetlab.store import RunStore
    from resnetlab.training import TrainConfig, Trainer

    db, root = sys.argv[1], sys.argv[2]
    ds = load("fashion-mnist", "train", root=root)
    loader = TensorLoader(ds.images[:64], ds.labels[:64], 32, mean=(0.29,), std=(0.35,),
                          drop_last=True)
    model = create_model("resnetv2-micro", in_channels=1, num_classes=10, image_size=28)
    store = RunStore(db)
    config = TrainConfig(epochs=100000, log_every=1, val_size=0, channels_last=False)
    Trainer(model, loader, config=config, store=store, run_name="doomed").fit()
""")


def test_sigkill_leaves_a_consistent_store_and_a_loadable_checkpoint(fashion_mnist_dir, tmp_path):
    db = tmp_path / "runs.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(db), str(fashion_mnist_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.time() + 90
        run = None
        while time.time() < deadline:
            assert proc.poll() is None, proc.stdout.read().decode()
            if db.exists():
                with RunStore(db) as store:
                    runs = store.list_runs()
                    # Two epochs done: checkpoints exist and metrics were flushed.
                    if (
                        runs
                        and runs[0].checkpoint_last
                        and len(store.metrics(runs[0].id, keys=["val_loss", "epoch_time"])) >= 2
                    ):
                        run = runs[0]
                        break
            time.sleep(0.2)
        assert run is not None, "the training process made no checkpoint in time"
        assert run.status == RUNNING
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL

    # The database is intact and the dead run is recognised as interrupted.
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    with RunStore(db) as store:
        after = store.get_run("doomed")
        assert after.status == INTERRUPTED
        assert "ended without finishing" in after.error
        rows = store.metrics(after.id, keys=["loss"])
        assert len(rows) >= 2 and all(r.value == r.value for r in rows)  # no NaN holes
    # The last checkpoint loads and rebuilds the model.
    ckpt = load_checkpoint(after.checkpoint_last)
    assert ckpt["step"] >= 4 and ckpt["run_id"] == after.id
    model = model_from_checkpoint(after.checkpoint_last)
    assert sum(p.numel() for p in model.parameters()) > 0
    assert os.path.dirname(after.checkpoint_last) == after.run_dir
