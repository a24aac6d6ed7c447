"""Finding files in the documented order and downloading them from a local HTTP server."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib

import pytest
import torch
from datafiles import closed_port, idx_bytes, make_mnist_dir

from resnetlab.data import load
from resnetlab.data.download import download_file
from resnetlab.data.locate import candidate_dirs
from resnetlab.data.spec import DATASETS, FASHION_MNIST, MNIST, RemoteFile
from resnetlab.errors import DataError

BODY = bytes(range(256)) * 400  # 100 KiB


def _remote(server, body=BODY, sha256=None, name="blob.bin"):
    server.routes[f"/{name}"] = body
    return RemoteFile(
        name,
        server.url(f"/{name}"),
        sha256=sha256 or hashlib.sha256(body).hexdigest(),
        size=len(body),
    )


def test_good_download_is_verified_and_renamed(file_server, tmp_path):
    remote = _remote(file_server)
    path = download_file(remote, tmp_path, progress=False)
    assert path == tmp_path / "blob.bin" and path.read_bytes() == BODY
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blob.bin"]


def test_checksum_mismatch_leaves_nothing(file_server, tmp_path):
    remote = _remote(file_server, sha256="0" * 64)
    with pytest.raises(DataError) as err:
        download_file(remote, tmp_path, progress=False)
    msg = str(err.value)
    assert "checksum mismatch" in msg and "0" * 64 in msg
    assert hashlib.sha256(BODY).hexdigest() in msg and "sha256sum blob.bin" in msg
    assert list(tmp_path.iterdir()) == []


def test_md5_used_when_no_sha256(file_server, tmp_path):
    file_server.routes["/m.bin"] = BODY
    good = RemoteFile("m.bin", file_server.url("/m.bin"), md5=hashlib.md5(BODY).hexdigest())
    assert download_file(good, tmp_path, progress=False).read_bytes() == BODY
    bad = dataclasses.replace(good, name="n.bin", md5="f" * 32)
    with pytest.raises(DataError, match="expected md5 f{32}"):
        download_file(bad, tmp_path, progress=False)


def test_dropped_connection_leaves_no_file_under_final_name_and_resumes(file_server, tmp_path):
    remote = _remote(file_server)
    file_server.drop.add("/blob.bin")
    with pytest.raises(DataError, match="failed.*next attempt resumes"):
        download_file(remote, tmp_path, progress=False)
    assert not (tmp_path / "blob.bin").exists()
    part = tmp_path / "blob.bin.part"
    assert 0 < part.stat().st_size < len(BODY)
    half = part.stat().st_size
    path = download_file(remote, tmp_path, progress=False)
    assert path.read_bytes() == BODY
    assert file_server.requests[-1] == ("/blob.bin", f"bytes={half}-")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blob.bin"]


def test_http_error_and_unreachable_server(file_server, tmp_path):
    missing = RemoteFile("x.bin", file_server.url("/nope.bin"), sha256="0" * 64)
    with pytest.raises(DataError, match="nope.bin failed"):
        download_file(missing, tmp_path, progress=False)
    file_server.httpd.shutdown()  # stop serve_forever first, then close its socket:
    file_server.httpd.server_close()  # nothing listens any more
    with pytest.raises(DataError, match="failed"):
        download_file(_remote(file_server), tmp_path, progress=False, timeout=2)
    assert list(tmp_path.iterdir()) == []


def _mnist_on_server(server, n=12):
    """Serve a tiny MNIST under the official names; return a spec pointing at it."""
    files = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        out = []
        for kind, array in (
            ("images-idx3", torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8).numpy()),
            ("labels-idx1", (torch.arange(n) % 10).to(torch.uint8).numpy()),
        ):
            name = f"{prefix}-{kind}-ubyte.gz"
            body = gzip.compress(idx_bytes(array))
            out.append(_remote(server, body, name=name))
        files[split] = tuple(dataclasses.replace(r, aliases=()) for r in out)
    return dataclasses.replace(MNIST, files=files)


def test_load_downloads_into_user_cache(file_server, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setitem(DATASETS, "mnist", _mnist_on_server(file_server))
    ds = load("mnist", "test", progress=False)
    folder = tmp_path / "cache" / "resnetlab" / "mnist"
    assert ds.source == folder and len(ds) == 12
    assert (folder / "t10k-images-idx3-ubyte.gz").exists()
    # the second load finds the files: no new request
    count = len(file_server.requests)
    assert len(load("mnist", "test", progress=False)) == 12
    assert len(file_server.requests) == count


def test_checksum_mismatch_through_load_keeps_no_file(file_server, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    spec = _mnist_on_server(file_server)
    spec = dataclasses.replace(
        spec,
        files={
            s: tuple(dataclasses.replace(r, sha256="0" * 64) for r in fs)
            for s, fs in spec.files.items()
        },
    )
    monkeypatch.setitem(DATASETS, "mnist", spec)
    with pytest.raises(DataError) as err:
        load("mnist", "train", progress=False)
    msg = str(err.value)
    assert "Download failed" not in msg  # a checksum error is not a network failure
    assert "checksum mismatch" in msg
    assert not (tmp_path / "cache" / "resnetlab" / "mnist" / "train-images-idx3-ubyte.gz").exists()


def test_no_network_error_names_files_places_and_apt(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("RESNETLAB_DATA", str(tmp_path / "data"))
    monkeypatch.setattr("resnetlab.data.locate.SYSTEM_DIRS", (tmp_path / "sys",))
    port = closed_port()  # refused at once: no 30 s wait on a port someone might serve
    dead = {
        s: tuple(dataclasses.replace(r, url=f"http://127.0.0.1:{port}/{r.name}") for r in fs)
        for s, fs in FASHION_MNIST.files.items()
    }
    monkeypatch.setitem(DATASETS, "fashion-mnist", dataclasses.replace(FASHION_MNIST, files=dead))
    with pytest.raises(DataError) as err:
        load("fashion-mnist", "train", progress=False)
    msg = str(err.value)
    for needle in (
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        str(tmp_path / "data" / "fashion-mnist"),
        "$RESNETLAB_DATA",
        str(tmp_path / "cache" / "resnetlab" / "fashion-mnist"),
        str(tmp_path / "sys" / "fashion-mnist"),
        "Download failed",
        "apt-get install dataset-fashion-mnist",
        "RESNETLAB_DATA=/data",
    ):
        assert needle in msg, needle
    assert not any((tmp_path / "cache").rglob("*.gz"))


def test_search_order(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("RESNETLAB_DATA", str(tmp_path / "env"))
    monkeypatch.setattr("resnetlab.data.locate.SYSTEM_DIRS", (tmp_path / "sys",))
    assert [c.why for c in candidate_dirs("mnist")] == ["$RESNETLAB_DATA", "user cache", "system"]
    make_mnist_dir(tmp_path / "sys" / "mnist")
    assert load("mnist", "test", download=False).source == tmp_path / "sys" / "mnist"
    make_mnist_dir(tmp_path / "cache" / "resnetlab" / "mnist")
    assert load("mnist", "test", download=False).source == tmp_path / "cache/resnetlab/mnist"
    make_mnist_dir(tmp_path / "env" / "mnist")
    assert load("mnist", "test", download=False).source == tmp_path / "env" / "mnist"
    make_mnist_dir(tmp_path / "explicit")
    assert load("mnist", "test", root=tmp_path / "explicit").source == tmp_path / "explicit"
