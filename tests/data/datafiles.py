"""Writers of small dataset files in the real on-disk formats, and a closed local port.

Imported by the test modules as ``datafiles`` (tests/data is on sys.path under pytest).
"""

from __future__ import annotations

import gzip
import io
import socket
import struct
import tarfile
import zipfile
from pathlib import Path

import numpy as np


def closed_port() -> int:
    """A port on 127.0.0.1 that was just bound and closed: connecting is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX ubyte file holding ``array``."""
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def make_idx_split(
    folder: Path, prefix: str, n: int, *, gz: bool = True, seed: int = 0, size: int = 28
) -> tuple[np.ndarray, np.ndarray]:
    """Write ``<prefix>-images-idx3-ubyte[.gz]`` and the labels file; return their arrays."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, size, size), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
        data = idx_bytes(array)
        name = f"{prefix}-{kind}-ubyte"
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return images, labels


def make_mnist_dir(
    folder: Path, *, gz: bool = True, n_train: int = 50, n_test: int = 20
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {
        "train": make_idx_split(folder, "train", n_train, gz=gz, seed=1),
        "test": make_idx_split(folder, "t10k", n_test, gz=gz, seed=2),
    }


def cifar_records(n: int, fine: bool, seed: int) -> tuple[bytes, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    classes = 100 if fine else 10
    labels = rng.integers(0, classes, n).astype(np.uint8)
    head = [(labels // 5), labels] if fine else [labels]  # CIFAR-100: coarse, fine
    rows = np.concatenate([np.stack(head, 1), images.reshape(n, -1)], 1)
    return rows.astype(np.uint8).tobytes(), images, labels


def make_cifar_archive(
    path: Path,
    *,
    fine: bool = False,
    per_batch: int = 4,
    record_bytes: dict[str, bytes] | None = None,
) -> dict[str, np.ndarray]:
    """A cifar-10-binary.tar.gz (or cifar-100-binary.tar.gz) in the official layout."""
    top = "cifar-100-binary" if fine else "cifar-10-batches-bin"
    members: dict[str, bytes] = {}
    train_imgs, train_lbls = [], []
    names = ["train.bin"] if fine else [f"data_batch_{i}.bin" for i in range(1, 6)]
    for seed, name in enumerate(names):
        data, imgs, lbls = cifar_records(per_batch, fine, seed)
        members[name] = data
        train_imgs.append(imgs)
        train_lbls.append(lbls)
    data, test_imgs, test_lbls = cifar_records(per_batch, fine, 99)
    members["test.bin" if fine else "test_batch.bin"] = data
    if fine:
        members["fine_label_names.txt"] = "\n".join(f"fine{i}" for i in range(100)).encode()
        members["coarse_label_names.txt"] = "\n".join(f"c{i}" for i in range(20)).encode()
    else:
        members["batches.meta.txt"] = (
            b"airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n"
        )
    members.update(record_bytes or {})
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, blob in members.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return {
        "train_images": np.concatenate(train_imgs),
        "train_labels": np.concatenate(train_lbls),
        "test_images": test_imgs,
        "test_labels": test_lbls,
    }


CELEBA_ATTRS = ["5_o_Clock_Shadow", "Male", "Smiling", "Young"]


def make_celeba(folder: Path, *, as_zip: bool = False, n: int = 9) -> dict[str, object]:
    """A CelebA-like folder: a few JPEG faces, list_attr_celeba.txt, list_eval_partition.txt."""
    from PIL import Image

    rng = np.random.default_rng(3)
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"{i:06d}.jpg" for i in range(1, n + 1)]
    values = rng.choice([-1, 1], size=(n, len(CELEBA_ATTRS)))
    partition = [i % 3 for i in range(n)]  # 0 train, 1 valid, 2 test
    blobs = {}
    for i, name in enumerate(names):
        # 22x26 (W x H), the aspect of the real 178x218 crops; colour encodes the index
        img = Image.new("RGB", (22, 26), (20 * i, 255 - 20 * i, 100))
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=95)
        blobs[name] = buf.getvalue()
    if as_zip:
        with zipfile.ZipFile(folder / "img_align_celeba.zip", "w") as zf:
            for name, blob in blobs.items():
                zf.writestr(f"img_align_celeba/{name}", blob)
    else:
        (folder / "img_align_celeba").mkdir()
        for name, blob in blobs.items():
            (folder / "img_align_celeba" / name).write_bytes(blob)
    lines = [str(n), " ".join(CELEBA_ATTRS)]
    lines += [
        f"{name} " + " ".join(f"{v:2d}" for v in row)
        for name, row in zip(names, values, strict=True)
    ]
    (folder / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    (folder / "list_eval_partition.txt").write_text(
        "".join(f"{name} {p}\n" for name, p in zip(names, partition, strict=True))
    )
    return {"names": names, "values": values, "partition": partition}
