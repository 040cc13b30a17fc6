"""The ledger's network: one long-lived gossip stream per peer over the members' mTLS.

Contract:

* Outbound, each peer has a `PeerLink`: a bounded queue and a thread that
  keeps one client-streaming `Consensus.Gossip` call open, sending whatever is
  queued as one batch. When the call fails it reconnects with exponential
  backoff; when the queue is full the oldest message is dropped (consensus
  recovers lost messages through its timeouts and re-gossip), so a slow or
  dead peer never blocks the node.
* Inbound, the servicers are thin: they authenticate the sending member from
  its TLS certificate, refuse consensus traffic from members that are not
  validators, and post everything else to the node.
* A node that hears a peer is ahead fetches certified blocks from it
  (`GetBlocks`); the node checks every certificate before applying a block.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc

from mpc_ledger.daemon.peers import PeerSet, describe_rpc_error
from mpc_ledger.identity.genesis import Genesis, Member
from mpc_ledger.ledger.node import LedgerNode
from mpc_ledger.net import mtls
from mpc_ledger.proto.v1 import (
    consensus_pb2,
    ledger_pb2,
    ledger_service_pb2,
    ledger_service_pb2_grpc,
)

__all__ = ["BlockFetcher", "ConsensusServicer", "LedgerServicer", "PeerLink"]

log = logging.getLogger(__name__)

QUEUE_MAX_MESSAGES = 20_000
BATCH_MAX_MESSAGES = 512
BATCH_MAX_BYTES = 4 * 1024 * 1024
BACKOFF_MIN_S = 0.05
BACKOFF_MAX_S = 2.0
GET_BLOCKS_MAX = 1000
WAIT_COMMITTED_MAX_MS = 60_000
SUBMIT_BATCH_MAX = 10_000


class PeerLink:
    """Outbound gossip to one peer (see the module docstring)."""

    def __init__(self, peers: PeerSet, member: Member) -> None:
        self.member = member
        self._peers = peers
        self._queue: collections.deque[ledger_service_pb2.GossipMessage] = collections.deque()
        self._ready = threading.Condition()
        self._stopping = False
        self.dropped = 0
        self.connected = False
        self._generation = 0
        self._call: grpc.Future[Any] | None = None
        self._thread = threading.Thread(target=self._run, name=f"gossip-{member.id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the link to stop (returns at once; `join` waits)."""
        with self._ready:
            self._stopping = True
            self._ready.notify_all()
            call = self._call
        if call is not None:
            call.cancel()

    def join(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)

    def send(self, message: ledger_service_pb2.GossipMessage) -> None:
        with self._ready:
            if len(self._queue) >= QUEUE_MAX_MESSAGES:
                self._queue.popleft()
                self.dropped += 1
            self._queue.append(message)
            self._ready.notify()

    def _batches(self, generation: int) -> Iterator[ledger_service_pb2.GossipBatch]:
        while True:
            with self._ready:
                while not self._queue and not self._stopping and generation == self._generation:
                    self._ready.wait(1.0)
                if self._stopping or generation != self._generation:
                    return  # a newer call owns the queue now
                batch = ledger_service_pb2.GossipBatch()
                size = 0
                while self._queue and len(batch.messages) < BATCH_MAX_MESSAGES:
                    message = self._queue.popleft()
                    batch.messages.append(message)
                    size += message.ByteSize()
                    if size >= BATCH_MAX_BYTES:
                        break
            yield batch

    def _run(self) -> None:
        backoff_s = BACKOFF_MIN_S
        while not self._stopping:
            stub = ledger_service_pb2_grpc.ConsensusStub(self._peers.channel(self.member))
            started = time.monotonic()
            with self._ready:
                self._generation += 1
                generation = self._generation
                self._ready.notify_all()
            try:
                self.connected = True
                call = stub.Gossip.future(self._batches(generation), wait_for_ready=True)
                with self._ready:
                    self._call = call
                    if self._stopping:
                        call.cancel()
                call.result()
            except grpc.FutureCancelledError:
                pass
            except grpc.RpcError as exc:
                if not self._stopping:
                    log.debug("gossip link to %s: %s", self.member.id, describe_rpc_error(exc))
            finally:
                self.connected = False
            if time.monotonic() - started > 5:
                backoff_s = BACKOFF_MIN_S
            with self._ready:
                if not self._stopping:
                    self._ready.wait(backoff_s)
            backoff_s = min(backoff_s * 2, BACKOFF_MAX_S)


class BlockFetcher:
    """Fetches certified blocks from a peer that is ahead; one fetch at a time."""

    def __init__(self, peers: PeerSet, genesis: Genesis, node: LedgerNode) -> None:
        self._peers = peers
        self._genesis = genesis
        self._node = node
        self._busy = threading.Lock()

    def peer_ahead(self, peer_id: str, ours: int, theirs: int) -> None:
        member = self._genesis.member(peer_id)
        if member is None or not self._busy.acquire(blocking=False):
            return
        thread = threading.Thread(
            target=self._fetch, args=(member, ours + 1, theirs), name="block-fetch", daemon=True
        )
        thread.start()

    def _fetch(self, member: Member, from_height: int, to_height: int) -> None:
        try:
            stub = ledger_service_pb2_grpc.LedgerStub(self._peers.channel(member))
            count = min(to_height - from_height + 1, GET_BLOCKS_MAX)
            request = ledger_service_pb2.GetBlocksRequest(from_height=from_height, max_blocks=count)
            for item in stub.GetBlocks(request, timeout=30, wait_for_ready=True):
                self._node.on_certified(item)
        except grpc.RpcError as exc:
            log.info("fetching blocks from %s failed: %s", member.id, describe_rpc_error(exc))
        finally:
            self._busy.release()


class ConsensusServicer(ledger_service_pb2_grpc.ConsensusServicer):
    def __init__(self, genesis: Genesis, node: LedgerNode) -> None:
        self._genesis = genesis
        self._node = node

    def Gossip(
        self,
        request_iterator: Iterator[ledger_service_pb2.GossipBatch],
        context: grpc.ServicerContext,
    ) -> ledger_service_pb2.GossipAck:
        sender = mtls.peer_of(self._genesis, context)
        is_validator = sender.has_role("validator")
        for batch in request_iterator:
            for message in batch.messages:
                if message.WhichOneof("kind") != "tip_height" and not is_validator:
                    context.abort(
                        grpc.StatusCode.PERMISSION_DENIED,
                        f"{sender.id!r} is not a validator; only validators gossip",
                    )
                self._node.on_gossip(sender.id, message)
        return ledger_service_pb2.GossipAck()


class LedgerServicer(ledger_service_pb2_grpc.LedgerServicer):
    def __init__(self, node: LedgerNode) -> None:
        self._node = node

    def Submit(
        self, request: ledger_service_pb2.SubmitRequest, context: grpc.ServicerContext
    ) -> ledger_service_pb2.SubmitResponse:
        raw = request.record.SerializeToString(deterministic=True)
        result = self._node.submit(raw)
        return ledger_service_pb2.SubmitResponse(
            record_id=result.record_id, accepted=result.accepted, reason=result.reason
        )

    def SubmitBatch(
        self, request: ledger_service_pb2.SubmitBatchRequest, context: grpc.ServicerContext
    ) -> ledger_service_pb2.SubmitBatchResponse:
        if len(request.records) > SUBMIT_BATCH_MAX:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"{len(request.records)} records in one batch; at most {SUBMIT_BATCH_MAX}",
            )
        raws = [record.SerializeToString(deterministic=True) for record in request.records]
        return ledger_service_pb2.SubmitBatchResponse(
            results=[
                ledger_service_pb2.SubmitResponse(
                    record_id=r.record_id, accepted=r.accepted, reason=r.reason
                )
                for r in self._node.submit_many(raws, timeout_s=30)
            ]
        )

    def WaitCommitted(
        self, request: ledger_service_pb2.WaitCommittedRequest, context: grpc.ServicerContext
    ) -> ledger_service_pb2.WaitCommittedResponse:
        timeout_ms = min(request.timeout_ms or 10_000, WAIT_COMMITTED_MAX_MS)
        location = self._node.wait_committed(request.record_id, timeout_ms / 1000)
        if location is None:
            return ledger_service_pb2.WaitCommittedResponse(committed=False)
        height, log_index = location
        return ledger_service_pb2.WaitCommittedResponse(
            committed=True, height=height, log_index=log_index
        )

    def Tip(
        self, request: ledger_service_pb2.TipRequest, context: grpc.ServicerContext
    ) -> ledger_service_pb2.TipResponse:
        return self._node.tip()

    def GetBlocks(
        self, request: ledger_service_pb2.GetBlocksRequest, context: grpc.ServicerContext
    ) -> Iterator[consensus_pb2.CommittedBlock]:
        limit = min(request.max_blocks or GET_BLOCKS_MAX, GET_BLOCKS_MAX)
        height = max(request.from_height, 1)
        while limit > 0:
            chunk = self._node.blocks(height, min(limit, 128))
            if not chunk:
                return
            yield from chunk
            limit -= len(chunk)
            height = chunk[-1].block.header.height + 1

    def Follow(
        self, request: ledger_service_pb2.GetBlocksRequest, context: grpc.ServicerContext
    ) -> Iterator[consensus_pb2.CommittedBlock]:
        height = max(request.from_height, 1)
        while context.is_active():
            chunk = self._node.blocks(height, 128)
            if chunk:
                yield from chunk
                height = chunk[-1].block.header.height + 1
            else:
                self._node.wait_height(height, 1.0)


def gossip_record(raw: bytes) -> ledger_service_pb2.GossipMessage:
    return ledger_service_pb2.GossipMessage(record=ledger_pb2.Record.FromString(raw))
