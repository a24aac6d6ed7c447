"""Downloads under faults: an oversized or endless answer is cut off at the file's size;
``$RESNETLAB_MIRROR`` / ``$RESNETLAB_MIRROR_<DATASET>`` point downloads elsewhere."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from datafiles import closed_port, idx_bytes

from resnetlab.data import load
from resnetlab.data.download import download_file, mirror_env, source_url
from resnetlab.data.spec import DATASETS, MNIST, RemoteFile
from resnetlab.errors import DataError

pytestmark = pytest.mark.timeout(120)

SIZE = 100 * 1024  # the file's published size
BODY = bytes(range(256)) * (SIZE // 256)
FLOOD = 64 << 20  # what a wrong server sends at most: 640 times the file


class Flood:
    """A server on 127.0.0.1 that answers any GET with FLOOD bytes and no Content-Length
    (the end is the connection's close), counting what it managed to send."""

    def __init__(self) -> None:
        self.sent = 0
        flood = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                self.send_response(200)
                self.end_headers()
                block = b"<html>not the file</html>" * 40_000  # ~1 MB
                try:
                    while flood.sent < FLOOD:
                        self.wfile.write(block)
                        flood.sent += len(block)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client hung up: what we want

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/blob.bin"


@pytest.fixture
def flood() -> Iterator[Flood]:
    server = Flood()
    thread = threading.Thread(target=server.httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()
    thread.join(5)


def _remote(url: str) -> RemoteFile:
    return RemoteFile("blob.bin", url, sha256=hashlib.sha256(BODY).hexdigest(), size=SIZE)


def test_an_endless_answer_is_cut_off_at_the_files_size(flood: Flood, tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        download_file(_remote(flood.url), tmp_path, progress=False)
    msg = str(err.value)
    assert f"sent over {SIZE} bytes" in msg and flood.url in msg and "stopped" in msg
    assert list(tmp_path.iterdir()) == []  # no .part left, nothing under the final name


def test_an_oversized_announced_answer_is_refused_before_reading(file_server, tmp_path) -> None:
    file_server.routes["/blob.bin"] = BODY * 20  # 2 MB announced for a 100 KiB file
    remote = _remote(file_server.url("/blob.bin"))
    with pytest.raises(DataError, match=f"announced {20 * SIZE} bytes, more than the {SIZE}"):
        download_file(remote, tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_a_right_sized_answer_still_downloads(file_server, tmp_path) -> None:
    file_server.routes["/blob.bin"] = BODY
    path = download_file(_remote(file_server.url("/blob.bin")), tmp_path, progress=False)
    assert path.read_bytes() == BODY


def _tiny_mnist(folder: Path) -> dict[str, bytes]:
    """The four MNIST files (12 images per split) as bytes, written into ``folder``."""
    rng = np.random.default_rng(0)
    files = {}
    for prefix in ("train", "t10k"):
        images = rng.integers(0, 256, (12, 28, 28), dtype=np.uint8)
        labels = (np.arange(12) % 10).astype(np.uint8)
        files[f"{prefix}-images-idx3-ubyte.gz"] = gzip.compress(idx_bytes(images))
        files[f"{prefix}-labels-idx1-ubyte.gz"] = gzip.compress(idx_bytes(labels))
    folder.mkdir(parents=True, exist_ok=True)
    for name, body in files.items():
        (folder / name).write_bytes(body)
    return files


@pytest.fixture
def offline_mnist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, bytes]:
    """MNIST whose official URLs refuse connections; returns the files a mirror serves."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("RESNETLAB_DATA", str(tmp_path / "nothing"))
    monkeypatch.setattr("resnetlab.data.locate.SYSTEM_DIRS", (tmp_path / "sys",))
    for var in ("RESNETLAB_MIRROR", mirror_env("mnist")):
        monkeypatch.delenv(var, raising=False)
    files = _tiny_mnist(tmp_path / "made")
    port = closed_port()
    spec = dataclasses.replace(
        MNIST,
        files={
            split: tuple(
                dataclasses.replace(
                    r,
                    url=f"http://127.0.0.1:{port}/{r.name}",
                    sha256=hashlib.sha256(files[r.name]).hexdigest(),
                    size=len(files[r.name]),
                    aliases=(),
                )
                for r in remotes
            )
            for split, remotes in MNIST.files.items()
        },
    )
    monkeypatch.setitem(DATASETS, "mnist", spec)
    return files


def test_mirror_base_url_with_a_folder_per_dataset(
    offline_mnist, file_server, tmp_path, monkeypatch
) -> None:
    for name, body in offline_mnist.items():
        file_server.routes[f"/mirror/mnist/{name}"] = body
    monkeypatch.setenv("RESNETLAB_MIRROR", file_server.url("/mirror/"))
    ds = load("mnist", "test", progress=False)
    assert len(ds) == 12 and ds.source == tmp_path / "cache" / "resnetlab" / "mnist"
    assert [p for p, _ in file_server.requests] == [
        "/mirror/mnist/t10k-images-idx3-ubyte.gz",
        "/mirror/mnist/t10k-labels-idx1-ubyte.gz",
    ]


def test_per_dataset_mirror_wins_and_file_urls_work(offline_mnist, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("RESNETLAB_MIRROR", f"http://127.0.0.1:{closed_port()}")  # not used
    monkeypatch.setenv("RESNETLAB_MIRROR_MNIST", (tmp_path / "made").as_uri())
    assert mirror_env("fashion-mnist") == "RESNETLAB_MIRROR_FASHION_MNIST"
    assert len(load("mnist", "train", progress=False)) == 12


def test_a_mirror_serving_other_bytes_is_rejected_by_checksum(
    offline_mnist, file_server, monkeypatch
) -> None:
    for name, body in offline_mnist.items():
        file_server.routes[f"/mnist/{name}"] = body[:-1] + bytes([body[-1] ^ 1])
    monkeypatch.setenv("RESNETLAB_MIRROR", file_server.url(""))
    with pytest.raises(DataError, match="checksum mismatch after download from http://127"):
        load("mnist", "test", progress=False)


def test_a_dead_mirror_is_named_in_the_error(offline_mnist, monkeypatch) -> None:
    dead = f"http://127.0.0.1:{closed_port()}/m"
    monkeypatch.setenv("RESNETLAB_MIRROR", dead)
    with pytest.raises(DataError, match=f"download of {dead}/mnist/t10k-images"):
        load("mnist", "test", progress=False)
    remote = DATASETS["mnist"].files["test"][0]
    assert source_url(remote) == remote.url  # no dataset named: the official URL
