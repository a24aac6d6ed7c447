"""Every on-disk format end to end on small generated files, and each bad-input case."""

from __future__ import annotations

import gzip
import struct
import tarfile
import zipfile

import numpy as np
import pytest
import torch
from datafiles import (
    CELEBA_ATTRS,
    idx_bytes,
    make_celeba,
    make_cifar_archive,
    make_idx_split,
    make_mnist_dir,
)

from resnetlab.data import load
from resnetlab.errors import ConfigError, DataError

# ---------------------------------------------------------------- IDX (MNIST layout)


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "raw"])
def test_idx_parses_end_to_end(tmp_path, gz):
    arrays = make_mnist_dir(tmp_path, gz=gz)
    for split in ("train", "test"):
        ds = load("mnist", split, root=tmp_path, download=False)
        images, labels = arrays[split]
        assert ds.images.shape == (len(images), 1, 28, 28)
        assert torch.equal(ds.images[:, 0], torch.from_numpy(images))
        assert torch.equal(ds.labels, torch.from_numpy(labels).long())
        assert ds.classes == [str(d) for d in range(10)]
        assert ds.source == tmp_path


def test_idx_found_under_root_slash_name(tmp_path):
    make_mnist_dir(tmp_path / "mnist")
    assert load("mnist", "test", root=tmp_path, download=False).source == tmp_path / "mnist"


def test_idx_truncated_gzip(tmp_path):
    make_mnist_dir(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(DataError) as err:
        load("mnist", "train", root=tmp_path, download=False)
    msg = str(err.value)
    assert str(path) in msg and "truncated" in msg and "delete it" in msg


def test_idx_corrupt_gzip(tmp_path):
    make_mnist_dir(tmp_path)
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    data = bytearray(path.read_bytes())
    data[12:40] = b"\xff" * 28
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match="corrupt or truncated gzip") as err:
        load("mnist", "train", root=tmp_path, download=False)
    assert str(path) in str(err.value)


def test_idx_wrong_magic(tmp_path):
    make_mnist_dir(tmp_path)
    # a labels file where the images file should be
    labels = (tmp_path / "train-labels-idx1-ubyte.gz").read_bytes()
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(labels)
    with pytest.raises(DataError) as err:
        load("mnist", "train", root=tmp_path, download=False)
    msg = str(err.value)
    assert "train-images-idx3-ubyte.gz" in msg
    assert "bad magic 0x00000801 (expected 0x00000803 for images (idx3))" in msg


def test_idx_data_shorter_than_header_says(tmp_path):
    make_mnist_dir(tmp_path, gz=False)
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-28])
    with pytest.raises(
        DataError,
        match=r"declares shape \(20, 28, 28\) = 15680 bytes of data "
        r"but the file holds 15652",
    ):
        load("mnist", "test", root=tmp_path, download=False)


def test_idx_label_image_count_mismatch(tmp_path):
    make_mnist_dir(tmp_path)
    labels = np.zeros(7, dtype=np.uint8)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    with pytest.raises(DataError) as err:
        load("mnist", "test", root=tmp_path, download=False)
    msg = str(err.value)
    assert "7 labels" in msg and "20 images" in msg and "t10k-labels-idx1-ubyte.gz" in msg


def test_idx_empty_file(tmp_path):
    make_mnist_dir(tmp_path, gz=False)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(struct.pack(">H", 0))
    with pytest.raises(DataError, match="too short for an IDX header"):
        load("mnist", "test", root=tmp_path, download=False)


def test_fashion_mnist_layout_from_generated_files(tmp_path):
    images, labels = make_idx_split(tmp_path, "t10k", 30)
    make_idx_split(tmp_path, "train", 10)
    ds = load("fashion-mnist", "test", root=tmp_path, download=False)
    assert torch.equal(ds.images[:, 0], torch.from_numpy(images))
    assert ds.classes[7] == "Sneaker"


def test_idx_of_another_size_is_not_fashion_mnist(tmp_path):
    make_idx_split(tmp_path, "train", 5, size=32)  # e.g. a 32x32 dataset's IDX files
    with pytest.raises(DataError) as err:
        load("fashion-mnist", "train", root=tmp_path, download=False)
    msg = str(err.value)
    assert str(tmp_path / "train-images-idx3-ubyte.gz") in msg
    assert "32x32" in msg and "expected 28x28" in msg


def test_idx_with_no_samples_is_rejected(tmp_path):
    make_idx_split(tmp_path, "t10k", 0)
    with pytest.raises(DataError) as err:
        load("mnist", "test", root=tmp_path, download=False)
    msg = str(err.value)
    assert str(tmp_path / "t10k-images-idx3-ubyte.gz") in msg and "holds 0 images" in msg
    assert "expected at least one" in msg


def test_idx_dataset_takes_no_options(tmp_path):
    make_mnist_dir(tmp_path)
    with pytest.raises(ConfigError, match="mnist: unknown option.*'image_size'.*takes no options"):
        load("mnist", "test", root=tmp_path, download=False, image_size=8)


# ---------------------------------------------------------------- CIFAR binary


@pytest.mark.parametrize("name, fine", [("cifar10", False), ("cifar100", True)])
def test_cifar_archive_end_to_end(tmp_path, name, fine):
    archive = tmp_path / ("cifar-100-binary.tar.gz" if fine else "cifar-10-binary.tar.gz")
    want = make_cifar_archive(archive, fine=fine)
    train = load(name, "train", root=tmp_path, download=False)
    test = load(name, "test", root=tmp_path, download=False)
    assert train.images.shape == (4 if fine else 20, 3, 32, 32)
    assert torch.equal(train.images, torch.from_numpy(want["train_images"]))
    assert torch.equal(train.labels, torch.from_numpy(want["train_labels"]).long())
    assert torch.equal(test.images, torch.from_numpy(want["test_images"]))
    assert train.num_classes == (100 if fine else 10)
    assert train.classes[0] == ("fine0" if fine else "airplane")


def test_cifar_extracted_folder(tmp_path):
    want = make_cifar_archive(tmp_path / "cifar-10-binary.tar.gz")
    with tarfile.open(tmp_path / "cifar-10-binary.tar.gz") as tar:
        tar.extractall(tmp_path / "x", filter="data")
    ds = load("cifar10", "test", root=tmp_path / "x", download=False)
    assert torch.equal(ds.images, torch.from_numpy(want["test_images"]))


def test_cifar_wrong_record_size(tmp_path):
    # CIFAR-100 records (3074 bytes) inside a CIFAR-10 archive
    bad = bytes(3074 * 3)
    make_cifar_archive(tmp_path / "cifar-10-binary.tar.gz", record_bytes={"test_batch.bin": bad})
    with pytest.raises(DataError) as err:
        load("cifar10", "test", root=tmp_path, download=False)
    msg = str(err.value)
    assert "test_batch.bin" in msg and "9222 bytes" in msg and "3073-byte records" in msg
    assert "looks like CIFAR-100" in msg


def test_cifar_truncated_archive(tmp_path):
    archive = tmp_path / "cifar-10-binary.tar.gz"
    make_cifar_archive(archive)
    archive.write_bytes(archive.read_bytes()[:-500])
    with pytest.raises(DataError, match="not a readable tar.gz archive") as err:
        load("cifar10", "train", root=tmp_path, download=False)
    assert str(archive) in str(err.value)


def test_cifar_archive_missing_member(tmp_path):
    archive = tmp_path / "cifar-10-binary.tar.gz"
    with tarfile.open(archive, "w:gz"):
        pass
    with pytest.raises(DataError, match="archive lacks data_batch_1.bin"):
        load("cifar10", "train", root=tmp_path, download=False)


# ---------------------------------------------------------------- CelebA


@pytest.mark.parametrize("as_zip", [False, True], ids=["folder", "zip"])
def test_celeba_end_to_end(tmp_path, as_zip):
    info = make_celeba(tmp_path, as_zip=as_zip)
    values, partition = info["values"], info["partition"]
    smiling = CELEBA_ATTRS.index("Smiling")
    for split, code in (("train", 0), ("valid", 1), ("test", 2)):
        ds = load(
            "celeba", split, root=tmp_path, download=False, attributes=["Smiling"], image_size=16
        )
        rows = [i for i, p in enumerate(partition) if p == code]
        assert ds.images.shape == (len(rows), 3, 16, 16)
        assert ds.classes == ["not Smiling", "Smiling"]
        assert ds.labels.tolist() == [int(values[i, smiling] > 0) for i in rows]
        assert ds.extra["attribute_names"] == CELEBA_ATTRS
        # image i was painted red = 20 * i: the right files went to the right split
        reds = ds.images[:, 0].float().mean((1, 2))
        assert reds.tolist() == pytest.approx([20.0 * i for i in rows], abs=6)


def test_celeba_two_attributes_make_four_classes(tmp_path):
    info = make_celeba(tmp_path)
    ds = load(
        "celeba",
        "train",
        root=tmp_path,
        download=False,
        attributes=["Smiling", "Male"],
        image_size=8,
    )
    assert ds.classes == [
        "not Smiling, not Male",
        "Smiling, not Male",
        "not Smiling, Male",
        "Smiling, Male",
    ]
    rows = [i for i, p in enumerate(info["partition"]) if p == 0]
    v = info["values"]
    want = [int(v[i, 2] > 0) + 2 * int(v[i, 1] > 0) for i in rows]
    assert ds.labels.tolist() == want


def test_celeba_unknown_attribute(tmp_path):
    make_celeba(tmp_path)
    with pytest.raises(ConfigError, match="unknown attribute.*Smilling.*choose from"):
        load(
            "celeba", "train", root=tmp_path, download=False, attributes=["Smilling"], image_size=8
        )


def test_celeba_truncated_attribute_file(tmp_path):
    make_celeba(tmp_path)
    path = tmp_path / "list_attr_celeba.txt"
    path.write_text("\n".join(path.read_text().splitlines()[:-2]))
    with pytest.raises(DataError, match="header says 9 images but 7 lines follow") as err:
        load("celeba", "train", root=tmp_path, download=False, image_size=8)
    assert str(path) in str(err.value)


def test_celeba_missing_image(tmp_path):
    make_celeba(tmp_path)
    (tmp_path / "img_align_celeba" / "000004.jpg").unlink()
    with pytest.raises(DataError, match=r"000004.jpg: missing"):
        load("celeba", "train", root=tmp_path, download=False, image_size=8)


def test_celeba_corrupt_zip(tmp_path):
    make_celeba(tmp_path, as_zip=True)
    path = tmp_path / "img_align_celeba.zip"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataError, match="not a readable zip archive"):
        load("celeba", "train", root=tmp_path, download=False, image_size=8)


def test_celeba_unreadable_image_in_zip(tmp_path):
    make_celeba(tmp_path)
    with zipfile.ZipFile(tmp_path / "img_align_celeba.zip", "w") as zf:
        for f in sorted((tmp_path / "img_align_celeba").iterdir()):
            data = b"not a jpeg" if f.name == "000001.jpg" else f.read_bytes()
            zf.writestr(f"img_align_celeba/{f.name}", data)
    import shutil

    shutil.rmtree(tmp_path / "img_align_celeba")
    with pytest.raises(
        DataError,
        match=r"img_align_celeba.zip:img_align_celeba/000001.jpg: "
        r"cannot read this image",
    ):
        load("celeba", "train", root=tmp_path, download=False, image_size=8)


def test_celeba_corrupt_partition_file(tmp_path):
    make_celeba(tmp_path)
    path = tmp_path / "list_eval_partition.txt"
    path.write_bytes(b"\xff\xfe\x00\x01" + bytes(range(256)))
    with pytest.raises(DataError) as err:
        load("celeba", "train", root=tmp_path, download=False, image_size=8)
    msg = str(err.value)
    assert str(path) in msg and "not a text file" in msg and "0|1|2" in msg


@pytest.mark.parametrize(
    "options, needle",
    [
        ({"imagesize": 8}, "unknown option(s) 'imagesize' (did you mean 'image_size'?)"),
        ({"attribute": ["Smiling"]}, "'attribute' (did you mean 'attributes'?)"),
        ({"image_size": "abc"}, "image_size must be a positive int"),
        ({"image_size": (8, 0)}, "image_size must be a positive int"),
        ({"attributes": 5}, "attributes must be an attribute name or a list of names"),
    ],
    ids=["misspelt-size", "misspelt-attributes", "size-str", "size-zero", "attributes-int"],
)
def test_celeba_bad_options_are_config_errors(tmp_path, options, needle):
    make_celeba(tmp_path)
    with pytest.raises(ConfigError) as err:
        load("celeba", "train", root=tmp_path, download=False, **{"image_size": 8, **options})
    assert needle in str(err.value)


# ---------------------------------------------------------------- image folder


def _write_folder(root, sizes=((12, 10),) * 3, mode="RGB"):
    from PIL import Image

    for c, name in enumerate(["cat", "dog"]):
        (root / name).mkdir(parents=True)
        for i, size in enumerate(sizes):
            img = Image.new(mode, size, (40 * c + i, 10, 200) if mode == "RGB" else 40 * c + i)
            img.save(root / name / f"{i}.{'png' if i % 2 else 'jpg'}")


def test_image_folder_end_to_end(tmp_path):
    _write_folder(tmp_path)
    (tmp_path / "notes.txt").write_text("not an image, ignored")
    ds = load("image-folder", root=tmp_path)
    assert ds.classes == ["cat", "dog"]
    assert ds.images.shape == (6, 3, 10, 12)
    assert ds.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert ds.images[0, 2].float().mean() == pytest.approx(200, abs=3)
    assert ds.images[3, 0].float().mean() == pytest.approx(40, abs=3)


def test_image_folder_resize_grayscale_and_splits(tmp_path):
    _write_folder(tmp_path / "train", sizes=((12, 10), (30, 20)), mode="L")
    _write_folder(tmp_path / "test", sizes=((8, 8),), mode="L")
    train = load("image-folder", "train", root=tmp_path, image_size=8)
    test = load("image-folder", "test", root=tmp_path, image_size=8)
    assert train.images.shape == (4, 1, 8, 8) and test.images.shape == (2, 1, 8, 8)
    assert train.source == tmp_path / "train"


def test_image_folder_mixed_sizes_need_image_size(tmp_path):
    _write_folder(tmp_path, sizes=((12, 10), (30, 20)))
    with pytest.raises(DataError, match="pass image_size=N"):
        load("image-folder", root=tmp_path)


def test_image_folder_without_images(tmp_path):
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "readme.txt").write_text("x")
    with pytest.raises(DataError) as err:
        load("image-folder", root=tmp_path)
    msg = str(err.value)
    assert str(tmp_path) in msg and "no images found" in msg and "<class name>/*.png" in msg


def test_image_folder_unreadable_image(tmp_path):
    _write_folder(tmp_path)
    bad = tmp_path / "dog" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    with pytest.raises(DataError) as err:
        load("image-folder", root=tmp_path)
    assert str(bad) in str(err.value) and "cannot read this image" in str(err.value)


def test_image_folder_needs_root_and_test_folder(tmp_path):
    with pytest.raises(ConfigError, match="needs root="):
        load("image-folder")
    _write_folder(tmp_path)
    with pytest.raises(DataError, match="no 'test' folder.*split_validation"):
        load("image-folder", "test", root=tmp_path)


def _images(folder, n, colour=(0, 0, 0)):
    from PIL import Image

    folder.mkdir(parents=True)
    for i in range(n):
        Image.new("RGB", (6, 6), colour).save(folder / f"{i}.png")


def test_image_folder_class_numbers_agree_between_splits(tmp_path):
    # train: cat, dog, fox and an empty eel/; test: cat, fox and an empty dog/
    for name, colour in (("cat", (10, 0, 0)), ("dog", (20, 0, 0)), ("fox", (30, 0, 0))):
        _images(tmp_path / "train" / name, 2, colour)
    (tmp_path / "train" / "eel").mkdir()
    (tmp_path / "train" / ".ipynb_checkpoints").mkdir()  # Jupyter's, not a class
    _images(tmp_path / "test" / "cat", 1, (10, 0, 0))
    _images(tmp_path / "test" / "fox", 3, (30, 0, 0))
    (tmp_path / "test" / "dog").mkdir()
    train = load("image-folder", "train", root=tmp_path)
    test = load("image-folder", "test", root=tmp_path)
    assert train.classes == test.classes == ["cat", "dog", "eel", "fox"]
    assert train.class_counts() == [2, 2, 0, 2]
    assert test.labels.tolist() == [0, 3, 3, 3]
    # the label means the same class in both splits: fox images (red 30) are label 3
    assert train.images[train.labels == 3, 0].float().mean() == pytest.approx(30, abs=2)
    assert test.images[test.labels == 3, 0].float().mean() == pytest.approx(30, abs=2)


def test_image_folder_test_class_missing_from_train(tmp_path):
    _images(tmp_path / "train" / "cat", 1)
    _images(tmp_path / "test" / "cat", 1)
    _images(tmp_path / "test" / "owl", 2)
    with pytest.raises(DataError) as err:
        load("image-folder", "test", root=tmp_path)
    msg = str(err.value)
    assert str(tmp_path / "test" / "owl") in msg and "'owl' is not a class" in msg
    assert "expected one of cat" in msg


@pytest.mark.parametrize(
    "options, needle",
    [
        ({"grayscal": True}, "'grayscal' (did you mean 'grayscale'?)"),
        ({"image_size": "abc"}, "image_size must be a positive int"),
        ({"grayscale": "yes"}, "grayscale must be True, False or None"),
    ],
    ids=["misspelt", "size-str", "grayscale-str"],
)
def test_image_folder_bad_options_are_config_errors(tmp_path, options, needle):
    _write_folder(tmp_path)
    with pytest.raises(ConfigError) as err:
        load("image-folder", root=tmp_path, **options)
    assert needle in str(err.value)


def test_cli_info_on_flat_image_folder_and_with_test(tmp_path, capsys):
    from resnetlab.cli import main

    _write_folder(tmp_path / "flat")
    assert main(["data", "info", "image-folder", "--data-dir", str(tmp_path / "flat")]) == 0
    out = capsys.readouterr().out
    assert "[train]" in out and "samples:   6" in out and "[test]" not in out
    _write_folder(tmp_path / "split" / "train")
    _write_folder(tmp_path / "split" / "test", sizes=((12, 10),))
    assert main(["data", "info", "image-folder", "--data-dir", str(tmp_path / "split")]) == 0
    out = capsys.readouterr().out
    assert "[train]" in out and "[test]" in out and "samples:   2" in out
