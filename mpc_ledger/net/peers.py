"""Channels from this party to every other member, and health probes over them."""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from collections.abc import Mapping
from concurrent import futures

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mpc_ledger.identity.genesis import Member
from mpc_ledger.identity.material import PartyIdentity
from mpc_ledger.net import mtls

__all__ = ["PeerProbe", "PeerSet", "describe_rpc_error"]

# What gRPC says when TLS fails: the side that refuses a certificate closes the
# socket mid-handshake, so the other side only sees the socket close.
_HANDSHAKE_HINTS = re.compile(r"Socket closed|handshake|SSL|certificate", re.IGNORECASE)


@dataclasses.dataclass(frozen=True)
class PeerProbe:
    member: Member
    round_trip_ms: float
    error: str | None


def describe_rpc_error(error: grpc.RpcError) -> str:
    """One line a person can read: the status code and gRPC's own explanation."""
    code = error.code() if hasattr(error, "code") else None
    details = error.details() if hasattr(error, "details") else str(error)
    name = code.name if code is not None else "UNKNOWN"
    text = f"{name}: {details}"
    if code == grpc.StatusCode.UNAVAILABLE and _HANDSHAKE_HINTS.search(details or ""):
        text += (
            " (the TLS handshake failed: the peer did not accept our certificate or we did not "
            "accept its; check both run the same genesis and certificates have not expired)"
        )
    return text


class PeerSet:
    """Lazily opened, reused mTLS channels to the other members."""

    def __init__(self, identity: PartyIdentity, addresses: Mapping[str, str] | None = None) -> None:
        self._identity = identity
        self._addresses = dict(addresses or {})
        self._channels: dict[str, grpc.Channel] = {}
        self._lock = threading.Lock()
        self.members = tuple(m for m in identity.genesis.members if m.id != identity.member.id)

    def channel(self, member: Member) -> grpc.Channel:
        with self._lock:
            channel = self._channels.get(member.id)
            if channel is None:
                channel = mtls.member_channel(
                    self._identity, member, endpoint=self._addresses.get(member.id)
                )
                self._channels[member.id] = channel
            return channel

    def probe(self, member: Member, timeout_s: float) -> PeerProbe:
        """One health check. A channel that failed earlier answers UNAVAILABLE at once
        from its cached state, so that answer is retried, waiting for a connection,
        until the deadline; the first error is reported if the retry fails too."""
        stub = health_pb2_grpc.HealthStub(self.channel(member))
        request = health_pb2.HealthCheckRequest(service="")
        start = time.perf_counter()
        first_error: str | None = None
        for wait in (False, True):
            remaining_s = timeout_s - (time.perf_counter() - start)
            try:
                reply = stub.Check(request, timeout=max(remaining_s, 0.001), wait_for_ready=wait)
            except grpc.RpcError as exc:
                first_error = first_error or describe_rpc_error(exc)
                if exc.code() != grpc.StatusCode.UNAVAILABLE or wait:
                    break
                continue
            elapsed_ms = (time.perf_counter() - start) * 1000
            if reply.status != health_pb2.HealthCheckResponse.SERVING:
                status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
                return PeerProbe(member, elapsed_ms, f"not serving ({status})")
            return PeerProbe(member, elapsed_ms, None)
        return PeerProbe(member, (time.perf_counter() - start) * 1000, first_error)

    def probe_all(self, timeout_s: float) -> list[PeerProbe]:
        if not self.members:
            return []
        with futures.ThreadPoolExecutor(max_workers=min(16, len(self.members))) as pool:
            return list(pool.map(lambda m: self.probe(m, timeout_s), self.members))

    def close(self) -> None:
        with self._lock:
            for channel in self._channels.values():
                channel.close()
            self._channels.clear()
