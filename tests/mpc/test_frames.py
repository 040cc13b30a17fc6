"""Typed frames: exact round trips, canonical encoding, chunking, and reasons for bad frames."""

import hashlib

import pytest
import torch

from mpc_ledger.mpc import frames
from mpc_ledger.proto.v1 import mpc_pb2


def tensor_frame(tensors, **labels):
    specs, data = frames.encode_tensors(tensors)
    frame = mpc_pb2.MpcFrame(
        job_id=labels.get("job_id", "j"),
        seq=labels.get("seq", 0),
        sender_rank=labels.get("sender", 0),
        receiver_rank=labels.get("receiver", 1),
        kind=mpc_pb2.FRAME_KIND_TENSORS,
        data=data,
    )
    frame.tensors.extend(specs)
    return frame


@pytest.mark.parametrize("dtype", [t for t, _ in frames.DTYPES.values()])
def test_every_carried_dtype_round_trips_exactly(dtype):
    source = (torch.arange(-6, 6).reshape(3, 4) * 7).to(dtype)
    frame = tensor_frame([source, source[:1]])
    assert frames.frame_problem(frame) is None
    first, second = frames.decode_tensors(frame.tensors, frame.data)
    assert first.dtype == dtype and torch.equal(first, source)
    assert torch.equal(second, source[:1])


def test_int64_extremes_and_zero_dim_tensors():
    values = torch.tensor([-(2**63), 2**63 - 1, 0])
    scalar = torch.tensor(5)
    frame = tensor_frame([values, scalar])
    decoded = frames.decode_tensors(frame.tensors, frame.data)
    assert torch.equal(decoded[0], values) and decoded[1].shape == () and decoded[1].item() == 5


def test_unsupported_dtype_is_refused_with_its_name():
    with pytest.raises(frames.FrameError, match="complex64"):
        frames.encode_tensors([torch.zeros(2, dtype=torch.complex64)])


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda f: setattr(f, "data", f.data[:-1]), "declare 32 bytes but the frame carries 31"),
        (lambda f: setattr(f.tensors[0], "dtype", "pickle"), "dtype 'pickle' is not one of"),
        (lambda f: f.tensors[0].shape.__setitem__(0, -4), "negative dimension"),
        (lambda f: f.tensors[0].shape.extend([1] * 20), "dimensions (limit"),
        (lambda f: setattr(f, "kind", 9), "unknown frame kind 9"),
        (lambda f: f.object.SetInParent(), "also carries an object"),
    ],
)
def test_malformed_frames_get_a_reason(mutate, reason):
    frame = tensor_frame([torch.arange(4)])
    mutate(frame)
    problem = frames.frame_problem(frame)
    assert problem is not None and reason in problem


def test_a_bool_tensor_with_a_byte_other_than_0_or_1_is_refused():
    frame = tensor_frame([torch.arange(2), torch.tensor([True, False, True])])
    assert frames.frame_problem(frame) is None
    frame.data = frame.data[:-2] + b"\x02\x01"
    assert (
        frames.frame_problem(frame) == "tensor 1: a bool tensor with a byte that is neither 0 nor 1"
    )


def test_canonical_header_separates_every_label_field():
    base = tensor_frame([torch.arange(4)])
    variants = []
    for field, value in [("job_id", "k"), ("seq", 1), ("sender_rank", 2), ("receiver_rank", 2)]:
        other = mpc_pb2.MpcFrame()
        other.CopyFrom(base)
        setattr(other, field, value)
        variants.append(other)
    reshaped = tensor_frame([torch.arange(4).reshape(2, 2)])
    variants.append(reshaped)
    encodings = {frames.canonical_header(f) + f.data for f in [base, *variants]}
    assert len(encodings) == 1 + len(variants)
    # the daemon's stamp and the chunking are transport details, not hashed
    stamped = mpc_pb2.MpcFrame()
    stamped.CopyFrom(base)
    stamped.sender_member = "a"
    stamped.chunk_count = 1
    assert frames.canonical_header(stamped) == frames.canonical_header(base)


def test_large_frames_travel_in_chunks_and_reassemble():
    big = torch.arange(300_000, dtype=torch.int64)  # 2.4 MB
    frame = tensor_frame([big], seq=3)
    digest = hashlib.sha256(frames.canonical_header(frame) + frame.data).digest()
    chunks = list(frames.split_chunks(frame, chunk_bytes=1 << 20))
    assert len(chunks) == 3 and all(c.chunk_count == 3 for c in chunks)
    assert not chunks[1].tensors  # the header rides in chunk 0 only
    assembler = frames.ChunkAssembler()
    assert assembler.add(chunks[0]) is None and assembler.add(chunks[1]) is None
    whole = assembler.add(chunks[2])
    assert whole is not None and frames.frame_problem(whole) is None
    assert hashlib.sha256(frames.canonical_header(whole) + whole.data).digest() == digest
    assert torch.equal(frames.decode_tensors(whole.tensors, whole.data)[0], big)


def test_inconsistent_chunks_are_refused():
    frame = tensor_frame([torch.arange(300_000)])
    chunks = list(frames.split_chunks(frame, chunk_bytes=1 << 20))
    assembler = frames.ChunkAssembler()
    with pytest.raises(frames.FrameError, match="before chunk 0"):
        assembler.add(chunks[1])
    assembler.add(chunks[0])
    with pytest.raises(frames.FrameError, match="out of order"):
        assembler.add(chunks[2])
    small = frames.ChunkAssembler(max_frame_bytes=frames.CHUNK_BYTES)
    with pytest.raises(frames.FrameError, match="exceed"):
        small.add(mpc_pb2.MpcFrame(chunk_index=0, chunk_count=100))
