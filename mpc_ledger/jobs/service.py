"""The job runner as a party daemon service (`mpc_ledger.net.service.DaemonService`).

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
the gossip: a refusal with the code `RefusalCode.DUPLICATE`).

It also keeps the count of jobs by state (`JobTally`) for the daemon's
`mpc_ledger_jobs{state}` gauge and its `Status` reply: loaded from the
replayed state before the node starts, then updated from each committed
block's job records on the node's loop thread (the only thread that may read
the ledger state), and read by other threads through an immutable snapshot.
`JobParticipants` is kept the same way: who holds each rank of every job, for
the MPC relay, which refuses frames from anyone else (`mpc_ledger.mpc.relay`).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, TypeVar

import grpc

from mpc_ledger.identity.party import Party
from mpc_ledger.jobs.api import JobsApi
from mpc_ledger.jobs.lifecycle import STATUSES
from mpc_ledger.jobs.progress import ProgressRegistry
from mpc_ledger.jobs.rules import JOB_STATUS_KINDS
from mpc_ledger.jobs.runner import JobRunner, RunnerOptions
from mpc_ledger.jobs.state import JOBS_TABLE, job_state
from mpc_ledger.ledger.node import LedgerNode, SubmitResult
from mpc_ledger.ledger.records import ParsedRecord
from mpc_ledger.ledger.refusals import RefusalCode
from mpc_ledger.ledger.service import LedgerService
from mpc_ledger.ledger.state import LedgerState
from mpc_ledger.mpc.relay import socket_path_for
from mpc_ledger.net.peers import PeerSet, describe_rpc_error
from mpc_ledger.proto.v1 import (
    jobs_service_pb2_grpc,
    ledger_pb2,
    ledger_service_pb2,
    ledger_service_pb2_grpc,
    party_pb2,
)

if TYPE_CHECKING:
    from mpc_ledger.net.service import DaemonHost

__all__ = ["JobParticipants", "JobTally", "JobsService"]

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
            # The code, never the words: a reason is for people and may start with anything.
            if reply.accepted or reply.code == RefusalCode.DUPLICATE:
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


class JobTally:
    """Jobs by state. `load` and `on_commit` run where the ledger state may be read
    (before the node starts; its loop thread); `counts` may be read from any thread."""

    def __init__(self) -> None:
        self._status: dict[bytes, str] = {}
        self._counts: dict[str, int] = dict.fromkeys(STATUSES, 0)
        self.counts: Mapping[str, int] = MappingProxyType(dict(self._counts))

    def count(self, status: str) -> int:
        return self.counts.get(status, 0)

    def load(self, state: LedgerState) -> None:
        self.update(state, (bytes.fromhex(key) for key in state.keys(JOBS_TABLE)))

    def on_commit(self, state: LedgerState, records: Iterable[ParsedRecord]) -> None:
        touched = []
        for record in records:
            kind = record.kind
            if kind == "job_submission":
                touched.append(record.id)
            elif kind in JOB_STATUS_KINDS:
                touched.append(bytes(getattr(record.body, kind).job_id))
        if touched:
            self.update(state, touched)

    def update(self, state: LedgerState, job_ids: Iterable[bytes]) -> None:
        for job_id in job_ids:
            job = job_state(state, job_id)
            old, new = self._status.get(job_id), job.status if job is not None else None
            if new is None or old == new:
                continue
            if old is not None:
                self._counts[old] -= 1
            self._counts[new] = self._counts.get(new, 0) + 1
            self._status[job_id] = new
        self.counts = MappingProxyType(dict(self._counts))  # one reference swap for readers


class JobParticipants:
    """Every committed job's participants by rank, by MPC job id (the job id in hex).

    `load` and `on_commit` run where the ledger state may be read; calling the
    object (the relay's `ParticipantsLookup`) is safe from any thread: a job's
    participants never change once submitted, and one dict read or insert is
    atomic.
    """

    def __init__(self) -> None:
        self._by_job: dict[str, tuple[str, ...]] = {}

    def __call__(self, job_id: str) -> tuple[str, ...] | None:
        return self._by_job.get(job_id)

    def load(self, state: LedgerState) -> None:
        self._add(state, (bytes.fromhex(key) for key in state.keys(JOBS_TABLE)))

    def on_commit(self, state: LedgerState, records: Iterable[ParsedRecord]) -> None:
        self._add(state, (r.id for r in records if r.kind == "job_submission"))

    def _add(self, state: LedgerState, job_ids: Iterable[bytes]) -> None:
        for job_id in job_ids:
            job = job_state(state, job_id)
            if job is not None:  # a refused submission made no job
                self._by_job[job_id.hex()] = job.participants


class JobsService:
    def __init__(
        self, party: Party, ledger: LedgerService, options: RunnerOptions | None = None
    ) -> None:
        self.party = party
        self._ledger = ledger
        self._options = options
        self.runner: JobRunner | None = None
        self._access: _LedgerAccess | None = None
        self.tally = JobTally()
        self.participants = JobParticipants()

    def register(self, server: grpc.Server) -> None:
        node = self._ledger.node
        assert node is not None, "list JobsService after LedgerService"
        self._access = _LedgerAccess(self.party, node)
        # Before the runner's listener: a job is known here before this member starts it.
        self.participants.load(node.state)
        node.add_commit_listener(
            lambda _height, records: self.participants.on_commit(node.state, records)
        )
        self.runner = JobRunner(
            self.party, self._access, socket_path_for(self.party.config.data_dir), self._options
        )
        node.add_commit_listener(self.runner.on_commit)
        self.tally.load(node.state)  # the node has replayed its chain; its loop is not running
        node.add_commit_listener(lambda _height, records: self.tally.on_commit(node.state, records))
        jobs_service_pb2_grpc.add_JobsServicer_to_server(JobsApi(self), server)

    def start(self, daemon: DaemonHost) -> None:
        assert self.runner is not None and self._access is not None, "register() runs first"
        self._access.peers = daemon.peers
        metrics = daemon.metrics
        self.runner.metrics = metrics
        for state in STATUSES:
            gauge = metrics.jobs.labels(state=state)
            metrics.gauge_from(gauge, functools.partial(self.tally.count, state))
        self.runner.start()

    def stop(self) -> None:
        if self.runner is not None:
            self.runner.stop()

    def status(self, response: party_pb2.StatusResponse) -> None:
        response.jobs.update(self.tally.counts)

    @property
    def progress(self) -> ProgressRegistry:
        assert self.runner is not None
        return self.runner.progress

    def query(self, read: Callable[[LedgerState], T]) -> T:
        """Read the committed ledger state (on the node's loop thread)."""
        assert self._access is not None, "register() runs first"
        return self._access.query(read)
