"""A trained model's canonical encoding: what its hash on the ledger covers, and what
`Jobs/Result` serves.

The encoding is the parameters by name, in sorted order, each as: the name's
length (u32, big-endian), the name (UTF-8), the number of dimensions (u32),
each dimension (u64), then the values as float32 little-endian. The model
hash a job's `job_completed` record carries is SHA-256 over `MODEL_TAG` and
this encoding, so a recipient checks the bytes a daemon served against the
ledger before writing anything, and decodes them without unpickling anything.
Pure (numpy only); every length is bounded.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

__all__ = [
    "MODEL_MAX_BYTES",
    "MODEL_TAG",
    "ModelFormatError",
    "decode_model",
    "encode_model",
    "model_digest_of_encoding",
]

MODEL_TAG = b"mpc-ledger/model/v1\x00"
MODEL_MAX_BYTES = 1 << 30
NAME_MAX_BYTES = 256
DIMS_MAX = 8
PARAMETERS_MAX = 10_000


class ModelFormatError(ValueError):
    """Bytes that are not a model's canonical encoding (the message says where)."""


def encode_model(parameters: Mapping[str, Any]) -> Iterator[bytes]:
    """The canonical encoding of ``parameters`` (name -> nested lists or an array), in parts."""
    for name in sorted(parameters):
        values = np.asarray(parameters[name], dtype=np.float32)
        encoded_name = name.encode()
        yield struct.pack(">I", len(encoded_name)) + encoded_name
        yield struct.pack(">I", values.ndim)
        yield b"".join(struct.pack(">Q", size) for size in values.shape)
        yield values.astype("<f4").tobytes()


def model_digest_of_encoding(parts: Iterator[bytes]) -> bytes:
    """The model hash (as on the ledger) of an encoding given in parts."""
    digest = hashlib.sha256(MODEL_TAG)
    for part in parts:
        digest.update(part)
    return digest.digest()


def decode_model(encoded: bytes) -> dict[str, np.ndarray[Any, Any]]:
    """The parameters (float32 arrays) of a canonical encoding; `ModelFormatError` if it
    is not one (truncated, over a limit, names out of order, trailing bytes)."""
    if len(encoded) > MODEL_MAX_BYTES:
        raise ModelFormatError(f"model of {len(encoded)} bytes; at most {MODEL_MAX_BYTES}")
    parameters: dict[str, np.ndarray[Any, Any]] = {}
    offset, previous = 0, ""
    while offset < len(encoded):
        if len(parameters) >= PARAMETERS_MAX:
            raise ModelFormatError(f"more than {PARAMETERS_MAX} parameters")
        where = f"parameter {len(parameters)} at byte {offset}"
        (name_bytes,), offset = _take(encoded, offset, ">I", where)
        if name_bytes > NAME_MAX_BYTES:
            raise ModelFormatError(f"{where}: name of {name_bytes} bytes")
        raw_name, offset = _slice(encoded, offset, name_bytes, where)
        try:
            name = raw_name.decode()
        except UnicodeDecodeError:
            raise ModelFormatError(f"{where}: name is not UTF-8") from None
        if parameters and name <= previous:
            raise ModelFormatError(f"{where}: {name!r} is not after {previous!r}")
        (dims,), offset = _take(encoded, offset, ">I", where)
        if dims > DIMS_MAX:
            raise ModelFormatError(f"{where}: {dims} dimensions; at most {DIMS_MAX}")
        shape, offset = _take(encoded, offset, ">" + "Q" * dims, where)
        count = 1
        for size in shape:
            count *= size
            if count * 4 > MODEL_MAX_BYTES:
                raise ModelFormatError(f"{where}: shape {shape} is too large")
        values, offset = _slice(encoded, offset, count * 4, where)
        parameters[name] = np.frombuffer(values, dtype="<f4").reshape(shape).astype(np.float32)
        previous = name
    return parameters


def _take(data: bytes, offset: int, layout: str, where: str) -> tuple[tuple[int, ...], int]:
    size = struct.calcsize(layout)
    raw, offset = _slice(data, offset, size, where)
    return struct.unpack(layout, raw), offset


def _slice(data: bytes, offset: int, size: int, where: str) -> tuple[bytes, int]:
    if offset + size > len(data):
        raise ModelFormatError(f"{where}: truncated")
    return data[offset : offset + size], offset + size
