"""Keras 3 (JAX backend) side of bench_train_keras.py: train resnetv2-mini, print JSON.

Runs inside ``bench/.venv-keras`` (keras + jax[cpu] only; no torch, no resnetlab), as a
subprocess of ``bench_train_keras.py``; by hand:

    bench/.venv-keras/bin/python bench/keras_resnet_v2.py --images 8192 --threads 1

The network is written layer by layer from the ResNet V2 description that
``resnetlab.models`` implements for ``resnetv2-mini`` with the default recipe's
``stem_stride=2`` (see docs/models.md):

* stem: 3x3 conv, 32 maps, stride 2 (28 -> 14), BN, ReLU;
* 3 stacks x 1 basic unit, 32/64/128 maps, strides 1/2/2 (14 -> 14 -> 7 -> 4); a unit is
  two full pre-activation layers BN -> ReLU -> 3x3 conv (no bias); the network's first
  layer skips BN -> ReLU (the stem has just applied them); a unit whose shape changes
  gets a 1x1 strided projection shortcut (no BN) fed by the shared BN -> ReLU output;
  no activation after the addition;
* head: BN, ReLU, global average pool, Dense(10).

Convs pad like PyTorch's ``padding=k//2`` (symmetric zero padding, then "valid"), so the
shapes and the arithmetic match, not only the parameter count. Training is what the
trainer does: SGD Nesterov 0.9 with weight decay 5e-4, label smoothing 0.1, batch 256,
random crop (pad 2) + horizontal flip in the graph, inputs normalised by the split's
mean and std. The score is the images/s of the second epoch of a two-epoch fit (the first
one includes XLA compilation).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from pathlib import Path


def _set_threads(threads: int) -> None:
    """Make XLA use ``threads`` threads (set before jax is imported); 0 leaves the default."""
    if threads > 0:
        os.environ["XLA_FLAGS"] = (
            os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
            f" intra_op_parallelism_threads={threads}"
        ).strip()
    os.environ.setdefault("KERAS_BACKEND", "jax")


def read_idx(path: Path):
    """An IDX (gzip) file as a numpy array."""
    import numpy as np

    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def conv(x, filters: int, kernel: int, stride: int = 1):
    """Bias-free conv with PyTorch's symmetric ``k // 2`` zero padding."""
    from keras import layers

    if kernel > 1:
        x = layers.ZeroPadding2D(kernel // 2)(x)
    return layers.Conv2D(
        filters,
        kernel,
        strides=stride,
        padding="valid",
        use_bias=False,
        kernel_initializer="he_normal",
    )(x)


def bn_relu(x):
    from keras import layers

    # PyTorch BatchNorm2d defaults: eps 1e-5, momentum 0.1 (Keras counts it as 0.9)
    x = layers.BatchNormalization(momentum=0.9, epsilon=1e-5)(x)
    return layers.ReLU()(x)


def basic_unit(x, filters: int, stride: int, *, preactivated: bool):
    """Two pre-activation 3x3 layers; a projection shortcut when the shape changes."""
    in_filters = x.shape[-1]
    projection = stride != 1 or in_filters != filters
    pre = bn_relu(x) if preactivated else x
    shortcut = conv(pre, filters, 1, stride) if projection else x
    out = conv(pre, filters, 3, stride)
    out = conv(bn_relu(out), filters, 3, 1)
    from keras import layers

    return layers.Add()([out, shortcut])


def random_crop_flip_layer(padding: int):
    """A jittable layer: per-sample random crop (zero pad ``padding``) + horizontal flip.

    Keras's RandomCrop/RandomFlip preprocessing layers make ``fit`` fall back to
    ``jit_compile=False`` on JAX (5-10x slower here), so this does what resnetlab's
    ``Augment`` does, with ``keras.ops``: two gathers with per-sample offsets and a
    ``where`` over a per-sample flip mask; training only.
    """
    import keras
    from keras import ops

    class RandomCropFlip(keras.layers.Layer):
        def __init__(self, **kwargs) -> None:
            super().__init__(**kwargs)
            self.seed = keras.random.SeedGenerator(0)

        def call(self, x, training=None):
            if not training:
                return x
            b, h, w = ops.shape(x)[0], x.shape[1], x.shape[2]
            p = padding
            padded = ops.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
            top = keras.random.randint((b, 1), 0, 2 * p + 1, seed=self.seed)
            left = keras.random.randint((b, 1), 0, 2 * p + 1, seed=self.seed)
            rows = (top + ops.arange(h)[None, :])[:, :, None, None]  # (B, H, 1, 1)
            padded = ops.take_along_axis(
                padded, ops.broadcast_to(rows, (b, h, w + 2 * p, 1)), axis=1
            )
            cols = (left + ops.arange(w)[None, :])[:, None, :, None]  # (B, 1, W, 1)
            out = ops.take_along_axis(padded, ops.broadcast_to(cols, (b, h, w, 1)), axis=2)
            flip = keras.random.uniform((b, 1, 1, 1), seed=self.seed) < 0.5
            return ops.where(flip, ops.flip(out, axis=2), out)

    return RandomCropFlip(name="random_crop_flip")


def build_resnetv2_mini(image_size: int = 28, num_classes: int = 10, augment: bool = True):
    import keras
    from keras import layers

    inputs = keras.Input((image_size, image_size, 1))
    x = inputs
    if augment:  # active in training only, like the trainer's batched augmentation
        x = random_crop_flip_layer(2)(x)
    x = bn_relu(conv(x, 32, 3, 2))  # stem, 28 -> 14
    for i, (filters, stride) in enumerate(zip((32, 64, 128), (1, 2, 2), strict=True)):
        x = basic_unit(x, filters, stride, preactivated=i != 0)  # 14, 7, 4
    x = bn_relu(x)  # head
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(num_classes, dtype="float32")(x)
    return keras.Model(inputs, outputs, name="resnetv2_mini")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8192)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument(
        "--threads", type=int, default=0, help="XLA intra-op threads (0: XLA's default, every core)"
    )
    parser.add_argument(
        "--precision",
        choices=("fp32", "bf16"),
        default="fp32",
        help="bf16: Keras 'mixed_bfloat16' policy",
    )
    parser.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--summary", action="store_true", help="print model.summary()")
    args = parser.parse_args()
    _set_threads(args.threads)

    import jax
    import keras
    import numpy as np

    if args.precision == "bf16":
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    keras.utils.set_random_seed(0)
    root = Path(args.data_dir)
    images = read_idx(root / "train-images-idx3-ubyte.gz")[: args.images]
    labels = read_idx(root / "train-labels-idx1-ubyte.gz")[: args.images].astype("int32")
    x = images.astype("float32")[..., None] / 255.0
    x = (x - x.mean()) / x.std()
    y = keras.utils.to_categorical(labels, 10)  # label smoothing needs one-hot targets
    n = len(x) - len(x) % args.batch_size  # the trainer drops the last partial batch
    x, y = x[:n], y[:n]

    model = build_resnetv2_mini()
    if args.summary:
        model.summary(print_fn=lambda s, **_: print(s, file=sys.stderr))
    model.compile(
        optimizer=keras.optimizers.SGD(
            learning_rate=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4
        ),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1),
        jit_compile=True,
    )

    class EpochClock(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.times: list[float] = []
            self.cpu: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self.t0, self.c0 = time.perf_counter(), time.process_time()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self.t0)
            self.cpu.append(time.process_time() - self.c0)

    clock = EpochClock()
    model.fit(
        x,
        y,
        batch_size=args.batch_size,
        epochs=args.epochs,
        shuffle=True,
        callbacks=[clock],
        verbose=0,
    )
    trainable = int(sum(np.prod(v.shape) for v in model.trainable_weights))
    total = int(sum(np.prod(v.shape) for v in model.weights))
    print(
        json.dumps(
            {
                "images_per_s": n / clock.times[-1],
                "epoch_times": clock.times,
                "cpu_per_wall": clock.cpu[-1] / clock.times[-1],
                "images": n,
                "trainable_params": trainable,
                "all_params": total,
                "keras": keras.__version__,
                "jax": jax.__version__,
                "backend": keras.backend.backend(),
                "precision": args.precision,
                "threads": args.threads,
            }
        )
    )


if __name__ == "__main__":
    main()
