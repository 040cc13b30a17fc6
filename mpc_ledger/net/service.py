"""The contract between the party daemon and the parts it runs (the ledger, the relay, jobs).

Here, below every part, so that a part depends on this contract and never on
the daemon itself (`mpc_ledger.daemon.server.PartyDaemon` keeps both sides:
it is a `DaemonHost` and runs `DaemonService`s).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import grpc

from mpc_ledger.identity.party import Party
from mpc_ledger.metrics import DaemonMetrics
from mpc_ledger.net.peers import PeerSet
from mpc_ledger.proto.v1 import party_pb2

__all__ = ["DaemonHost", "DaemonService"]


class DaemonHost(Protocol):
    """What a service sees of the daemon that runs it, from `DaemonService.start` on."""

    @property
    def party(self) -> Party: ...

    @property
    def peers(self) -> PeerSet:
        """The daemon's channels to the other members (shared by every service)."""

    @property
    def metrics(self) -> DaemonMetrics: ...

    def set_user_lookup(self, user_refusal: Callable[[str, bytes], str | None]) -> None:
        """Why a user (id, TLS key's SPKI hash) may not call now; None when they may."""


class DaemonService(Protocol):
    """A part of the daemon (the ledger node, the MPC relay, ...) that serves on its port.

    `register` adds its servicers before the server starts; `start` runs once
    the port is bound; `stop` runs before the server stops, in reverse order.
    """

    def register(self, server: grpc.Server) -> None: ...

    def start(self, daemon: DaemonHost) -> None: ...

    def stop(self) -> None: ...

    def status(self, response: party_pb2.StatusResponse) -> None:
        """Add this service's part of the party's status."""
