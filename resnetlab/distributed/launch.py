"""Start N ranks of a job on this machine, with nothing listening beyond loopback.

    resnetlab train --nproc-per-node 2 --epochs 3      # what the CLI does with this:
    launch_local([sys.executable, "-m", "resnetlab", "train", "--epochs", "3"], nproc=2)

torchrun's agent works too, but it opens its own sockets on every interface (its
rendezvous store and, with ``--standalone``, a second one). This launcher is the agent
cut to what one machine needs: it hosts the job's store on 127.0.0.1 alone, starts the
ranks with the variables torchrun would set (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``,
``MASTER_ADDR``, ``MASTER_PORT``, and ``TORCHELASTIC_USE_AGENT_STORE`` so that they use
its store), keeps gloo on the loopback interface, and ends the job when a rank fails: the
others get ``grace_s`` to notice the lost peer and say so, then SIGTERM, then SIGKILL.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence

from resnetlab.distributed.rendezvous import AGENT_STORE_VAR, host_store, loopback_interface
from resnetlab.errors import ConfigError

log = logging.getLogger(__name__)

HOST = "127.0.0.1"


def rank_environment(
    base: Mapping[str, str], *, rank: int, nproc: int, port: int
) -> dict[str, str]:
    """What rank ``rank`` of ``nproc`` finds in its environment (torchrun's names)."""
    env = dict(base)
    env.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(nproc),
        LOCAL_WORLD_SIZE=str(nproc),
        GROUP_RANK="0",
        MASTER_ADDR=HOST,
        MASTER_PORT=str(port),
        TORCHELASTIC_RESTART_COUNT="0",
        **{AGENT_STORE_VAR: "True"},
    )
    if not env.get("GLOO_SOCKET_IFNAME"):
        name = loopback_interface()
        if name is not None:
            env["GLOO_SOCKET_IFNAME"] = name
    return env


def _end(procs: Sequence[subprocess.Popen[bytes]], grace_s: float) -> None:
    """SIGTERM every rank still running, SIGKILL those still there after ``grace_s``."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for p in procs:
        try:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _watch(procs: Sequence[subprocess.Popen[bytes]], grace_s: float) -> int:
    """Wait for the ranks; the job's exit status (the first failing rank's, else 0)."""
    failed_at: float | None = None
    status = 0
    while True:
        codes = [p.poll() for p in procs]
        if all(c is not None for c in codes):
            return status
        bad = [c for c in codes if c not in (None, 0)]
        if bad and failed_at is None:
            failed_at, status = time.monotonic(), bad[0]
            log.warning("a rank exited with status %s; ending the job", bad[0])
        if failed_at is not None and time.monotonic() - failed_at > grace_s:
            _end(procs, grace_s=5.0)
            return status
        try:
            procs[codes.index(None)].wait(timeout=0.2)
        except subprocess.TimeoutExpired:
            pass


def launch_local(
    command: Sequence[str],
    nproc: int,
    *,
    env: Mapping[str, str] | None = None,
    grace_s: float = 30.0,
    timeout_s: float = 60.0,
) -> int:
    """Run ``command`` as ranks 0..nproc-1 of one job on this machine; its exit status.

    SIGTERM to this process is passed on to every rank (Ctrl-C reaches them directly).
    """
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise ConfigError(f"--nproc-per-node {nproc!r}: must be a positive number of processes")
    store = host_store(HOST, timeout_s=timeout_s)  # kept alive until every rank is done
    base = dict(os.environ if env is None else env)
    procs: list[subprocess.Popen[bytes]] = []

    def forward(signum: int, _frame: object) -> None:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    def ignore(signum: int, _frame: object) -> None:
        # Ctrl-C reaches the ranks straight from the terminal (one process group); this
        # process waits for them to end cleanly instead of leaving them behind.
        log.info("interrupted: waiting for the ranks to stop")

    old = {}
    if threading.current_thread() is threading.main_thread():
        old = {signal.SIGINT: signal.signal(signal.SIGINT, ignore)}
        old[signal.SIGTERM] = signal.signal(signal.SIGTERM, forward)
    try:
        for rank in range(nproc):
            rank_env = rank_environment(base, rank=rank, nproc=nproc, port=store.port)
            procs.append(subprocess.Popen(list(command), env=rank_env))
        return _watch(procs, grace_s)
    finally:
        _end(procs, grace_s=5.0)
        for s, handler in old.items():
            signal.signal(s, handler)
        del store
