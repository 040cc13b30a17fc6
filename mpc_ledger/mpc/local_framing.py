"""Length-prefixed protobuf messages on the worker <-> daemon Unix socket.

Each message is a 4-byte big-endian length, then that many bytes of a
serialized `WorkerToRelay` or `RelayToWorker`. A length above
`MAX_LOCAL_MESSAGE_BYTES` ends the connection: neither side buffers an
unbounded message.
"""

from __future__ import annotations

import struct

from mpc_ledger.net.mtls import MAX_MESSAGE_BYTES

__all__ = ["HEADER", "MAX_LOCAL_MESSAGE_BYTES", "LocalFramingError", "encode", "message_length"]

HEADER = struct.Struct(">I")
MAX_LOCAL_MESSAGE_BYTES = MAX_MESSAGE_BYTES


class LocalFramingError(Exception):
    """A length prefix outside the limit."""


def encode(payload: bytes) -> bytes:
    if len(payload) > MAX_LOCAL_MESSAGE_BYTES:
        raise LocalFramingError(
            f"local message of {len(payload)} bytes exceeds {MAX_LOCAL_MESSAGE_BYTES}"
        )
    return HEADER.pack(len(payload)) + payload


def message_length(header: bytes) -> int:
    (length,) = HEADER.unpack(header)
    if length > MAX_LOCAL_MESSAGE_BYTES:
        raise LocalFramingError(
            f"local message of {length} bytes exceeds {MAX_LOCAL_MESSAGE_BYTES}"
        )
    return int(length)
