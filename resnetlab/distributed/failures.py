"""The error a rank raises when a peer died or stopped answering, and how to spot one.

A collective (all-reduce in ``backward``, a barrier, a metric reduction) with a dead peer
fails in one of two ways: fast, when the peer's process is gone and its sockets close
("Connection reset by peer"), or after the process-group timeout, when the peer hangs.
PyTorch's messages name an address, not a rank; :class:`RankLostError` names the rank.
"""

from __future__ import annotations

from collections.abc import Sequence

from resnetlab.errors import ResnetlabError

# Exit status used by the watchdog's last-resort exit (EX_TEMPFAIL: "try again", i.e. resume).
EXIT_RANK_LOST = 75

# Fragments that only torch.distributed's own RuntimeErrors carry: the source paths and
# names of gloo, NCCL, c10d and the TCPStore ("[third_party/gloo/.../pair.cc:537] Read
# error ...: Connection reset by peer"), and the messages gloo and NCCL raise without
# them ("Application timeout caused pair closure" when a peer hangs past the timeout).
# Generic words ("socket", "timed out", "connection") are not enough: a local error of
# the training code may use them too, and must not be reported as a lost peer.
_FAILURE_MARKERS = (
    "gloo",
    "nccl",
    "c10d",
    "tcpstore",
    "caused pair closure",
    "watchdog caught collective operation timeout",
)


class DistributedError(ResnetlabError):
    """A distributed job that cannot start or cannot go on (rendezvous, process group)."""


class RankLostError(DistributedError):
    """A peer rank died or stopped responding during a collective operation."""

    def __init__(
        self, message: str, *, lost_ranks: Sequence[int] = (), operation: str = ""
    ) -> None:
        super().__init__(message)
        # Ranks that stopped sending heartbeats (empty when it could not be told which).
        self.lost_ranks = tuple(lost_ranks)
        # What this rank was doing when it noticed ("all_reduce of metrics", "training").
        self.operation = operation


def is_collective_failure(exc: BaseException) -> bool:
    """True for the errors torch.distributed raises when a peer or the store is lost.

    A ``torch.distributed.DistError`` (backend, network and store errors), or a
    RuntimeError whose message comes from gloo, NCCL, c10d or the TCPStore. Only
    :meth:`DistContext.guard` asks, i.e. only for errors raised while collectives run.
    """
    try:
        import torch.distributed as dist

        dist_error = getattr(dist, "DistError", None)
        if dist_error is not None and isinstance(exc, dist_error):
            return True
    except ImportError:  # pragma: no cover - torch without distributed support
        pass
    if not isinstance(exc, RuntimeError):
        return False
    text = str(exc).lower()
    return any(marker in text for marker in _FAILURE_MARKERS)


def describe_loss(
    lost: Sequence[int],
    *,
    operation: str,
    timeout_s: float,
    timed_out: bool,
    store_unreachable: bool = False,
    store_address: str = "",
) -> str:
    """The message of a :class:`RankLostError`: who, while doing what, and what to do."""
    fix = "restart the job with --resume (it continues from the last checkpoint)"
    during = f" during {operation}" if operation else ""
    if store_unreachable:
        return (
            f"rank 0 stopped responding{during}: the rendezvous store at {store_address} "
            f"(hosted by rank 0's machine or the torchrun agent) cannot be reached; {fix}"
        )
    if not lost:
        return (
            f"a peer rank stopped responding{during} (timeout {timeout_s:g} s), and "
            f"every rank still sends heartbeats: look for an error in the other ranks' "
            f"output; {fix}"
        )
    names = ", ".join(str(r) for r in lost)
    who = f"rank {names}" if len(lost) == 1 else f"ranks {names}"
    how = f"stopped responding (timeout {timeout_s:g} s)" if timed_out else "died"
    return f"{who} {how}{during}; {fix}"
