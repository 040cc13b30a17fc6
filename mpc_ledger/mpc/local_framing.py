"""Length-prefixed protobuf messages on the worker <-> daemon Unix socket.

Each message is a 4-byte big-endian length, then that many bytes of a
serialized `WorkerToRelay` or `RelayToWorker`. A length above
`LOCAL_MESSAGE_MAX_BYTES` ends the connection: neither side buffers an
unbounded message. `pack_by_size` groups frames into messages (a local
delivery, a `PeerBatch` between daemons) under a byte budget, counting whole
serialized frames, so no message exceeds its limit however large a tensor.

No torch here: the daemon imports this module and must not pay for torch.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence

from mpc_ledger.net.mtls import MESSAGE_MAX_BYTES
from mpc_ledger.proto.v1 import mpc_pb2

__all__ = [
    "HEADER",
    "LOCAL_MESSAGE_MAX_BYTES",
    "LocalFramingError",
    "encode",
    "message_length",
    "pack_by_size",
]

HEADER = struct.Struct(">I")
LOCAL_MESSAGE_MAX_BYTES = MESSAGE_MAX_BYTES


class LocalFramingError(Exception):
    """A length prefix outside the limit."""


def encode(payload: bytes) -> bytes:
    if len(payload) > LOCAL_MESSAGE_MAX_BYTES:
        raise LocalFramingError(
            f"local message of {len(payload)} bytes exceeds {LOCAL_MESSAGE_MAX_BYTES}"
        )
    return HEADER.pack(len(payload)) + payload


def message_length(header: bytes) -> int:
    (length,) = HEADER.unpack(header)
    if length > LOCAL_MESSAGE_MAX_BYTES:
        raise LocalFramingError(
            f"local message of {length} bytes exceeds {LOCAL_MESSAGE_MAX_BYTES}"
        )
    return int(length)


# A repeated message field costs a tag and a length varint on top of the frame itself.
_FIELD_OVERHEAD_BYTES = 8


def pack_by_size(
    frames: Sequence[mpc_pb2.MpcFrame], max_bytes: int
) -> Iterator[list[mpc_pb2.MpcFrame]]:
    """Consecutive groups of ``frames``, in order, each serializing to at most ``max_bytes``
    (a frame alone larger than that still gets its own group: the caller bounds frames)."""
    group: list[mpc_pb2.MpcFrame] = []
    size = 0
    for frame in frames:
        cost = frame.ByteSize() + _FIELD_OVERHEAD_BYTES
        if group and size + cost > max_bytes:
            yield group
            group, size = [], 0
        group.append(frame)
        size += cost
    if group:
        yield group
