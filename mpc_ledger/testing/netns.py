"""Hosts on one LAN, made of Linux network namespaces on this machine, for multi-host tests.

A `Lan` makes one network namespace per host and one "switch" namespace that
holds a bridge. Each host is wired by one veth pair: `eth0`, with the host's
address, in the host's namespace, and its other end, a port of the bridge, in
the switch. Every link is created directly in its namespace, so nothing is
added to or changed in the caller's network namespace (the host's real
network). `cut(host)` sets the host's switch port down, which drops the
carrier of its `eth0` like a pulled cable; `restore(host)` sets it up again.

Processes run in a host with `lan.prefix(host) + argv` (`ip netns exec`); code
of this process reaches into a host with `lan.run_in(host, fn)`, which runs
``fn`` in a fresh thread that has joined the host's namespace (`setns` changes
the calling thread only; sockets created there stay in that namespace).

Needs root and iproute2 (`unavailable_reason()` says why not). Names carry a
random token so parallel runs do not collide; `close()` (or leaving the `with`
block) deletes every namespace this `Lan` made, and with them their links,
also after a failed start. Processes still running in a namespace keep it
alive after the delete: stop them first.
"""

from __future__ import annotations

import ctypes
import dataclasses
import ipaddress
import os
import secrets
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TypeVar

__all__ = ["Host", "Lan", "unavailable_reason"]

T = TypeVar("T")

_CLONE_NEWNET = 0x40000000
_NETNS_DIR = Path("/run/netns")
_IP_TIMEOUT_S = 10


@dataclasses.dataclass(frozen=True)
class Host:
    name: str
    namespace: str
    address: str  # IPv4, without the prefix length
    switch_port: str  # the veth end in the switch namespace


def _ip(*args: str) -> None:
    result = subprocess.run(
        ["ip", *args], capture_output=True, text=True, timeout=_IP_TIMEOUT_S, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"`ip {' '.join(args)}` failed: {result.stderr.strip()}")


def unavailable_reason() -> str | None:
    """Why a `Lan` cannot be made here (None: it can), found by trying a bridge in a namespace."""
    if not sys.platform.startswith("linux"):
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "creating network namespaces needs root"
    if shutil.which("ip") is None:
        return "iproute2's `ip` command is not installed"
    probe = f"mpl-probe-{secrets.token_hex(4)}"
    try:
        _ip("netns", "add", probe)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        return f"`ip netns` is unavailable: {exc}"
    try:
        _ip("-n", probe, "link", "add", "br0", "type", "bridge")
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot make a bridge in a network namespace: {exc}"
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True, check=False)
    return None


class Lan:
    """See the module docstring. ``names`` are the hosts; addresses are ``network``'s first."""

    def __init__(self, names: Sequence[str], network: str = "10.231.0.0/24") -> None:
        subnet = ipaddress.IPv4Network(network)
        if len(names) >= subnet.num_addresses - 2 or len(set(names)) != len(names):
            raise ValueError(f"need unique host names, fewer than {network} has addresses")
        token = secrets.token_hex(3)
        self.prefix_length = subnet.prefixlen
        self.switch = f"mpl-{token}-switch"
        self.hosts = {
            name: Host(name, f"mpl-{token}-{index}", str(address), f"port{index}")
            for index, (name, address) in enumerate(zip(names, subnet.hosts(), strict=False))
        }
        self._made: list[str] = []

    def __enter__(self) -> Lan:
        self.create()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def create(self) -> None:
        try:
            self._add_namespace(self.switch)
            _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
            _ip("-n", self.switch, "link", "set", "br0", "up")
            for host in self.hosts.values():
                self._add_namespace(host.namespace)
                _ip("-n", host.namespace, "link", "set", "lo", "up")
                _ip(
                    "link", "add", "eth0", "netns", host.namespace, "type", "veth",
                    "peer", "name", host.switch_port, "netns", self.switch,
                )  # fmt: skip
                _ip("-n", self.switch, "link", "set", host.switch_port, "master", "br0", "up")
                address = f"{host.address}/{self.prefix_length}"
                _ip("-n", host.namespace, "addr", "add", address, "dev", "eth0")
                _ip("-n", host.namespace, "link", "set", "eth0", "up")
        except BaseException:
            self.close()
            raise

    def _add_namespace(self, name: str) -> None:
        _ip("netns", "add", name)
        self._made.append(name)

    def close(self) -> None:
        """Delete every namespace made (their links go with them); never raises."""
        while self._made:
            name = self._made.pop()
            subprocess.run(
                ["ip", "netns", "del", name],
                capture_output=True,
                timeout=_IP_TIMEOUT_S,
                check=False,
            )

    # -- using it ------------------------------------------------------------------------

    def address(self, name: str) -> str:
        return self.hosts[name].address

    def prefix(self, name: str) -> list[str]:
        """The argv prefix that runs a command in host ``name``."""
        return ["ip", "netns", "exec", self.hosts[name].namespace]

    def cut(self, name: str) -> None:
        """Unplug host ``name``: its switch port goes down (its packets are dropped)."""
        _ip("-n", self.switch, "link", "set", self.hosts[name].switch_port, "down")

    def restore(self, name: str) -> None:
        _ip("-n", self.switch, "link", "set", self.hosts[name].switch_port, "up")

    def run_in(self, name: str, fn: Callable[[], T], timeout_s: float = 60) -> T:
        """``fn()`` in a new thread inside host ``name``'s network namespace; its result."""
        namespace = _NETNS_DIR / self.hosts[name].namespace
        outcome: list[T] = []
        failure: list[BaseException] = []

        def run() -> None:
            try:
                _enter(namespace)
                outcome.append(fn())
            except BaseException as exc:  # handed to the caller's thread
                failure.append(exc)

        thread = threading.Thread(target=run, name=f"netns-{name}", daemon=True)
        thread.start()
        thread.join(timeout_s)
        if thread.is_alive():
            raise TimeoutError(f"{fn!r} in host {name!r} still running after {timeout_s}s")
        if failure:
            raise failure[0]
        return outcome[0]


def _enter(namespace: Path) -> None:
    """Move the calling thread (only) into the network namespace at ``namespace``."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(namespace, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(fd, _CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns({namespace}): {os.strerror(errno)}")
    finally:
        os.close(fd)
