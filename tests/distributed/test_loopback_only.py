"""A job on one machine opens nothing beyond loopback (sockets read from /proc/net/tcp*).

torch's TCPStore listens on every interface whatever MASTER_ADDR says; resnetlab binds the
store's socket itself. Checked on the real processes of a real two-rank training run: every
listening socket of the job's process tree, sampled while it runs, is on 127.0.0.1 / ::1.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from ddp_launch import JOB, child_env, free_port, port_clash

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc/net/tcp"),
]


def _decode(hex_addr: str) -> str:
    """``0100007F:1F90`` -> ``127.0.0.1`` (the kernel's byte order: host words)."""
    host = hex_addr.split(":")[0]
    raw = bytes.fromhex(host)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    return socket.inet_ntop(socket.AF_INET6, words)


def listening_by_inode() -> dict[str, tuple[str, int]]:
    """Every listening TCP socket of the machine: inode -> (address, port)."""
    out = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":  # TCP_LISTEN
                out[fields[9]] = (_decode(fields[1]), int(fields[1].split(":")[1], 16))
    return out


def socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        pass
    return inodes


def listeners_of_tree(procs: list[subprocess.Popen]) -> set[tuple[int, str, int]]:
    """(pid, address, port) of every listening socket of these processes and their children."""
    pids = set()
    for p in procs:
        try:
            top = psutil.Process(p.pid)
            pids |= {top.pid, *(c.pid for c in top.children(recursive=True))}
        except psutil.NoSuchProcess:
            continue
    listening = listening_by_inode()
    return {
        (pid, *listening[inode])
        for pid in pids
        for inode in socket_inodes(pid)
        if inode in listening
    }


def watch_listeners(procs: list[subprocess.Popen], timeout: float = 600) -> tuple[set, str]:
    """Sample the tree's listeners until every process has ended; (all seen, output)."""
    seen: set[tuple[int, str, int]] = set()
    for p in procs:
        while p.poll() is None:
            seen |= listeners_of_tree(procs)
            try:
                p.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                pass
    output = ""
    for p in procs:
        out, _ = p.communicate(timeout=timeout)
        output += out or ""
    return seen, output


def beyond_loopback(seen: set[tuple[int, str, int]]) -> list[tuple[int, str, int]]:
    return sorted(s for s in seen if not ipaddress.ip_address(s[1]).is_loopback)


def test_ranks_started_by_hand_listen_on_the_master_address_only(
    tmp_path: Path, fashion_mnist_dir: Path
) -> None:
    for _attempt in range(3):
        port = free_port()
        procs = []
        for rank in range(2):
            env = child_env(
                RANK=str(rank),
                LOCAL_RANK=str(rank),
                WORLD_SIZE="2",
                MASTER_ADDR="127.0.0.1",
                MASTER_PORT=str(port),
            )
            cmd = [sys.executable, str(JOB), str(tmp_path), "--data", str(fashion_mnist_dir)]
            cmd += ["--steps", "4"]
            procs.append(
                subprocess.Popen(
                    cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
                )
            )
        seen, output = watch_listeners(procs)
        if not port_clash(output):
            break
    assert all(p.returncode == 0 for p in procs), output[-3000:]
    # Rank 0 hosted the store on MASTER_PORT: it was seen, and on loopback.
    assert any(port_ == port for _, _, port_ in seen), (seen, output[-2000:])
    assert not beyond_loopback(seen), f"listening beyond loopback: {beyond_loopback(seen)}"


def test_the_local_launcher_opens_nothing_beyond_loopback(
    tmp_path: Path, fashion_mnist_dir: Path
) -> None:
    code = (
        "import sys; from resnetlab.distributed.launch import launch_local; "
        "sys.exit(launch_local(sys.argv[1:], 2))"
    )
    cmd = [sys.executable, "-c", code, sys.executable, str(JOB), str(tmp_path)]
    cmd += ["--data", str(fashion_mnist_dir), "--steps", "4"]
    proc = subprocess.Popen(
        cmd, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    seen, output = watch_listeners([proc])
    assert proc.returncode == 0, output[-3000:]
    pids = {pid for pid, _, _ in seen}
    # The launcher's store and each rank's gloo listener were seen...
    assert proc.pid in pids and len(pids) >= 2, (seen, output[-2000:])
    # ... and none of them beyond loopback.
    assert not beyond_loopback(seen), f"listening beyond loopback: {beyond_loopback(seen)}"
    assert (tmp_path / "rank0.pt").exists() and (tmp_path / "rank1.pt").exists()


def test_train_nproc_per_node_opens_nothing_beyond_loopback(
    tmp_path: Path, fashion_mnist_dir: Path
) -> None:
    db = tmp_path / "runs.db"
    cmd = [sys.executable, "-m", "resnetlab", "train", "--nproc-per-node", "2"]
    cmd += ["--model", "resnetv2-micro", "--data-dir", str(fashion_mnist_dir), "--epochs", "1"]
    cmd += ["--train-limit", "256", "--val-size", "64", "--test-limit", "64"]
    cmd += ["--batch-size", "32", "--runs-db", str(db), "--live", "none", "--no-progress"]
    root = str(Path(__file__).resolve().parents[2])
    env = child_env(PYTHONPATH=root)
    proc = subprocess.Popen(
        cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    seen, output = watch_listeners([proc])
    assert proc.returncode == 0, output[-3000:]
    assert "2 ranks" in output and "status completed" in output, output[-2000:]
    pids = {pid for pid, _, _ in seen}
    assert proc.pid in pids and len(pids) >= 2, (seen, output[-2000:])  # launcher + ranks
    assert not beyond_loopback(seen), f"listening beyond loopback: {beyond_loopback(seen)}"
    from resnetlab.store import RunStore

    with RunStore(db) as store:
        (run,) = store.list_runs()  # rank 0 alone recorded it, once
        assert run.status == "completed" and run.config["world_size"] == 2
