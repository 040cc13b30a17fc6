"""Signed ledger records: ids, signing, parsing untrusted bytes.

A record's id is the SHA-256 of a tag and its body's deterministic encoding,
so it does not depend on the signature (Ed25519 signatures are deterministic
anyway) and an author can compute it before submitting.
"""

from __future__ import annotations

import hashlib

from google.protobuf.message import DecodeError

from mpc_ledger.identity.ids import QUALIFIED_ID
from mpc_ledger.identity.signing import Purpose, Signer, canonical_bytes, unknown_field_path
from mpc_ledger.proto.v1 import ledger_pb2

__all__ = [
    "USER_ROLES",
    "ParsedRecord",
    "make_record",
    "member_of_user",
    "parse_record",
    "payload_kind",
    "record_id",
]

USER_ROLES = ("compliance", "scientist")
_RECORD_ID_TAG = b"mpc-ledger/record/v1\x00"


def record_id(body: ledger_pb2.RecordBody) -> bytes:
    return hashlib.sha256(_RECORD_ID_TAG + canonical_bytes(body)).digest()


def payload_kind(body: ledger_pb2.RecordBody) -> str:
    """The name of the payload field set (``note``, ``bind_user``, ...), or ``""``."""
    return body.WhichOneof("payload") or ""


def member_of_user(author: str) -> str | None:
    """For a user id ``member/name`` the member id; None when ``author`` is not a user id."""
    match = QUALIFIED_ID.match(author)
    return match.group(1) if match else None


def make_record(signer: Signer, body: ledger_pb2.RecordBody) -> ledger_pb2.Record:
    return ledger_pb2.Record(body=body, signature=signer.sign(Purpose.RECORD, body))


class ParsedRecord:
    """A record decoded from untrusted bytes, with its id computed once."""

    __slots__ = ("id", "raw", "record")

    def __init__(self, raw: bytes, record: ledger_pb2.Record) -> None:
        self.raw = raw
        self.record = record
        self.id = record_id(record.body)

    @property
    def body(self) -> ledger_pb2.RecordBody:
        return self.record.body

    @property
    def kind(self) -> str:
        return payload_kind(self.record.body)


def parse_record(raw: bytes) -> ParsedRecord | str:
    """Decode a record; on failure, the reason (records come from peers and users)."""
    record = ledger_pb2.Record()
    try:
        record.ParseFromString(raw)
    except DecodeError as exc:
        return f"malformed record: {exc}"
    if not record.HasField("body"):
        return "malformed record: no body"
    # Unknown fields survive a re-encoding, so they are looked for by name:
    # outside the body they are covered by neither the id nor the signature.
    unknown = unknown_field_path(record)
    if unknown is not None:
        return f"malformed record: unknown field at {unknown}"
    # A re-encoding that differs means unknown fields or a non-canonical
    # encoding: the id and signature would not cover what was sent.
    if record.SerializeToString(deterministic=True) != raw:
        return "malformed record: not in canonical encoding"
    return ParsedRecord(raw, record)
