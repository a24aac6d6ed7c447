"""Fit a tiny Keras 3 model (torch backend) on real Fashion-MNIST with LiveCallback.

    KERAS_BACKEND=torch python tests/desktop/keras_fit.py DATA_DIR OUT_DIR
Prints a JSON report of what reached the MetricStream, Keras' own history, and the path of
the image a Dashboard (running in the background during the fit) saved afterwards.
"""

from __future__ import annotations

import gzip
import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402


def idx(path: str, offset: int) -> np.ndarray:
    with gzip.open(path) as fh:
        return np.frombuffer(fh.read(), np.uint8, offset=offset)


def main() -> int:
    root, out = sys.argv[1], sys.argv[2]
    x = idx(f"{root}/train-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28, 1)[:384] / 255.0
    y = idx(f"{root}/train-labels-idx1-ubyte.gz", 8)[:384]
    try:
        import keras
    except ImportError:
        print(json.dumps({"skip": "keras is not installed (pip install keras)"}))
        return 0
    from resnetlab.live.dashboard import Dashboard
    from resnetlab.live.keras import LiveCallback
    from resnetlab.metrics.stream import MetricStream

    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(4, 3, strides=2, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    stream = MetricStream(name="keras")
    dash = Dashboard(["loss", "accuracy"], stream=stream, backend="agg").start(rate_hz=10)
    history = model.fit(
        x,
        y,
        batch_size=64,
        epochs=2,
        validation_split=0.25,
        callbacks=[LiveCallback(stream)],
        verbose=0,
    )
    dash.stop()
    (saved,) = dash.save(os.path.join(out, "after-fit.png"))
    dash.close()
    records, _ = stream.read_since(0)
    print(
        json.dumps(
            {
                "backend": keras.backend.backend(),
                "keys": stream.keys(),
                "records": [[r.step, r.epoch, r.metrics] for r in records],
                "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
                "saved": str(saved),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
