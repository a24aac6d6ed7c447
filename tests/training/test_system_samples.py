"""A single-process run stores this machine's CPU/RAM samples, with or without a dashboard,
so ``resnetlab watch`` and stored-run plots fill their CPU/RAM panels (issue 13.5)."""

from __future__ import annotations

import resnetlab
from resnetlab.store import RunStore


def test_a_run_without_a_dashboard_stores_cpu_and_ram_samples(tmp_path, fashion_mnist_dir):
    result = resnetlab.train(
        "resnetv2-micro",
        data_dir=fashion_mnist_dir,
        epochs=1,
        batch_size=64,
        val_size=128,
        train_limit=512,
        test_limit=128,
        store=tmp_path / "runs.db",
        live=None,
        progress=False,
        verbose=False,
    )
    with RunStore(tmp_path / "runs.db") as store:
        keys = store.metric_keys(result.run_id)
        steps, cpu = store.series(result.run_id, "sys/cpu_percent")
        _, ram = store.series(result.run_id, "sys/ram_used_gb")
    assert {"sys/cpu_percent", "sys/ram_used_gb", "sys/rss_gb"} <= set(keys)
    assert len(cpu) >= 1 and all(0.0 <= v <= 100.0 for v in cpu)
    assert all(v > 0 for v in ram)
    # stamped with training steps of the run
    assert all(0 <= s <= result.history[-1].get("step", 10**9) for s in steps)
