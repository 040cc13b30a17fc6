"""Domain-separated canonical signing.

Every signature in mpc-ledger covers ``signing_bytes(purpose, chain_id, body)``:

    b"mpc-ledger/sig/v1" || u16 len(purpose) || purpose || u16 len(chain_id) || chain_id || body

where ``body`` is the deterministic protobuf encoding of the signed message (or
raw bytes the caller made canonically). The purpose tag keeps a signature made
for one use (a prevote, a record, a transcript digest) from being replayed as
another; the chain id keeps it from being replayed on another consortium. The
length prefixes make the split between the parts unambiguous.

Messages that are signed must not contain ``map`` fields: the protobuf
encoding does not fix their order across implementations.

Nor may anything that arrives to be signed-checked or hashed carry fields its
schema does not know: protobuf keeps unknown fields and writes them back
out, so a re-encoding check cannot see them, and bytes appended outside a
signed body would ride along unsigned. `unknown_field_path` finds them, at
any depth; `verify_signature` refuses a body that has any.
"""

from __future__ import annotations

import struct
from enum import StrEnum
from typing import Any

import nacl.exceptions
import nacl.signing
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.unknown_fields import UnknownFieldSet

__all__ = [
    "SIGNATURE_SIZE_BYTES",
    "Purpose",
    "Signer",
    "canonical_bytes",
    "signing_bytes",
    "unknown_field_path",
    "verify_signature",
]

SIGNATURE_SIZE_BYTES = 64
PUBLIC_KEY_SIZE_BYTES = 32
_DOMAIN = b"mpc-ledger/sig/v1"


class Purpose(StrEnum):
    """What a signature is for. Adding one is safe; renaming one breaks every old signature."""

    PROPOSAL = "consensus/proposal"
    PREVOTE = "consensus/prevote"
    PRECOMMIT = "consensus/precommit"
    RECORD = "ledger/record"
    USER_REQUEST = "user/request"
    TRANSCRIPT = "mpc/transcript"
    PARTICIPATION = "mpc/participation"
    TEST = "test"


def canonical_bytes(body: Message | bytes) -> bytes:
    """The deterministic encoding of a protobuf message (bytes pass through)."""
    if isinstance(body, Message):
        return body.SerializeToString(deterministic=True)
    return bytes(body)


def unknown_field_path(message: Message, path: str = "") -> str | None:
    """Where ``message`` (or a message inside it) holds a field its schema does not know.

    The answer names the place, e.g. ``body.note: field number 15``; None when
    there is none. Depth is bounded by protobuf's own decoding recursion limit.
    """
    unknown = UnknownFieldSet(message)
    if len(unknown):
        return f"{path or message.DESCRIPTOR.name}: field number {unknown[0].field_number}"
    for field, value in message.ListFields():
        if field.type != FieldDescriptor.TYPE_MESSAGE:
            continue
        inner = f"{path}.{field.name}" if path else field.name
        for index, item in enumerate(_messages_of(field, value)):
            found = unknown_field_path(item, f"{inner}[{index}]" if field.is_repeated else inner)
            if found is not None:
                return found
    return None


def _messages_of(field: FieldDescriptor, value: Any) -> list[Message]:
    entry = field.message_type
    if entry is not None and entry.GetOptions().map_entry:
        if entry.fields_by_name["value"].type != FieldDescriptor.TYPE_MESSAGE:
            return []
        return list(value.values())
    return list(value) if field.is_repeated else [value]


def signing_bytes(purpose: Purpose | str, chain_id: bytes, body: Message | bytes) -> bytes:
    """The exact bytes a signature covers (see the module docstring)."""
    tag = str(purpose).encode()
    if not tag or len(tag) > 0xFFFF:
        raise ValueError("purpose must be a non-empty tag")
    if len(chain_id) > 0xFFFF:
        raise ValueError("chain id too long")
    return b"".join(
        (
            _DOMAIN,
            struct.pack(">H", len(tag)),
            tag,
            struct.pack(">H", len(chain_id)),
            chain_id,
            canonical_bytes(body),
        )
    )


class Signer:
    """An Ed25519 signing key bound to one consortium (chain id)."""

    def __init__(self, signing_key: nacl.signing.SigningKey, chain_id: bytes) -> None:
        self._key = signing_key
        self.chain_id = chain_id
        self.public_key = bytes(signing_key.verify_key)

    def sign(self, purpose: Purpose | str, body: Message | bytes) -> bytes:
        message = signing_bytes(purpose, self.chain_id, body)
        return bytes(self._key.sign(message).signature)

    def __repr__(self) -> str:  # never show the key
        return f"Signer(public_key={self.public_key.hex()[:16]}…)"


def verify_signature(
    public_key: bytes,
    purpose: Purpose | str,
    chain_id: bytes,
    body: Message | bytes,
    signature: bytes,
) -> bool:
    """True when ``signature`` is ``public_key``'s over these exact bytes.

    Malformed keys or signatures are a failed verification, not an exception:
    both arrive from peers. So is a body with unknown fields (see the module
    docstring): what was signed must be what the schema can read.
    """
    if isinstance(body, Message) and unknown_field_path(body) is not None:
        return False
    if len(public_key) != PUBLIC_KEY_SIZE_BYTES or len(signature) != SIGNATURE_SIZE_BYTES:
        return False
    try:
        verify_key = nacl.signing.VerifyKey(public_key)
        verify_key.verify(signing_bytes(purpose, chain_id, body), signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError):
        return False
    return True
