"""Listen addresses: is one free to bind now, and free ports for daemons that bind later."""

from __future__ import annotations

import random
import socket
from pathlib import Path

__all__ = ["BindError", "check_bindable", "free_ports"]


class BindError(Exception):
    """The listen address could not be bound."""


def check_bindable(address: str) -> None:
    """Fail with the OS's reason before gRPC tries (and logs its own noise to stderr)."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    try:
        infos = socket.getaddrinfo(host or None, int(port), type=socket.SOCK_STREAM)
    except (OSError, ValueError) as exc:
        raise BindError(f"cannot listen on {address}: {exc}") from None
    family, kind, proto, _, sockaddr = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(sockaddr)
        except OSError as exc:
            raise BindError(f"cannot listen on {address}: {exc.strerror}") from None


# Ports handed out by this process, so that two consortiums made one after the
# other (before either starts) never share one.
_handed_out: set[int] = set()
_LOWEST_PICKED_PORT = 10_000


def _ephemeral_range() -> tuple[int, int] | None:
    """The kernel's range for outgoing connections' local ports (Linux), else None."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return None


def free_ports(host: str, count: int) -> list[int]:
    """``count`` ports that are free on ``host`` now, for daemons that bind them later.

    A port from ``bind(port 0)`` comes from the ephemeral range, where the
    kernel also picks the local port of every outgoing connection: one of
    those can take it before the daemon starts ("Address already in use").
    Where the range is known, ports are therefore picked at random below it.
    """
    ephemeral = _ephemeral_range()
    if ephemeral is not None and ephemeral[0] - _LOWEST_PICKED_PORT >= 1000:
        candidates = list(range(_LOWEST_PICKED_PORT, ephemeral[0]))
        random.shuffle(candidates)
        chosen: list[int] = []
        for port in candidates:
            if port in _handed_out:
                continue
            try:
                check_bindable(f"{host}:{port}")  # as the daemon will bind it
            except BindError:
                continue
            chosen.append(port)
            if len(chosen) == count:
                _handed_out.update(chosen)
                return chosen
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
            sock.bind((host, 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()
