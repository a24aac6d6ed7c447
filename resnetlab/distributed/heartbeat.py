"""Heartbeats through the rendezvous store: which peers are still alive.

Every rank runs one daemon thread that increments its own counter in the job's TCPStore
(the key-value store torchrun or rank 0 hosts at ``MASTER_ADDR:MASTER_PORT``) once per
``interval_s``. A counter that stops moving means the process died or hangs; counters
are compared on each rank's own clock, so machine clocks need not agree.

The thread is also the watchdog: it logs a peer that has been silent for
``warn_after_s``, and, as a last resort when the main thread is stuck somewhere no
timeout reaches, ends the process after ``exit_after_s`` with a message naming the
silent rank (status :data:`EXIT_RANK_LOST`).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from datetime import timedelta

from resnetlab.distributed.failures import EXIT_RANK_LOST, describe_loss

log = logging.getLogger(__name__)


class Heartbeat:
    """One rank's heartbeat sender and peer watcher (a daemon thread)."""

    def __init__(
        self,
        host: str,
        port: int,
        rank: int,
        world_size: int,
        *,
        prefix: str,
        interval_s: float = 1.0,
        warn_after_s: float = 30.0,
        exit_after_s: float | None = 120.0,
        store_timeout_s: float = 10.0,
    ) -> None:
        import torch.distributed as dist

        self.rank = rank
        self.world_size = world_size
        self.prefix = prefix
        self.interval_s = interval_s
        self.warn_after_s = warn_after_s
        self.exit_after_s = exit_after_s
        self.address = f"{host}:{port}"
        # Our own client connection, so heartbeats never queue behind a blocking call of
        # the process group on the default store connection.
        self.store = dist.TCPStore(
            host,
            port,
            is_master=False,
            wait_for_workers=False,
            timeout=timedelta(seconds=store_timeout_s),
        )
        self._lock = threading.Lock()  # one store request at a time from this object
        self._stop = threading.Event()
        self._armed = True  # cleared once the main thread knows (shutdown or RankLostError)
        self._thread: threading.Thread | None = None
        now = time.monotonic()
        self._last_seen: dict[int, tuple[int, float]] = {r: (-1, now) for r in range(world_size)}
        self._warned: set[int] = set()
        self._store_down_since: float | None = None

    def _key(self, kind: str, rank: int) -> str:
        return f"{self.prefix}/{kind}/{rank}"

    def start(self) -> None:
        """Send the first beat and start the thread."""
        self._beat()
        self._thread = threading.Thread(
            target=self._run, name=f"resnetlab-heartbeat-{self.rank}", daemon=True
        )
        self._thread.start()

    def disarm(self) -> None:
        """No last-resort exit any more: the main thread is handling the failure."""
        self._armed = False

    def stop(self) -> None:
        """Tell the peers this rank finished on purpose, then end the thread (idempotent)."""
        self._armed = False
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5 * self.interval_s + 5)
        try:
            with self._lock:
                self.store.set(self._key("done", self.rank), "1")
        except Exception:  # the store host may be gone already at the end of a job
            pass

    # -- store access -------------------------------------------------------------------
    def _beat(self) -> None:
        with self._lock:
            self.store.add(self._key("beat", self.rank), 1)

    def counters(self) -> dict[int, int]:
        """Heartbeat counter of every rank that has not finished on purpose."""
        out = {}
        with self._lock:
            for r in range(self.world_size):
                if self.store.check([self._key("done", r)]):
                    continue
                out[r] = int(self.store.add(self._key("beat", r), 0))
        return out

    def publish(self, name: str, value: bytes | str) -> None:
        """Store a small value under this rank's ``name`` (system metrics for rank 0)."""
        with self._lock:
            self.store.set(self._key(name, self.rank), value)

    def read_all(self, name: str) -> dict[int, bytes]:
        """The values ranks published under ``name`` (missing ranks left out)."""
        out = {}
        with self._lock:
            for r in range(self.world_size):
                key = self._key(name, r)
                if self.store.check([key]):
                    out[r] = self.store.get(key)
        return out

    # -- diagnosis ----------------------------------------------------------------------
    def silent_ranks(self, wait_s: float | None = None) -> list[int] | None:
        """Peers whose counter does not move over ``wait_s``; None if the store is gone."""
        wait_s = 3 * self.interval_s if wait_s is None else wait_s
        try:
            before = self.counters()
            time.sleep(wait_s)
            after = self.counters()
        except Exception:
            return None
        return sorted(
            r for r, n in before.items() if r != self.rank and r in after and after[r] == n
        )

    # -- the thread ---------------------------------------------------------------------
    def _run(self) -> None:
        checks_every = max(1, round(5.0 / self.interval_s)) if self.world_size > 8 else 1
        tick = 0
        while not self._stop.wait(self.interval_s):
            tick += 1
            try:
                self._beat()
                if tick % checks_every == 0:
                    self._watch(self.counters())
                self._store_down_since = None
            except Exception as exc:  # store unreachable: its host (rank 0's machine) is gone
                now = time.monotonic()
                if self._store_down_since is None:
                    self._store_down_since = now
                    log.debug("heartbeat: store %s unreachable: %s", self.address, exc)
                self._maybe_exit(now - self._store_down_since, [], store_down=True)

    def _watch(self, counters: dict[int, int]) -> None:
        now = time.monotonic()
        for r, n in counters.items():
            if r == self.rank:
                continue
            last_n, since = self._last_seen[r]
            if n != last_n:
                self._last_seen[r] = (n, now)
                self._warned.discard(r)
                continue
            silent = now - since
            if silent >= self.warn_after_s and r not in self._warned:
                self._warned.add(r)
                log.error("rank %d has sent no heartbeat for %.0f s (dead or hung?)", r, silent)
            self._maybe_exit(silent, [r], store_down=False)

    def _maybe_exit(self, silent_s: float, lost: list[int], *, store_down: bool) -> None:
        if not self._armed or self.exit_after_s is None or silent_s < self.exit_after_s:
            return
        message = describe_loss(
            lost,
            operation="",
            timeout_s=self.exit_after_s,
            timed_out=True,
            store_unreachable=store_down,
            store_address=self.address,
        )
        sys.stderr.write(f"error: (rank {self.rank}, watchdog) {message}\n")
        sys.stderr.flush()
        os._exit(EXIT_RANK_LOST)
