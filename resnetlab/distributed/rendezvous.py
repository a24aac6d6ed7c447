"""The job's key-value store, listening only where the user said: the rendezvous of the ranks.

``torch.distributed.TCPStore`` binds its server to every interface whatever host it is
given, so a job started with ``MASTER_ADDR=127.0.0.1`` would still accept connections
from the network, with no authentication. Here the socket is bound first, to the
address of ``MASTER_ADDR`` alone, and handed to the store (``master_listen_fd``).
Gloo's own pair sockets follow the same rule: with a loopback master every rank is on
this machine, so they are kept on the loopback interface too.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
from collections.abc import MutableMapping
from datetime import timedelta
from typing import Any

from resnetlab.errors import ConfigError

log = logging.getLogger(__name__)

# Set by torchrun's agent: the store is the agent's, the workers are only its clients.
AGENT_STORE_VAR = "TORCHELASTIC_USE_AGENT_STORE"


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) resolves to this machine's loopback only."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def bind_listener(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``'s address only (port 0: any free port)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )[0]
    except socket.gaierror as exc:
        raise ConfigError(
            f"MASTER_ADDR={host!r} does not resolve ({exc}); give rank 0's address or "
            "hostname, or 127.0.0.1 for a job on this machine"
        ) from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(512)
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot listen on {host}:{port} for the job's store ({exc.strerror}); pick "
            "another MASTER_PORT, or an address of this machine as MASTER_ADDR"
        ) from None
    return sock


def loopback_interface() -> str | None:
    """The name of the interface that holds 127.0.0.1 (``lo`` on Linux), if any."""
    import psutil

    for name, addrs in psutil.net_if_addrs().items():
        if any(a.family == socket.AF_INET and a.address == "127.0.0.1" for a in addrs):
            return name
    return None


def keep_gloo_on_loopback(master_addr: str, environ: MutableMapping[str, str]) -> None:
    """With a loopback master, make gloo bind its sockets to the loopback interface.

    Left alone, gloo binds the address this machine's hostname resolves to, which can be
    a network interface. A ``GLOO_SOCKET_IFNAME`` the user set is kept.
    """
    if environ.get("GLOO_SOCKET_IFNAME") or not is_loopback(master_addr):
        return
    name = loopback_interface()
    if name is not None:
        environ["GLOO_SOCKET_IFNAME"] = name


def create_store(
    master_addr: str,
    master_port: int,
    *,
    rank: int,
    world_size: int,
    timeout_s: float,
    restart_count: int = 0,
    environ: MutableMapping[str, str] | None = None,
) -> Any:
    """The job's store for ``init_process_group(store=...)`` (a ``TCPStore`` or prefix of one).

    Under torchrun the agent hosts the store and every rank is a client (as torch's own
    ``env://`` does, keys are namespaced by the restart count). Otherwise rank 0 hosts
    it, on a socket bound to ``master_addr``'s address alone.
    """
    import torch.distributed as dist

    env = os.environ if environ is None else environ
    timeout = timedelta(seconds=timeout_s)
    if env.get(AGENT_STORE_VAR, "").lower() in ("1", "true"):
        client = dist.TCPStore(master_addr, master_port, world_size, False, timeout=timeout)
        return dist.PrefixStore(f"/worker/attempt_{restart_count}", client)
    if rank != 0:
        return dist.TCPStore(master_addr, master_port, world_size, False, timeout=timeout)
    sock = bind_listener(master_addr, master_port)
    # detach(): the store owns the descriptor from now on and closes it itself.
    return dist.TCPStore(
        master_addr,
        sock.getsockname()[1],
        world_size,
        True,
        timeout=timeout,
        wait_for_workers=False,
        master_listen_fd=sock.detach(),
    )


def host_store(host: str = "127.0.0.1", port: int = 0, *, timeout_s: float = 60.0) -> Any:
    """A store server in this process, on ``host`` alone (a launcher's, like torchrun's agent)."""
    import torch.distributed as dist

    sock = bind_listener(host, port)
    bound = sock.getsockname()[1]
    return dist.TCPStore(
        host,
        bound,
        None,
        True,
        timeout=timedelta(seconds=timeout_s),
        wait_for_workers=False,
        master_listen_fd=sock.detach(),
    )
