"""The ledger's network servicers, over the members' mTLS.

Contract:

* Outbound gossip is in `mpc_ledger.ledger.links` (one stream per peer).
* Inbound, the servicers are thin: they authenticate the sending member from
  its TLS certificate, refuse consensus traffic from members that are not
  validators, and post everything else to the node.
* A node that hears a peer is ahead fetches certified blocks from it
  (`GetBlocks`, see `mpc_ledger.ledger.catchup`); the node checks every
  certificate before applying a block.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import grpc

from mpc_ledger.identity.genesis import Genesis
from mpc_ledger.ledger.node import LedgerNode
from mpc_ledger.net import mtls
from mpc_ledger.proto.v1 import (
    consensus_pb2,
    ledger_pb2,
    ledger_service_pb2,
    ledger_service_pb2_grpc,
)

__all__ = ["ConsensusServicer", "LedgerServicer", "gossip_record"]

log = logging.getLogger(__name__)

GET_BLOCKS_MAX = 1000
WAIT_COMMITTED_MAX_MS = 60_000
SUBMIT_BATCH_MAX = 10_000
# A user's Follow stream re-checks the user's binding at least this often while idle...
FOLLOW_WAIT_S = 1.0
# ...and ends after this long (the caller resumes from its last height), so it never
# holds a thread of the users' pool for ever.
FOLLOW_USER_MAX_S = 120.0


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
                # Records are signed by their authors and checked on arrival, so any
                # member may relay them; consensus messages come from validators only.
                if message.WhichOneof("kind") == "consensus" and not is_validator:
                    context.abort(
                        grpc.StatusCode.PERMISSION_DENIED,
                        f"{sender.id!r} is not a validator; only validators gossip votes",
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
            record_id=result.record_id,
            accepted=result.accepted,
            reason=result.reason,
            code=result.code,
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
                    record_id=r.record_id, accepted=r.accepted, reason=r.reason, code=r.code
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
        """Committed blocks from ``from_height`` as they come.

        A user's stream holds a thread of the users' pool, so it ends (OK) after
        FOLLOW_USER_MAX_S, and the caller resumes from its last height; it is
        refused (UNAUTHENTICATED) as soon as the user is revoked, also while idle.
        """
        caller = mtls.caller_of(self._node.identity.genesis, context)
        deadline = time.monotonic() + FOLLOW_USER_MAX_S
        height = max(request.from_height, 1)
        while context.is_active():
            if caller.user_id is not None:
                self._check_user(caller, context)
                if time.monotonic() >= deadline:
                    return
            chunk = self._node.blocks(height, 128)
            if chunk:
                yield from chunk
                height = chunk[-1].block.header.height + 1
            else:
                self._node.wait_height(height, FOLLOW_WAIT_S)

    def _check_user(self, caller: mtls.Caller, context: grpc.ServicerContext) -> None:
        assert caller.user_id is not None
        reason = self._node.user_refusal(caller.user_id, caller.tls_spki_sha256)
        if reason is not None:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, reason)


def gossip_record(raw: bytes) -> ledger_service_pb2.GossipMessage:
    return ledger_service_pb2.GossipMessage(record=ledger_pb2.Record.FromString(raw))
