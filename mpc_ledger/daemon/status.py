"""What `PartyControl/Status` answers, without gRPC: the servicer in `daemon.server` only
decodes the request and its caller, calls `StatusHandler.status` and returns the reply.

The reply names this member (id, roles, chain id, consortium, listen
address, version, uptime) and the caller as the daemon identified it; each
service of the daemon adds its own part (`DaemonService.status`: the ledger's
height, the jobs by state, ...). With ``probe_peers`` it also asks every
peer, in parallel, each within the caller's timeout (`peer_timeout_s`:
`DEFAULT_PEER_TIMEOUT_MS` when it names none, never more than
`PEER_TIMEOUT_MAX_MS`, so no caller can hold a handler thread longer).
The clock is an input.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Protocol

from mpc_ledger import __version__
from mpc_ledger.identity.party import Party
from mpc_ledger.net.peers import PeerProbe
from mpc_ledger.proto.v1 import party_pb2

__all__ = [
    "DEFAULT_PEER_TIMEOUT_MS",
    "PEER_TIMEOUT_MAX_MS",
    "StatusHandler",
    "peer_timeout_s",
]

DEFAULT_PEER_TIMEOUT_MS = 2000
PEER_TIMEOUT_MAX_MS = 30_000


class StatusPart(Protocol):
    """A service of the daemon that adds its part of the status (`DaemonService`)."""

    def status(self, response: party_pb2.StatusResponse) -> None: ...


class PeerProber(Protocol):
    """What the handler needs of `mpc_ledger.net.peers.PeerSet`."""

    def probe_all(self, timeout_s: float) -> list[PeerProbe]: ...


def peer_timeout_s(requested_ms: int) -> float:
    """Each peer probe's timeout for a caller that asked ``requested_ms`` (0: none)."""
    return min(requested_ms or DEFAULT_PEER_TIMEOUT_MS, PEER_TIMEOUT_MAX_MS) / 1000


class StatusHandler:
    """This party's status (see the module docstring)."""

    def __init__(
        self,
        party: Party,
        parts: Sequence[StatusPart],
        peers: PeerProber,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._party = party
        self._parts = tuple(parts)
        self._peers = peers
        self._clock = clock
        self._started_at = clock()

    def started(self) -> None:
        """The daemon serves from now: its uptime counts from here."""
        self._started_at = self._clock()

    def status(
        self, caller_id: str, *, probe_peers: bool, peer_timeout_ms: int
    ) -> party_pb2.StatusResponse:
        member = self._party.identity.member
        response = party_pb2.StatusResponse(
            member_id=member.id,
            roles=list(member.roles),
            chain_id=self._party.genesis.chain_id.hex(),
            consortium=self._party.genesis.consortium,
            listen_address=self._party.listen_address,
            version=__version__,
            uptime_s=self._clock() - self._started_at,
            caller_id=caller_id,
        )
        for part in self._parts:
            part.status(response)
        if probe_peers:
            for probe in self._peers.probe_all(peer_timeout_s(peer_timeout_ms)):
                response.peers.append(
                    party_pb2.PeerStatus(
                        id=probe.member.id,
                        endpoint=probe.member.endpoint,
                        reachable=probe.error is None,
                        round_trip_ms=probe.round_trip_ms,
                        error=probe.error or "",
                    )
                )
        return response
