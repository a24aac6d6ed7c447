"""The real Fashion-MNIST (Debian's dataset-fashion-mnist) through load() and the CLI."""

from __future__ import annotations

import hashlib

import pytest
import torch

from resnetlab.cli import main
from resnetlab.data import channel_stats, load, split_validation
from resnetlab.data.spec import FASHION_MNIST


def test_train_split_is_60000_balanced_28x28(fashion_mnist_dir):
    ds = load("fashion-mnist", "train", root=fashion_mnist_dir, download=False)
    assert ds.images.shape == (60000, 1, 28, 28)
    assert ds.images.dtype == torch.uint8 and ds.images.is_contiguous()
    assert ds.labels.dtype == torch.int64
    assert ds.class_counts() == [6000] * 10
    assert ds.classes[0] == "T-shirt/top" and ds.classes[9] == "Ankle boot"
    assert ds.num_classes == 10
    assert ds.source == fashion_mnist_dir
    # real clothing pictures: dark background, bright garments, not noise
    assert ds.images[:, :, 0, 0].float().mean() < 5
    assert 250 <= int(ds.images.max()) <= 255


def test_test_split_is_10000_balanced(fashion_mnist_dir):
    ds = load("fashion-mnist", "test", root=fashion_mnist_dir, download=False)
    assert ds.images.shape == (10000, 1, 28, 28)
    assert ds.class_counts() == [1000] * 10


def test_found_in_system_location_without_root(fashion_mnist_dir):
    # no root, no RESNETLAB_DATA, empty user cache: the Debian folder is found
    ds = load("fashion-mnist", "test", download=False)
    assert ds.source == fashion_mnist_dir
    assert len(ds) == 10000


def test_second_load_uses_parsed_cache(fashion_mnist_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = load("fashion-mnist", "test", download=False)
    cached = list((tmp_path / "resnetlab" / "fashion-mnist" / "parsed").glob("test-*.pt"))
    assert len(cached) == 1 and not list(cached[0].parent.glob("*.tmp"))
    # the second load reads the cache: with the IDX parser broken it still succeeds
    import resnetlab.data.api as data_api

    def no_parsing(*args, **kwargs):
        raise AssertionError("parsed again instead of reading the cache")

    with monkeypatch.context() as patched:
        patched.setattr(data_api, "_parse", no_parsing)
        second = load("fashion-mnist", "test", download=False)
    assert torch.equal(first.images, second.images) and torch.equal(first.labels, second.labels)
    # a damaged cache file is ignored and rebuilt, not trusted
    cached[0].write_bytes(b"garbage")
    third = load("fashion-mnist", "test", download=False)
    assert torch.equal(first.images, third.images)


def test_validation_split_and_stats(fashion_mnist_dir):
    ds = load("fashion-mnist", "train", download=False)
    train, val = split_validation(ds, 5000, seed=0)
    assert (len(train), len(val)) == (55000, 5000)
    again_train, again_val = split_validation(ds, 5000, seed=0)
    assert torch.equal(val.images, again_val.images) and torch.equal(val.labels, again_val.labels)
    other = split_validation(ds, 5000, seed=1)[1]
    assert not torch.equal(val.labels, other.labels)
    # disjoint and together the whole split: compare image hashes
    seen = {hashlib.sha1(img.numpy().tobytes()).digest() for img in val.images[:500]}
    assert not any(
        hashlib.sha1(img.numpy().tobytes()).digest() in seen for img in train.images[:5000]
    )
    assert sorted(train.class_counts()[i] + val.class_counts()[i] for i in range(10)) == [6000] * 10
    mean, std = channel_stats(train)
    assert mean[0] == pytest.approx(0.286, abs=0.005)
    assert std[0] == pytest.approx(0.353, abs=0.005)
    frac_train, frac_val = split_validation(ds, 0.1)
    assert len(frac_val) == 6000


def test_debian_files_are_official_sizes_minus_gzip_name_field(fashion_mnist_dir):
    # Debian recompressed the gzip files (no file name in the header), so their bytes and
    # MD5 differ from Zalando's; the content must still be IDX of the declared sizes.
    for remote in FASHION_MNIST.split_files("train") + FASHION_MNIST.split_files("test"):
        assert (fashion_mnist_dir / remote.name).exists()
        assert abs((fashion_mnist_dir / remote.name).stat().st_size - remote.size) <= 24


def test_cli_data_info(fashion_mnist_dir, capsys):
    assert main(["data", "info", "fashion-mnist"]) == 0
    out = capsys.readouterr().out
    assert str(fashion_mnist_dir) in out
    assert "60000" in out and "10000" in out
    assert "1x28x28" in out
    assert "mean:      (0.2860)" in out and "std:       (0.3530)" in out


def test_cli_data_info_missing_dataset_is_a_clear_error(tmp_path, capsys):
    assert main(["data", "info", "mnist", "--data-dir", str(tmp_path), "--no-download"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: mnist (train split) not found")
    assert "train-images-idx3-ubyte.gz" in err and str(tmp_path) in err
