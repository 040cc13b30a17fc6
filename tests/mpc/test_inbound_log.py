"""The encrypted inbound log: exact round trips, every kind of damage refused with its reason,
the links around it, and digests equal to what the communicator's transcript computes."""

import os
import struct
from concurrent import futures

import pytest
import torch

from mpc_ledger.mpc import frames, inbound_log
from mpc_ledger.mpc.communicator import CommunicatorSetup, MpcCommunicator
from mpc_ledger.mpc.errors import MpcError
from mpc_ledger.mpc.inbound_log import (
    InboundLogError,
    InboundLogWriter,
    LoggingLink,
    ReplayExhausted,
    ReplayLink,
    inbound_channel_counts,
    inbound_prefix_digests,
    load_or_create_log_key,
    read_inbound_log,
)
from mpc_ledger.mpc.transcript import Transcript
from mpc_ledger.proto.v1 import mpc_pb2
from mpc_ledger.testing.mpc_links import MemoryHub

JOB, RANK, MEMBER = "job-7", 0, "bank-a"
OWNER = {"job_id": JOB, "rank": RANK, "member": MEMBER}


def tensor_frame(seq, sender, *, numel=64, receiver=RANK, fill=None):
    values = torch.arange(numel, dtype=torch.int64) * (seq + 1) + sender
    if fill is not None:
        values = torch.full((numel,), fill, dtype=torch.int64)
    specs, data = frames.encode_tensors([values])
    frame = mpc_pb2.MpcFrame(
        job_id=JOB,
        seq=seq,
        sender_rank=sender,
        receiver_rank=receiver,
        kind=mpc_pb2.FRAME_KIND_TENSORS,
        data=data,
        sender_member=f"member-{sender}",
    )
    frame.tensors.extend(specs)
    return frame


def received_chunks():
    """What rank 0 receives from ranks 1 and 2, interleaved, with one logical frame of
    rank 1 in several chunks; plus the logical frames, for the expected transcript."""
    logical = []
    chunks = []
    for seq in range(6):
        for sender in (1, 2):
            numel = 2_000 if (sender, seq) == (1, 3) else 16 + seq
            frame = tensor_frame(seq, sender, numel=numel)
            logical.append(frame)
            reference = mpc_pb2.MpcFrame()
            reference.CopyFrom(frame)
            chunks.extend(frames.split_chunks(reference, chunk_bytes=4_000))
    return logical, chunks


@pytest.fixture
def key(tmp_path):
    return load_or_create_log_key(tmp_path / "inbound-log.key")


def write_log(path, key, chunks, *, chunk_bytes=1 << 20, **owner):
    writer = InboundLogWriter(path, key, **(owner or OWNER), chunk_bytes=chunk_bytes)
    for chunk in chunks:
        writer.append(chunk)
    writer.close()
    return writer


def chunk_spans(path):
    """(offset, length) of every sealed chunk of a log, length prefix included."""
    raw = path.read_bytes()
    fixed = inbound_log._FIXED_HEADER.size
    offset = fixed
    for _ in range(2):
        (length,) = struct.unpack_from(">H", raw, offset)
        offset += 2 + length
    spans = []
    while offset < len(raw):
        (length,) = struct.unpack_from(">I", raw, offset)
        spans.append((offset, 4 + length))
        offset += 4 + length
    return spans


def test_round_trip_keeps_every_chunk_in_order(tmp_path, key):
    _, chunks = received_chunks()
    assert len(chunks) > 12  # one logical frame did travel in several chunks
    path = tmp_path / "inbound.log"
    write_log(path, key, chunks, chunk_bytes=2_048)
    assert len(chunk_spans(path)) > 3
    assert read_inbound_log(path, key, **OWNER) == chunks
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_an_empty_log_is_one_final_chunk(tmp_path, key):
    path = tmp_path / "inbound.log"
    write_log(path, key, [])
    assert read_inbound_log(path, key, **OWNER) == []
    assert len(chunk_spans(path)) == 1


def test_close_is_idempotent_and_append_after_close_is_refused(tmp_path, key):
    writer = write_log(tmp_path / "inbound.log", key, [tensor_frame(0, 1)])
    writer.close()
    with pytest.raises(InboundLogError, match="closed"):
        writer.append(tensor_frame(1, 1))


def test_prefix_digests_equal_the_communicators_transcript(tmp_path, key):
    logical, chunks = received_chunks()
    path = tmp_path / "inbound.log"
    write_log(path, key, chunks, chunk_bytes=2_048)
    logged = read_inbound_log(path, key, **OWNER)

    # What a communicator of rank 0 folds in: each logical frame as it consumes it.
    expected = Transcript(JOB, RANK)
    watch = {(1, 0): [0, 2, 4, 6], (2, 0): [3, 6, 9]}
    for (sender, receiver), counts in watch.items():
        expected.watch(sender, receiver, counts)
    for frame in logical:
        expected.record(frame)

    digests = inbound_prefix_digests(logged, RANK, JOB, watch)
    assert digests == expected.prefix_digests()
    assert set(digests[(1, 0)]) == {0, 2, 4, 6}
    assert set(digests[(2, 0)]) == {3, 6}  # 9 messages never came: no digest claimed
    assert inbound_channel_counts(logged) == {(1, 0): 6, (2, 0): 6}


def test_prefix_digests_see_a_changed_payload():
    _, chunks = received_chunks()
    watch = {(2, 0): [6]}
    honest = inbound_prefix_digests(chunks, RANK, JOB, watch)
    chunks[-1].data = bytes([chunks[-1].data[0] ^ 1]) + chunks[-1].data[1:]
    assert inbound_prefix_digests(chunks, RANK, JOB, watch) != honest


def test_prefix_digests_refuse_a_duplicated_frame_and_a_foreign_job():
    _, chunks = received_chunks()
    with pytest.raises(InboundLogError, match="seq 0 of channel 1->0 arrived twice"):
        inbound_prefix_digests([chunks[0], chunks[0]], RANK, JOB, {})
    with pytest.raises(InboundLogError, match="not rank 0's inbound frame of job 'other'"):
        inbound_prefix_digests(chunks, RANK, "other", {})


def test_one_flipped_byte_fails_authentication(tmp_path, key):
    path = tmp_path / "inbound.log"
    write_log(path, key, received_chunks()[1], chunk_bytes=2_048)
    offset, length = chunk_spans(path)[1]
    raw = bytearray(path.read_bytes())
    raw[offset + length // 2] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(InboundLogError, match=r"inbound\.log: chunk 1 fails authentication"):
        read_inbound_log(path, key, **OWNER)


def test_a_changed_header_salt_fails_authentication(tmp_path, key):
    path = tmp_path / "inbound.log"
    write_log(path, key, [tensor_frame(0, 1)])
    raw = bytearray(path.read_bytes())
    raw[12] ^= 0x80  # inside the salt
    path.write_bytes(bytes(raw))
    with pytest.raises(InboundLogError, match="chunk 0 fails authentication"):
        read_inbound_log(path, key, **OWNER)


def test_truncated_mid_chunk_and_after_a_non_final_chunk(tmp_path, key):
    path = tmp_path / "inbound.log"
    write_log(path, key, received_chunks()[1], chunk_bytes=2_048)
    raw = path.read_bytes()
    spans = chunk_spans(path)

    path.write_bytes(raw[: spans[2][0] + 10])
    with pytest.raises(InboundLogError, match="truncated: chunk 2 is cut short"):
        read_inbound_log(path, key, **OWNER)

    path.write_bytes(raw[: spans[2][0] + 2])
    with pytest.raises(InboundLogError, match="truncated: chunk 2 is cut short inside its length"):
        read_inbound_log(path, key, **OWNER)

    path.write_bytes(raw[: spans[2][0]])
    with pytest.raises(InboundLogError, match="truncated: ends after chunk 1 without the final"):
        read_inbound_log(path, key, **OWNER)

    path.write_bytes(raw[: spans[0][0]])
    with pytest.raises(InboundLogError, match="truncated: ends after its header"):
        read_inbound_log(path, key, **OWNER)


def test_a_dropped_chunk_is_refused(tmp_path, key):
    path = tmp_path / "inbound.log"
    write_log(path, key, received_chunks()[1], chunk_bytes=2_048)
    raw = path.read_bytes()
    offset, length = chunk_spans(path)[1]
    path.write_bytes(raw[:offset] + raw[offset + length :])
    with pytest.raises(InboundLogError, match="chunk 1 fails authentication"):
        read_inbound_log(path, key, **OWNER)


def test_swapped_chunks_are_refused(tmp_path, key):
    path = tmp_path / "inbound.log"
    write_log(path, key, received_chunks()[1], chunk_bytes=2_048)
    raw = path.read_bytes()
    (a, a_len), (b, b_len) = chunk_spans(path)[:2]
    swapped = raw[:a] + raw[b : b + b_len] + raw[a : a + a_len] + raw[b + b_len :]
    assert swapped != raw and len(swapped) == len(raw)
    path.write_bytes(swapped)
    with pytest.raises(InboundLogError, match="chunk 0 fails authentication"):
        read_inbound_log(path, key, **OWNER)


def test_bytes_after_the_final_chunk_are_refused(tmp_path, key):
    path = tmp_path / "inbound.log"
    write_log(path, key, [tensor_frame(0, 1)])
    with path.open("ab") as handle:
        handle.write(b"\x00\x00\x00\x05hello")
    with pytest.raises(InboundLogError, match="9 bytes after the final chunk"):
        read_inbound_log(path, key, **OWNER)


def test_another_key_is_refused(tmp_path, key):
    path = tmp_path / "inbound.log"
    write_log(path, key, [tensor_frame(0, 1)])
    other = load_or_create_log_key(tmp_path / "other.key")
    assert other != key
    with pytest.raises(InboundLogError, match="chunk 0 fails authentication"):
        read_inbound_log(path, other, **OWNER)


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("job_id", "job-8", "another job"),
        ("rank", 1, "another rank"),
        ("member", "bank-b", "another member"),
    ],
)
def test_a_log_of_another_job_rank_or_member_is_refused(tmp_path, key, field, value, reason):
    path = tmp_path / "inbound.log"
    write_log(path, key, [tensor_frame(0, 1)])
    with pytest.raises(InboundLogError, match=reason):
        read_inbound_log(path, key, **{**OWNER, field: value})


def test_not_a_log_and_an_unknown_version(tmp_path, key):
    path = tmp_path / "inbound.log"
    path.write_bytes(b"PK\x03\x04 a zip file, say")
    with pytest.raises(InboundLogError, match="not an inbound log"):
        read_inbound_log(path, key, **OWNER)
    path.unlink()
    write_log(path, key, [])
    raw = bytearray(path.read_bytes())
    raw[8:10] = (2).to_bytes(2, "big")
    path.write_bytes(bytes(raw))
    with pytest.raises(InboundLogError, match="version 2 is unknown"):
        read_inbound_log(path, key, **OWNER)


def test_a_record_that_is_not_an_mpc_frame(tmp_path, key):
    # A log sealed with the right key whose record is not an MpcFrame: only a writer
    # with the key (a bug, not an attacker) can produce it, and it is still named.
    path = tmp_path / "inbound.log"
    header = inbound_log._Header(os.urandom(32), JOB, RANK, MEMBER).encode()
    cipher = inbound_log._file_cipher(key, header[10:42])
    digest = inbound_log.hashlib.sha256(header).digest()
    record = b"\xff\xff\xff"  # an invalid tag/varint: not a protobuf message
    sealed = cipher.encrypt(
        inbound_log._nonce(0),
        struct.pack(">I", len(record)) + record,
        inbound_log._aad(digest, 0, True),
    )
    path.write_bytes(header + struct.pack(">I", len(sealed)) + sealed)
    with pytest.raises(InboundLogError, match="record 0 of chunk 0 is not an MpcFrame"):
        read_inbound_log(path, key, **OWNER)


def test_an_existing_log_is_never_overwritten(tmp_path, key):
    path = tmp_path / "inbound.log"
    path.write_bytes(b"earlier run")
    with pytest.raises(InboundLogError, match=r"inbound\.log: an inbound log already exists"):
        InboundLogWriter(path, key, **OWNER)
    assert path.read_bytes() == b"earlier run"


def test_the_log_key_is_created_once_and_refused_when_unsafe(tmp_path):
    path = tmp_path / "keys" / "inbound-log.key"
    first = load_or_create_log_key(path)
    assert len(first) == inbound_log.LOG_KEY_BYTES
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert load_or_create_log_key(path) == first

    os.chmod(path, 0o644)
    with pytest.raises(InboundLogError, match=r"inbound-log\.key: .*open to group or others"):
        load_or_create_log_key(path)

    short = tmp_path / "short.key"
    short.write_bytes(b"x" * 31)
    os.chmod(short, 0o600)
    with pytest.raises(InboundLogError, match=r"short\.key: a log key is 32 bytes, .* has 31"):
        load_or_create_log_key(short)


def test_size_overhead_of_many_small_frames(tmp_path, key):
    path = tmp_path / "inbound.log"
    chunks = [tensor_frame(seq, 1 + seq % 2, numel=70) for seq in range(2_000)]
    assert 550 < chunks[0].ByteSize() < 650
    writer = write_log(path, key, chunks)
    received = sum(chunk.ByteSize() for chunk in chunks)
    assert writer.appended_bytes == received
    assert path.stat().st_size <= 1.1 * received


class FakeLink:
    """The transport a LoggingLink wraps: scripted deliveries, sends kept."""

    def __init__(self, deliveries):
        self.deliveries = list(deliveries)
        self.sent = []
        self.closed_with = "open"

    def send(self, chunks):
        self.sent.extend(chunks)

    def poll(self, timeout_s):
        return self.deliveries.pop(0) if self.deliveries else None

    def close(self, *, abort_reason=None):
        self.closed_with = abort_reason


def test_logging_link_logs_what_it_delivers_and_closes_the_log_first(tmp_path, key):
    _, chunks = received_chunks()
    failure = mpc_pb2.PartyFailure(member_id="member-2", rank=2, reason="worker died")
    deliveries = [
        mpc_pb2.RelayToWorker(frames=chunks[:5]),
        None,
        mpc_pb2.RelayToWorker(frames=chunks[5:], failures=[failure]),
    ]
    inner = FakeLink(deliveries)
    path = tmp_path / "inbound.log"
    link = LoggingLink(inner, InboundLogWriter(path, key, **OWNER))

    got = [link.poll(0.1) for _ in range(3)]
    assert got == deliveries  # handed on unchanged, failures included
    outgoing = [tensor_frame(0, RANK, receiver=1)]
    link.send(outgoing)
    assert inner.sent == outgoing
    link.close(abort_reason="done early")

    assert inner.closed_with == "done early"
    assert read_inbound_log(path, key, **OWNER) == chunks


def test_replay_link_serves_the_log_then_says_it_is_exhausted():
    _, chunks = received_chunks()
    link = ReplayLink(chunks[:2])
    assert list(link.poll(60.0).frames) == [chunks[0]]
    assert list(link.poll(60.0).frames) == [chunks[1]]
    link.send(chunks[2:4])
    assert link.sent_chunks == 2
    assert link.sent_bytes == chunks[2].ByteSize() + chunks[3].ByteSize()
    with pytest.raises(ReplayExhausted, match="waits for a frame the party never received"):
        link.poll(60.0)
    assert issubclass(ReplayExhausted, MpcError)
    link.close()


# --- with the real communicator: what rank 0 logged replays its side exactly ---------------

PARTY_MEMBERS = ("bank-a", "bank-b", "bank-c")
BIG_NUMEL = frames.CHUNK_BYTES // 8 + 1_000  # one logical frame in two chunks


def communicator(rank, link):
    setup = CommunicatorSetup(
        job_id=JOB,
        rank=rank,
        world_size=3,
        members=PARTY_MEMBERS,
        link_factory=lambda: link,
        tuple_provider="trusted-first-party",
        allow_trusted_first_party=True,
        peer_timeout_s=5.0,
    )
    return MpcCommunicator(setup, init_ttp=False)


def party_program(comm, *, deviate=False):
    """A little of everything the communicator does: collectives, a chunked frame, objects.
    ``deviate`` changes one value rank 0 sends and nothing it receives."""
    mine = torch.arange(6, dtype=torch.int64) * (comm.rank + 1)
    if deviate and comm.rank == 0:
        mine[3] += 1
    total = comm.all_reduce(mine)
    if comm.rank == 1:
        comm.send(torch.arange(BIG_NUMEL, dtype=torch.int64), dst=0)
    big = torch.zeros(BIG_NUMEL, dtype=torch.int64)
    if comm.rank == 0:
        comm.recv(big, src=1)
    gathered = comm.gather(total + comm.rank, dst=0)
    shared = comm.broadcast_obj({"epoch": 1} if comm.rank == 2 else None, src=2)
    comm.barrier()
    return total, int(big.sum()), gathered, shared


def run_job(tmp_path, key):
    hub = MemoryHub(PARTY_MEMBERS)
    writer = InboundLogWriter(tmp_path / "inbound.log", key, **OWNER)
    links = [LoggingLink(hub.link(0), writer), hub.link(1), hub.link(2)]
    comms = [communicator(rank, link) for rank, link in enumerate(links)]
    with futures.ThreadPoolExecutor(3) as pool:
        results = [f.result(timeout=60) for f in [pool.submit(party_program, c) for c in comms]]
    for comm in comms:
        comm.close()
    return comms[0].snapshot("end"), results[0]


def test_the_log_gives_the_digests_rank_0_recorded_and_replays_its_side(tmp_path, key):
    recorded, result = run_job(tmp_path, key)
    logged = read_inbound_log(tmp_path / "inbound.log", key, **OWNER)
    assert len(logged) > sum(c.messages for c in recorded.channels if c.receiver == 0)

    inbound = {(c.sender, c.receiver): c for c in recorded.channels if c.receiver == 0}
    watch = {key: [c.messages] for key, c in inbound.items()}
    digests = inbound_prefix_digests(logged, RANK, JOB, watch)
    assert digests == {key: {c.messages: c.digest} for key, c in inbound.items()}
    assert inbound_channel_counts(logged) == {key: c.messages for key, c in inbound.items()}

    # Rank 0 alone, its receives served from the log, its sends dropped: the same
    # transcript, every channel, in both directions.
    replay = ReplayLink(logged)
    replayed = communicator(0, replay)
    replayed_result = party_program(replayed)
    assert replayed.snapshot("end") == recorded
    assert repr(replayed_result) == repr(result)
    assert replay.remaining_chunks == 0 and replay.sent_chunks > 0

    deviant = communicator(0, ReplayLink(logged))
    party_program(deviant, deviate=True)
    differs = {
        (c.sender, c.receiver)
        for c in deviant.snapshot("end").channels
        if recorded.channel(c.sender, c.receiver) != c
    }
    assert differs == {(0, 1), (0, 2)}  # what it sent in all_reduce; nothing it received

    with pytest.raises(ReplayExhausted):
        replayed.recv(torch.zeros(1, dtype=torch.int64), src=1)
