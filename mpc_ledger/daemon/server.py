"""One party process: a gRPC server on one port, mTLS only, every caller a genesis member
or a user of this member (bounded to a share of its own: `mpc_ledger.net.admission`).

Contract: `PartyDaemon.start()` returns once the port is bound and serving;
`stop()` marks health NOT_SERVING, lets in-flight calls finish within the
grace period, and closes peer channels. Nothing here blocks on a peer without
a deadline.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from mpc_ledger.daemon.status import StatusHandler
from mpc_ledger.identity.genesis import Genesis
from mpc_ledger.identity.party import Party
from mpc_ledger.metrics import DaemonMetrics
from mpc_ledger.net import mtls
from mpc_ledger.net.admission import UserLimits
from mpc_ledger.net.peers import PeerSet
from mpc_ledger.net.ports import BindError, check_bindable
from mpc_ledger.net.service import DaemonService
from mpc_ledger.proto.v1 import party_pb2, party_pb2_grpc

__all__ = ["PartyDaemon"]

log = logging.getLogger(__name__)

SERVICE_NAMES = ("", "mpc_ledger.v1.PartyControl")

# What a member's users (scientists, compliance officers; certificates issued
# by their member's CA, keys bound on the ledger) may call on their member's
# daemon. Everything else is for members only.
USER_METHODS = frozenset(
    {
        "/grpc.health.v1.Health/Check",
        "/mpc_ledger.v1.Ledger/Submit",
        "/mpc_ledger.v1.Ledger/WaitCommitted",
        "/mpc_ledger.v1.Ledger/Tip",
        "/mpc_ledger.v1.Ledger/GetBlocks",
        "/mpc_ledger.v1.Ledger/Follow",
        "/mpc_ledger.v1.Jobs/Progress",
        "/mpc_ledger.v1.Jobs/Result",
    }
)
# Users' calls that stay open as long as the caller likes: counted against the
# users' stream limits (`mpc_ledger.net.admission.UserLimits`).
LONG_USER_METHODS = frozenset({"/mpc_ledger.v1.Ledger/Follow", "/mpc_ledger.v1.Jobs/Progress"})


class PartyControlServicer(party_pb2_grpc.PartyControlServicer):
    """Thin: decode the request and its caller, call the handler (`daemon.status`)."""

    def __init__(self, genesis: Genesis, handler: StatusHandler) -> None:
        self._genesis = genesis
        self._handler = handler

    def Status(
        self, request: party_pb2.StatusRequest, context: grpc.ServicerContext
    ) -> party_pb2.StatusResponse:
        caller = mtls.peer_of(self._genesis, context)
        return self._handler.status(
            caller.id, probe_peers=request.probe_peers, peer_timeout_ms=request.peer_timeout_ms
        )


class PartyDaemon:
    def __init__(
        self,
        party: Party,
        *,
        services: Sequence[DaemonService] = (),
        max_workers: int = 32,
        user_limits: UserLimits | None = None,
    ) -> None:
        self.party = party
        self.services = tuple(services)
        self._max_workers = max_workers
        self._server: grpc.Server | None = None
        self._health = health.HealthServicer()
        self.peers = PeerSet(party.identity, party.config.peer_addresses)
        self._status = StatusHandler(party, self.services, self.peers)
        self.metrics = DaemonMetrics()
        # max_workers is the members' pool; users' calls run on a bounded pool of their
        # own (the interceptor's), so no user can keep a member's call waiting.
        self._auth = mtls.MemberAuthInterceptor(
            party.genesis,
            self._log_rejection,
            user_methods=USER_METHODS,
            home_member_id=party.identity.member.id,
            user_limits=user_limits,
            long_user_methods=LONG_USER_METHODS,
        )
        self.metrics_port = 0
        self.port = 0

    def start(self) -> None:
        identity = self.party.identity
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=self._max_workers, thread_name_prefix="rpc"),
            interceptors=[self._auth],
            # gRPC sets SO_REUSEPORT by default, which lets a second daemon bind the
            # same port and silently share the traffic; a party must own its port.
            options=[*mtls.server_options(), ("grpc.so_reuseport", 0)],
        )
        party_pb2_grpc.add_PartyControlServicer_to_server(
            PartyControlServicer(self.party.genesis, self._status), server
        )
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        for service in self.services:
            service.register(server)
        address = self.party.listen_address
        check_bindable(address)
        try:
            self.port = server.add_secure_port(address, mtls.server_credentials(identity))
        except RuntimeError as exc:
            raise BindError(f"cannot listen on {address}: {str(exc).split(';')[0]}") from None
        if self.port == 0:
            raise BindError(f"cannot listen on {address} (address in use or not local?)")
        server.start()
        self._server = server
        if self.party.config.metrics_listen is not None:
            try:
                self.metrics_port = self.metrics.serve(self.party.config.metrics_listen)
            except OSError as exc:
                server.stop(0)
                raise BindError(
                    f"cannot serve metrics on {self.party.config.metrics_listen}: {exc.strerror}"
                ) from None
        for service in self.services:
            service.start(self)
        for name in SERVICE_NAMES:
            self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self._status.started()

    def stop(self, grace_s: float = 0.5) -> None:
        self._health.enter_graceful_shutdown()
        for service in reversed(self.services):
            service.stop()
        if self._server is not None:
            self._server.stop(grace_s).wait()
            self._server = None
        self._auth.close()
        self.metrics.close()
        self.peers.close()

    def set_user_lookup(self, user_refusal: Callable[[str, bytes], str | None]) -> None:
        """Why a user (id, TLS key's SPKI hash) may not call now: unbound, revoked, another
        key than the binding pins (the ledger knows); None when they may."""
        self._auth.user_refusal = user_refusal

    def wait(self, timeout_s: float | None = None) -> bool:
        assert self._server is not None
        return bool(self._server.wait_for_termination(timeout_s))

    def _log_rejection(self, method: str, reason: str) -> None:
        log.warning("refused %s: %s", method, reason)
