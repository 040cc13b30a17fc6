"""A party's own client for its ledger node, over mTLS as the party itself."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

from mpc_ledger.identity.party import Party
from mpc_ledger.identity.signing import Signer
from mpc_ledger.ledger.records import make_record
from mpc_ledger.net import mtls
from mpc_ledger.proto.v1 import (
    consensus_pb2,
    ledger_pb2,
    ledger_service_pb2,
    ledger_service_pb2_grpc,
)

__all__ = ["LedgerCalls", "LedgerClient", "local_target"]


def local_target(listen: str) -> str:
    """Where to dial a daemon listening on ``listen`` from the same host."""
    host, _, port = listen.rpartition(":")
    if host in ("0.0.0.0", "", "[::]"):  # noqa: S104 - a wildcard listener is dialled locally
        return f"127.0.0.1:{port}"
    return listen


class LedgerCalls:
    """The ledger's client methods over ``self.stub`` (shared by members' and users' clients)."""

    stub: ledger_service_pb2_grpc.LedgerStub

    def submit(
        self, record: ledger_pb2.Record, timeout_s: float = 10
    ) -> ledger_service_pb2.SubmitResponse:
        response: ledger_service_pb2.SubmitResponse = self.stub.Submit(
            ledger_service_pb2.SubmitRequest(record=record), timeout=timeout_s
        )
        return response

    def wait_committed(
        self, record_id: bytes, timeout_s: float = 30
    ) -> ledger_service_pb2.WaitCommittedResponse:
        response: ledger_service_pb2.WaitCommittedResponse = self.stub.WaitCommitted(
            ledger_service_pb2.WaitCommittedRequest(
                record_id=record_id, timeout_ms=int(timeout_s * 1000)
            ),
            timeout=timeout_s + 5,
        )
        return response

    def tip(self, timeout_s: float = 5) -> ledger_service_pb2.TipResponse:
        response: ledger_service_pb2.TipResponse = self.stub.Tip(
            ledger_service_pb2.TipRequest(), timeout=timeout_s
        )
        return response

    def blocks(
        self, from_height: int, max_blocks: int = 1000, timeout_s: float = 30
    ) -> Iterator[consensus_pb2.CommittedBlock]:
        request = ledger_service_pb2.GetBlocksRequest(
            from_height=from_height, max_blocks=max_blocks
        )
        yield from self.stub.GetBlocks(request, timeout=timeout_s)


class LedgerClient(LedgerCalls):
    """A party's own client for its ledger node, over mTLS as the party itself."""

    def __init__(self, party: Party, *, endpoint: str | None = None) -> None:
        self.party = party
        self._channel = mtls.member_channel(
            party.identity,
            party.identity.member,
            endpoint=endpoint or local_target(party.listen_address),
        )
        self.stub = ledger_service_pb2_grpc.LedgerStub(self._channel)
        self.signer = Signer(party.identity.signing_key, party.genesis.chain_id)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> LedgerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def sign(self, **payload: Any) -> ledger_pb2.Record:
        """A record of this party's with ``payload`` (one field of `RecordBody`'s oneof,
        e.g. ``note=...``), a fresh nonce and the time, signed with the member's key."""
        body = ledger_pb2.RecordBody(
            author=self.party.identity.member.id,
            nonce=secrets.randbits(63),
            created_ms=int(time.time() * 1000),
            **payload,
        )
        return make_record(self.signer, body)

    def note(self, text: str, data: bytes = b"") -> ledger_pb2.Record:
        """A note signed by this party."""
        return self.sign(note=ledger_pb2.Note(text=text, data=data))
