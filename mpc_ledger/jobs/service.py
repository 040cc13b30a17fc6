"""The job runner as a party daemon service (`mpc_ledger.daemon.server.DaemonService`).

It listens to the daemon's own ledger node (a commit listener, registered
before the node starts) and runs this member's part of every job through
`mpc_ledger.jobs.runner.JobRunner`, whose docstring has the contract. It
serves the `Jobs` gRPC service (`mpc_ledger.jobs.api`: progress from
`progress`, a recipient's model).
List it after `LedgerService` (it needs the node) and `MpcRelayService`
(its workers attach to the relay): the daemon stops services in reverse, so
the workers die before the relay and the ledger go.

A member that is not a validator (the dealer, usually) relays the records
it is given to the validators by gossip, which is fire-and-forget. For the
runner's own records `_LedgerAccess` wants a confirmed acceptance, so it
also submits them through a validator's Ledger `Submit` RPC over mTLS,
trying each validator until one accepts (or already holds the record from
the gossip).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import grpc

from mpc_ledger.daemon.config import Party
from mpc_ledger.daemon.peers import PeerSet, describe_rpc_error
from mpc_ledger.jobs.api import JobsApi
from mpc_ledger.jobs.runner import JobRunner, ProgressRegistry, RunnerOptions
from mpc_ledger.ledger.node import LedgerNode, SubmitResult
from mpc_ledger.ledger.service import LedgerService
from mpc_ledger.ledger.state import LedgerState
from mpc_ledger.mpc.relay import socket_path_for
from mpc_ledger.proto.v1 import (
    jobs_service_pb2_grpc,
    ledger_pb2,
    ledger_service_pb2,
    ledger_service_pb2_grpc,
)

if TYPE_CHECKING:
    from mpc_ledger.daemon.server import PartyDaemon

__all__ = ["JobsService"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class _LedgerAccess:
    """The node, with a follower's submissions forwarded to a validator (see above)."""

    def __init__(self, party: Party, node: LedgerNode) -> None:
        self._party = party
        self._node = node
        # The daemon's channels to its peers, given at start (before any submission).
        self.peers: PeerSet | None = None

    def submit(self, raw: bytes, *, timeout_s: float = 10.0) -> SubmitResult:
        result = self._node.submit(raw, timeout_s=timeout_s)
        if not result.accepted or self._node.core is not None:
            return result
        record = ledger_pb2.Record.FromString(raw)
        reasons = []
        for validator in self._party.genesis.validators:
            try:
                reply = self._stub(validator.id).Submit(
                    ledger_service_pb2.SubmitRequest(record=record), timeout=timeout_s
                )
            except grpc.RpcError as exc:
                reasons.append(f"{validator.id}: {describe_rpc_error(exc)}")
                continue
            if reply.accepted or reply.reason.startswith("duplicate"):
                return result  # accepted now, or already arrived by gossip
            reasons.append(f"{validator.id}: {reply.reason}")
        return SubmitResult(result.record_id, False, "; ".join(reasons))

    def _stub(self, member_id: str) -> ledger_service_pb2_grpc.LedgerStub:
        member = self._party.genesis.member(member_id)
        assert member is not None and self.peers is not None
        return ledger_service_pb2_grpc.LedgerStub(self.peers.channel(member))

    def wait_committed(self, record_id: bytes, timeout_s: float) -> tuple[int, int] | None:
        return self._node.wait_committed(record_id, timeout_s)

    def query(self, read: Callable[[LedgerState], T], timeout_s: float = 10.0) -> T:
        return self._node.query(read, timeout_s)


class JobsService:
    def __init__(
        self, party: Party, ledger: LedgerService, options: RunnerOptions | None = None
    ) -> None:
        self.party = party
        self._ledger = ledger
        self._options = options
        self.runner: JobRunner | None = None
        self._access: _LedgerAccess | None = None

    def register(self, server: grpc.Server) -> None:
        node = self._ledger.node
        assert node is not None, "list JobsService after LedgerService"
        self._access = _LedgerAccess(self.party, node)
        self.runner = JobRunner(
            self.party, self._access, socket_path_for(self.party.config.data_dir), self._options
        )
        node.add_commit_listener(self.runner.on_commit)
        jobs_service_pb2_grpc.add_JobsServicer_to_server(JobsApi(self), server)

    def start(self, daemon: PartyDaemon) -> None:
        assert self.runner is not None and self._access is not None, "register() runs first"
        self._access.peers = daemon.peers
        self.runner.start()

    def stop(self) -> None:
        if self.runner is not None:
            self.runner.stop()

    def status(self, response: Any) -> None:
        pass  # nothing in StatusResponse for jobs yet

    @property
    def progress(self) -> ProgressRegistry:
        assert self.runner is not None
        return self.runner.progress

    def query(self, read: Callable[[LedgerState], T]) -> T:
        """Read the committed ledger state (on the node's loop thread)."""
        assert self._access is not None, "register() runs first"
        return self._access.query(read)
