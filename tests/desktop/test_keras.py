"""The Keras 3 adapter: model.fit() feeds a MetricStream (Keras on its torch backend)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from desktop_helpers import HERE
from live.image_checks import assert_whole_image


def test_keras_fit_feeds_the_stream(fashion_mnist_dir, tmp_path):
    env_backend = {"KERAS_BACKEND": "torch"}
    import os

    proc = subprocess.run(
        [sys.executable, str(HERE / "keras_fit.py"), str(fashion_mnist_dir), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, **env_backend},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    if "skip" in r:
        pytest.skip(r["skip"])
    assert r["backend"] == "torch"
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(r["keys"])
    batches_per_epoch = 288 // 64 + (288 % 64 > 0)  # 384 samples, 25 % held out
    steps = [s for s, _, m in r["records"] if "loss" in m]
    assert steps == list(range(1, 2 * batches_per_epoch + 1))  # every batch, global step
    # Epoch ends carry Keras' validation numbers, at the step of the epoch's last batch.
    val = [(s, e, m["val_loss"]) for s, e, m in r["records"] if "val_loss" in m]
    assert [(s, e) for s, e, _ in val] == [(batches_per_epoch, 0), (2 * batches_per_epoch, 1)]
    assert [v for _, _, v in val] == pytest.approx(r["history"]["val_loss"])
    # The last batch's running loss of each epoch is the epoch's loss in Keras' history.
    last = [m["loss"] for s, _, m in r["records"] if "loss" in m and s % batches_per_epoch == 0]
    assert last == pytest.approx(r["history"]["loss"], rel=1e-5)
    # A dashboard that followed the fit saves a whole picture afterwards (not the lines alone).
    assert_whole_image(r["saved"])


def test_missing_keras_is_a_clear_error():
    code = (
        "import sys; sys.modules['keras'] = None\nfrom resnetlab.live.keras import LiveCallback\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "KerasMissingError" in proc.stderr and "pip install keras" in proc.stderr
