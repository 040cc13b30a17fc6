"""Typed frames: tensors as (dtype, shape, raw bytes), their canonical hash encoding, chunks.

Theory of operation:

* A logical frame is (job id, seq, sender rank, receiver rank, kind, tensor
  specs, object, data). ``data`` is the concatenation of the tensors' raw
  little-endian bytes in spec order. Nothing is pickled; a frame from a peer
  is decoded only into the dtypes in `DTYPES`, and only when its byte count
  matches its specs exactly.
* `canonical_header` is the byte string the transcript hashes in front of
  ``data``: a purpose tag, then every field length-prefixed (8-byte
  big-endian lengths, fixed-width integers), so two different frames can
  never encode to the same bytes.
* A logical frame larger than `CHUNK_BYTES` travels as several `MpcFrame`
  messages (`split_chunks`); `ChunkAssembler` puts them back together and
  refuses chunks that disagree with the first one or exceed the size limit.
* `frame_problem` validates an untrusted (reassembled) frame and returns a
  reason, never raises or asserts.
* One tensor's rules (`encode_tensor`, `spec_problem`, `data_problem`,
  `decode_tensor`) are shared with the object encoding (`objects`), where a
  tensor travels inside an `MpcObject`: the same dtypes, dimensions and exact
  byte count. A bool tensor's bytes must each be 0 or 1 (torch would keep
  any other byte as an invalid bool).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from mpc_ledger.proto.v1 import mpc_pb2

__all__ = [
    "CHUNK_BYTES",
    "DTYPES",
    "FRAME_MAX_BYTES",
    "ChunkAssembler",
    "FrameError",
    "canonical_header",
    "data_problem",
    "decode_tensor",
    "decode_tensors",
    "encode_tensor",
    "encode_tensors",
    "frame_data_bytes",
    "frame_problem",
    "spec_problem",
    "spec_size_bytes",
    "split_chunks",
]

# One gRPC message stays far below mtls.MESSAGE_MAX_BYTES (16 MiB).
CHUNK_BYTES = 4 * 1024 * 1024
# A logical frame above this is refused by sender and receiver alike.
FRAME_MAX_BYTES = 512 * 1024 * 1024
TENSORS_PER_FRAME_MAX = 4096
DIMS_MAX = 16

_FRAME_TAG = b"mpc-ledger/mpc-frame/v1\x00"

# name -> (torch dtype, numpy little-endian dtype)
DTYPES: dict[str, tuple[torch.dtype, np.dtype]] = {
    "int64": (torch.int64, np.dtype("<i8")),
    "int32": (torch.int32, np.dtype("<i4")),
    "int16": (torch.int16, np.dtype("<i2")),
    "int8": (torch.int8, np.dtype("i1")),
    "uint8": (torch.uint8, np.dtype("u1")),
    "bool": (torch.bool, np.dtype("?")),
    "float64": (torch.float64, np.dtype("<f8")),
    "float32": (torch.float32, np.dtype("<f4")),
}
_NAME_OF = {torch_dtype: name for name, (torch_dtype, _) in DTYPES.items()}


class FrameError(Exception):
    """A frame that cannot be encoded, or an untrusted one that is malformed."""


def spec_size_bytes(spec: mpc_pb2.TensorSpec) -> int:
    """The byte count a spec declares (its dtype must be one of `DTYPES`)."""
    count = 1
    for dim in spec.shape:
        count *= dim
    return count * DTYPES[spec.dtype][1].itemsize


def spec_problem(spec: mpc_pb2.TensorSpec) -> str | None:
    """Why an untrusted tensor spec is malformed (dtype, dimensions), or None."""
    if spec.dtype not in DTYPES:
        return f"dtype {spec.dtype[:32]!r} is not one of {list(DTYPES)}"
    if len(spec.shape) > DIMS_MAX:
        return f"{len(spec.shape)} dimensions (limit {DIMS_MAX})"
    if any(dim < 0 for dim in spec.shape):
        return f"negative dimension in {list(spec.shape)}"
    return None


def data_problem(spec: mpc_pb2.TensorSpec, raw: bytes) -> str | None:
    """Why a valid spec's raw bytes are not a tensor of it (byte count, bool bytes), or None."""
    expected = spec_size_bytes(spec)
    if expected != len(raw):
        return f"spec declares {expected} bytes but {len(raw)} came"
    if spec.dtype == "bool" and raw.count(0) + raw.count(1) != len(raw):
        return "a bool tensor with a byte that is neither 0 nor 1"
    return None


def encode_tensor(tensor: torch.Tensor) -> tuple[mpc_pb2.TensorSpec, bytes]:
    """One tensor's spec and raw little-endian bytes; FrameError for a dtype we do not carry."""
    name = _NAME_OF.get(tensor.dtype)
    if name is None:
        raise FrameError(f"tensor dtype {tensor.dtype} cannot be sent (allowed: {list(DTYPES)})")
    array = tensor.detach().cpu().contiguous().numpy()
    raw = array.astype(DTYPES[name][1], copy=False).tobytes()
    return mpc_pb2.TensorSpec(dtype=name, shape=list(tensor.shape)), raw


def encode_tensors(
    tensors: Sequence[torch.Tensor],
) -> tuple[list[mpc_pb2.TensorSpec], bytes]:
    """Specs and concatenated raw bytes; FrameError for a dtype we do not carry."""
    specs: list[mpc_pb2.TensorSpec] = []
    parts: list[bytes] = []
    for tensor in tensors:
        spec, raw = encode_tensor(tensor)
        specs.append(spec)
        parts.append(raw)
    data = b"".join(parts)
    if len(data) > FRAME_MAX_BYTES:
        raise FrameError(f"frame of {len(data)} bytes exceeds the limit of {FRAME_MAX_BYTES}")
    return specs, data


def decode_tensor(spec: mpc_pb2.TensorSpec, data: bytes, offset: int = 0) -> torch.Tensor:
    """The tensor ``spec`` declares at ``offset`` of ``data``, already checked (own copy)."""
    numpy_dtype = DTYPES[spec.dtype][1]
    count = spec_size_bytes(spec) // numpy_dtype.itemsize
    array = np.frombuffer(data, dtype=numpy_dtype, count=count, offset=offset)
    return torch.from_numpy(array.copy()).reshape(tuple(spec.shape))


def decode_tensors(specs: Sequence[mpc_pb2.TensorSpec], data: bytes) -> list[torch.Tensor]:
    """Tensors from a frame already checked by `frame_problem` (own writable copies)."""
    tensors: list[torch.Tensor] = []
    offset = 0
    for spec in specs:
        tensors.append(decode_tensor(spec, data, offset))
        offset += spec_size_bytes(spec)
    return tensors


def frame_data_bytes(frame: mpc_pb2.MpcFrame) -> int:
    return sum(spec_size_bytes(spec) for spec in frame.tensors)


def _u64(value: int) -> bytes:
    return struct.pack(">Q", value)


def _field(raw: bytes) -> bytes:
    return _u64(len(raw)) + raw


def canonical_header(frame: mpc_pb2.MpcFrame) -> bytes:
    """Everything of a logical frame except ``data``, canonically, for hashing.

    The data length is included, so hashing ``header + data`` is unambiguous.
    ``sender_member`` and chunking are transport details and not included:
    the sender and the receiver hash the same bytes.
    """
    parts = [
        _FRAME_TAG,
        _field(frame.job_id.encode()),
        _u64(frame.seq),
        _u64(frame.sender_rank),
        _u64(frame.receiver_rank),
        _u64(frame.kind),
        _u64(len(frame.tensors)),
    ]
    for spec in frame.tensors:
        parts.append(_field(spec.dtype.encode()))
        parts.append(_u64(len(spec.shape)))
        parts.extend(struct.pack(">q", dim) for dim in spec.shape)
    has_object = frame.HasField("object")
    parts.append(_field(frame.object.SerializeToString(deterministic=True) if has_object else b""))
    parts.append(_u64(len(frame.data)))
    return b"".join(parts)


def frame_problem(frame: mpc_pb2.MpcFrame) -> str | None:
    """Why a reassembled frame from a peer is malformed, or None."""
    if frame.kind == mpc_pb2.FRAME_KIND_TENSORS:
        if not frame.tensors:
            return "tensor frame without tensors"
        if len(frame.tensors) > TENSORS_PER_FRAME_MAX:
            return f"{len(frame.tensors)} tensors in one frame (limit {TENSORS_PER_FRAME_MAX})"
        expected = 0
        for index, spec in enumerate(frame.tensors):
            problem = spec_problem(spec)
            if problem is not None:
                return f"tensor {index}: {problem}"
            expected += spec_size_bytes(spec)
            if expected > FRAME_MAX_BYTES:
                return f"declared size exceeds the limit of {FRAME_MAX_BYTES} bytes"
        if expected != len(frame.data):
            return f"specs declare {expected} bytes but the frame carries {len(frame.data)}"
        problem = _bool_data_problem(frame)
        if problem is not None:
            return problem
        if frame.HasField("object"):
            return "tensor frame also carries an object"
        return None
    if frame.kind == mpc_pb2.FRAME_KIND_OBJECT:
        if not frame.HasField("object"):
            return "object frame without an object"
        if frame.tensors or frame.data:
            return "object frame also carries tensor data"
        return None
    if frame.kind == mpc_pb2.FRAME_KIND_BARRIER:
        if frame.tensors or frame.data or frame.HasField("object"):
            return "barrier frame with a payload"
        return None
    return f"unknown frame kind {frame.kind}"


def _bool_data_problem(frame: mpc_pb2.MpcFrame) -> str | None:
    offset = 0
    for index, spec in enumerate(frame.tensors):
        size = spec_size_bytes(spec)
        if spec.dtype == "bool":
            problem = data_problem(spec, frame.data[offset : offset + size])
            if problem is not None:
                return f"tensor {index}: {problem}"
        offset += size
    return None


def split_chunks(
    frame: mpc_pb2.MpcFrame, chunk_bytes: int = CHUNK_BYTES
) -> Iterator[mpc_pb2.MpcFrame]:
    """The wire messages for one logical frame (itself, when small)."""
    if len(frame.data) <= chunk_bytes:
        frame.chunk_index = 0
        frame.chunk_count = 1
        yield frame
        return
    data = frame.data
    count = (len(data) + chunk_bytes - 1) // chunk_bytes
    for index in range(count):
        piece = data[index * chunk_bytes : (index + 1) * chunk_bytes]
        if index == 0:
            chunk = mpc_pb2.MpcFrame()
            chunk.CopyFrom(frame)
            chunk.data = piece
        else:
            chunk = mpc_pb2.MpcFrame(
                job_id=frame.job_id,
                seq=frame.seq,
                sender_rank=frame.sender_rank,
                receiver_rank=frame.receiver_rank,
                data=piece,
            )
        chunk.chunk_index = index
        chunk.chunk_count = count
        yield chunk


class ChunkAssembler:
    """Reassembles chunked frames per (sender, seq); refuses inconsistent chunks."""

    def __init__(self, max_frame_bytes: int = FRAME_MAX_BYTES) -> None:
        self._max_frame_bytes = max_frame_bytes
        self._partial: dict[tuple[int, int], tuple[mpc_pb2.MpcFrame, list[bytes], int]] = {}

    def add(self, chunk: mpc_pb2.MpcFrame) -> mpc_pb2.MpcFrame | None:
        """The whole frame once its last chunk arrives, else None; FrameError if inconsistent."""
        count = chunk.chunk_count or 1
        if count == 1:
            if chunk.chunk_index != 0:
                raise FrameError(f"chunk index {chunk.chunk_index} of a one-chunk frame")
            return chunk
        if count > self._max_frame_bytes // CHUNK_BYTES + 1:
            raise FrameError(f"{count} chunks exceed the frame size limit")
        key = (chunk.sender_rank, chunk.seq)
        if chunk.chunk_index == 0:
            if key in self._partial:
                raise FrameError(f"chunk 0 of frame seq {chunk.seq} arrived twice")
            self._partial[key] = (chunk, [chunk.data], len(chunk.data))
            return None
        entry = self._partial.get(key)
        if entry is None:
            raise FrameError(f"chunk {chunk.chunk_index} of frame seq {chunk.seq} before chunk 0")
        head, pieces, size = entry
        if chunk.chunk_index != len(pieces) or head.chunk_count != count:
            raise FrameError(
                f"chunk {chunk.chunk_index}/{count} of frame seq {chunk.seq} out of order"
            )
        size += len(chunk.data)
        if size > self._max_frame_bytes:
            raise FrameError(f"frame seq {chunk.seq} exceeds {self._max_frame_bytes} bytes")
        pieces.append(chunk.data)
        if len(pieces) < count:
            self._partial[key] = (head, pieces, size)
            return None
        del self._partial[key]
        whole = mpc_pb2.MpcFrame()
        whole.CopyFrom(head)
        whole.data = b"".join(pieces)
        whole.chunk_index = 0
        whole.chunk_count = 1
        return whole
