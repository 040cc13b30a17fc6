"""Attacks on a real relay: a real party daemon (real gRPC, real mTLS) hosting the relay in
this process, peers' real certificates calling its `MpcPeer.Link`, and a worker attached
through the real `RelayLink` on its Unix socket.

Member c is in the consortium but not in the job of a, b and the dealer: its frames and
failure notices for that job must never reach a's worker. The early-frame buffer holds
only what its limits allow, hands over more than one local message's worth, and forgets
what no worker claims.
"""

from __future__ import annotations

import hashlib

import pytest
import torch

from mpc_ledger.daemon.server import PartyDaemon
from mpc_ledger.mpc.early_frames import frame_cost
from mpc_ledger.mpc.frames import ChunkAssembler, encode_tensors, split_chunks
from mpc_ledger.mpc.local_framing import pack_by_size
from mpc_ledger.mpc.relay import MpcRelayService
from mpc_ledger.mpc.worker_link import RelayLink
from mpc_ledger.net import mtls
from mpc_ledger.proto.v1 import mpc_pb2, mpc_pb2_grpc
from mpc_ledger.testing.consortium import make_consortium

pytestmark = pytest.mark.integration

JOB = "job-ab"
MEMBERS = ("a", "b", "dealer")
MIB = 1024 * 1024


class Clock:
    """The relay's clock, moved by the test (no sleeps)."""

    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


@pytest.fixture(scope="module")
def consortium(tmp_path_factory):
    return make_consortium(tmp_path_factory.mktemp("guard") / "c", "a,b,c", dealer=True)


@pytest.fixture
def start_relay(consortium):
    """Start a's daemon with a relay made from the given options; stopped after the test."""
    started = []

    def start(**options):
        relay = MpcRelayService(**options)
        daemon = PartyDaemon(consortium.party("a"), services=[relay])
        daemon.start()
        started.append(daemon)
        return relay

    yield start
    for daemon in started:
        daemon.stop(0)


def ledger_knows(*jobs):
    return {job: MEMBERS for job in jobs}.get


def send_as(consortium, member_id, *batches):
    """Open a Link to a's daemon with ``member_id``'s real certificate and send ``batches``."""
    identity = consortium.party(member_id).identity
    channel = mtls.member_channel(identity, consortium.genesis.member("a"))
    try:
        mpc_pb2_grpc.MpcPeerStub(channel).Link(iter(batches), timeout=30)
    finally:
        channel.close()


def attach(relay, job_id=JOB, rank=0):
    ranks = [mpc_pb2.RankMember(rank=r, member_id=m) for r, m in enumerate(MEMBERS)]
    hello = mpc_pb2.WorkerHello(job_id=job_id, rank=rank, ranks=ranks, tuple_provider="dealer")
    return RelayLink(relay.socket_path, hello)


def barrier(job_id=JOB, seq=0, sender_rank=1, receiver_rank=0):
    return mpc_pb2.MpcFrame(
        job_id=job_id,
        seq=seq,
        sender_rank=sender_rank,
        receiver_rank=receiver_rank,
        kind=mpc_pb2.FRAME_KIND_BARRIER,
    )


def object_frame(job_id, seq, text):
    frame = barrier(job_id, seq)
    frame.kind = mpc_pb2.FRAME_KIND_OBJECT
    frame.object.string_value = text
    return frame


def stamped(frame, member_id):
    """``frame`` as the relay keeps it: stamped with the member the TLS session named."""
    frame.sender_member = member_id
    return frame


def forged_failure(job_id=JOB):
    return mpc_pb2.PartyFailure(job_id=job_id, member_id="b", rank=1, reason="forged by c")


def next_delivery(link):
    delivery = link.poll(30)
    assert delivery is not None, "the relay delivered nothing within 30s"
    return delivery


@pytest.mark.parametrize("ledger", [True, False], ids=["ledger-lookup", "hello-only"])
def test_a_member_outside_the_job_cannot_fail_or_feed_its_worker(consortium, start_relay, ledger):
    relay = start_relay(participants=ledger_knows(JOB) if ledger else None)
    link = attach(relay)
    try:
        # c claims b's rank and reports b failed; then b's real frame follows on its own link.
        send_as(consortium, "c", mpc_pb2.PeerBatch(frames=[barrier()], failures=[forged_failure()]))
        send_as(consortium, "b", mpc_pb2.PeerBatch(frames=[barrier()]))
        delivery = next_delivery(link)
    finally:
        link.close()
    assert list(delivery.failures) == []
    assert [(f.sender_member, f.seq) for f in delivery.frames] == [("b", 0)]
    assert relay.counts()["not_participant"] == 2


def test_a_participant_cannot_speak_for_another_rank_or_an_unknown_job(consortium, start_relay):
    relay = start_relay(participants=ledger_knows(JOB))
    link = attach(relay)
    try:
        as_dealer = barrier(sender_rank=2)
        unknown = object_frame("invented-job", 0, "x" * 1000)
        too_long = barrier(job_id="j" * 4096)
        # One link: b's daemon closing it would (rightly) tell the worker that b is gone.
        send_as(
            consortium,
            "b",
            mpc_pb2.PeerBatch(frames=[as_dealer, unknown, too_long]),
            mpc_pb2.PeerBatch(failures=[forged_failure("invented-job")]),
            mpc_pb2.PeerBatch(frames=[barrier()]),
        )
        delivery = next_delivery(link)
    finally:
        link.close()
    assert [(f.sender_rank, f.seq) for f in delivery.frames] == [(1, 0)]
    counts = relay.counts()
    assert (counts["wrong_rank"], counts["unknown_job"], counts["bad_job_id"]) == (1, 2, 1)
    assert counts["early_bytes"] == 0  # nothing was kept for the job nobody runs


def test_a_worker_that_attaches_late_gets_a_20_mib_tensor_sent_early(consortium, start_relay):
    relay = start_relay(participants=ledger_knows(JOB))
    tensor = torch.arange(20 * MIB // 8, dtype=torch.int64)
    frame = barrier()
    frame.kind = mpc_pb2.FRAME_KIND_TENSORS
    specs, frame.data = encode_tensors([tensor])
    frame.tensors.extend(specs)
    chunks = list(split_chunks(frame))
    batches = [mpc_pb2.PeerBatch(frames=g) for g in pack_by_size(chunks, 8 * MIB)]
    send_as(consortium, "b", *batches)
    assert relay.counts()["early_bytes"] >= 20 * MIB
    link = attach(relay)
    assembler, whole = ChunkAssembler(), None
    try:
        while whole is None:
            for chunk in next_delivery(link).frames:
                whole = assembler.add(chunk) or whole
    finally:
        link.close()
    assert hashlib.sha256(whole.data).digest() == hashlib.sha256(frame.data).digest()
    assert relay.counts()["early_bytes"] == 0


def test_object_frames_for_invented_jobs_stop_at_the_quotas(consortium, start_relay):
    # No ledger here (a test harness daemon): the limits alone bound what c can park.
    relay = start_relay(max_early_bytes=4 * MIB, max_early_bytes_per_sender_job=1 * MIB)
    text = "x" * (64 * 1024)
    cost = frame_cost(stamped(object_frame("invented-0", 0, text), "c"))
    for job in range(8):  # 8 jobs x 2 MiB of object-only frames: no tensor bytes at all
        frames = [object_frame(f"invented-{job}", seq, text) for seq in range(32)]
        send_as(consortium, "c", mpc_pb2.PeerBatch(frames=frames))
    counts = relay.counts()
    assert 4 * MIB - cost < counts["early_bytes"] <= 4 * MIB  # full, and not one frame over
    assert counts["early_entries"] >= 4  # each invented job got its own quota, not more
    assert counts["early_sender_quota"] > 0 and counts["early_buffer_full"] > 0
    # The whole buffer is spent, but an honest worker's frames still get through once it runs.
    link = attach(relay)
    try:
        send_as(consortium, "b", mpc_pb2.PeerBatch(frames=[barrier()]))
        assert [f.sender_member for f in next_delivery(link).frames] == ["b"]
    finally:
        link.close()


def test_early_frames_nobody_claims_expire(consortium, start_relay):
    clock = Clock()
    relay = start_relay(participants=ledger_knows(JOB, "never-runs"), clock=clock, early_ttl_s=60)
    send_as(consortium, "b", mpc_pb2.PeerBatch(frames=[object_frame("never-runs", 0, "y" * 500)]))
    assert relay.counts()["early_entries"] == 1
    clock.now_s += 61
    send_as(consortium, "b", mpc_pb2.PeerBatch(frames=[barrier()]))  # arrives; the old one goes
    counts = relay.counts()
    assert (counts["early_expired"], counts["early_entries"]) == (1, 1)
    assert counts["early_bytes"] == frame_cost(stamped(barrier(), "b"))
    link = attach(relay)
    try:
        assert [f.seq for f in next_delivery(link).frames] == [0]  # the fresh one was kept
    finally:
        link.close()
