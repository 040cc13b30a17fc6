"""The relay's checks that need no processes: hellos, senders, batch sizes, the early
buffer's limits, the socket path, its folder."""

from __future__ import annotations

import os

import pytest

from mpc_ledger.mpc.early_frames import EarlyFrames, EarlyRefusal, frame_cost
from mpc_ledger.mpc.relay import (
    PACK_MAX_BYTES,
    RelayError,
    _peer_batches,
    _prepare_socket_path,
    check_hello,
    sender_problem,
)
from mpc_ledger.proto.v1 import mpc_pb2
from mpc_ledger.testing.consortium import make_consortium


@pytest.fixture(scope="module")
def genesis(tmp_path_factory):
    return make_consortium(tmp_path_factory.mktemp("g") / "c", "a,b", dealer=True).genesis


def hello(rank=0, members=("a", "b", "dealer"), provider="dealer", job_id="job-1"):
    ranks = [mpc_pb2.RankMember(rank=r, member_id=m) for r, m in enumerate(members)]
    return mpc_pb2.WorkerHello(job_id=job_id, rank=rank, ranks=ranks, tuple_provider=provider)


def test_a_good_hello_passes(genesis):
    assert check_hello(genesis, "a", hello()) is None
    assert check_hello(genesis, "dealer", hello(rank=2)) is None


@pytest.mark.parametrize(
    ("kwargs", "member", "reason"),
    [
        ({"job_id": "../x"}, "a", "job id"),
        ({"members": ("a",)}, "a", "ranks must be 0..n-1 with n >= 2"),
        ({"members": ("a", "zed", "dealer")}, "a", "'zed', not a genesis member"),
        ({}, "b", "rank 0 is not held by this member ('b')"),
        ({"provider": "trusted-first-party"}, "a", "not allowed by the genesis"),
        ({"provider": "magic"}, "a", "is not one of"),
        ({"members": ("a", "b", "b")}, "a", "must be held by a member with the dealer role"),
    ],
)
def test_bad_hellos_are_refused_with_a_reason(genesis, kwargs, member, reason):
    problem = check_hello(genesis, member, hello(**kwargs))
    assert problem is not None and reason in problem


def test_socket_path_too_long_for_af_unix_is_refused(tmp_path):
    with pytest.raises(RelayError, match="at most 107"):
        _prepare_socket_path(tmp_path / ("d" * 120) / "mpc.sock")


def test_socket_folder_open_to_others_is_refused(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)
    with pytest.raises(RelayError, match="open to other users"):
        _prepare_socket_path(folder / "mpc.sock")
    os.chmod(folder, 0o700)
    assert _prepare_socket_path(folder / "mpc.sock") == folder / "mpc.sock"
    (folder / "mpc.sock").write_text("not a socket")
    with pytest.raises(RelayError, match="not a socket"):
        _prepare_socket_path(folder / "mpc.sock")


def frame(sender_rank, receiver_rank, job_id="job-1"):
    return mpc_pb2.MpcFrame(job_id=job_id, sender_rank=sender_rank, receiver_rank=receiver_rank)


@pytest.mark.parametrize(
    ("sender", "sent", "code"),
    [
        ("b", frame(1, 0), None),
        ("c", frame(1, 0), "not_participant"),
        ("b", frame(2, 0), "wrong_rank"),
        ("b", frame(7, 0), "wrong_rank"),
        ("b", frame(1, 2), "not_receiver"),
        ("b", frame(1, 9), "not_receiver"),
    ],
)
def test_only_the_holder_of_a_rank_sends_as_it_and_only_to_ranks_held_here(sender, sent, code):
    problem = sender_problem(("a", "b", "dealer"), sender, sent, "a")
    assert (problem[0] if problem else None) == code


def test_peer_batches_stay_under_the_grpc_limit_and_keep_the_order():
    chunks = [frame(0, 1) for _ in range(60)]
    for seq, chunk in enumerate(chunks):
        chunk.seq, chunk.data = seq, bytes(4 * 1024 * 1024)
    failure = mpc_pb2.PartyFailure(job_id="job-1", member_id="a", reason="r")
    batches = list(_peer_batches([*chunks, failure]))
    assert all(batch.ByteSize() <= PACK_MAX_BYTES for batch in batches)
    assert [f.seq for batch in batches for f in batch.frames] == list(range(60))
    assert list(batches[-1].failures) == [failure] and not batches[-1].frames


def test_early_frames_quota_per_sender_and_job_then_in_total_then_expiry():
    now = [0.0]
    small = mpc_pb2.MpcFrame(job_id="j", kind=mpc_pb2.FRAME_KIND_OBJECT)
    small.object.string_value = "x" * 300  # no tensor bytes, still counted whole
    cost = frame_cost(small)
    assert cost > 300
    early = EarlyFrames(
        max_bytes=5 * cost, max_bytes_per_sender_job=2 * cost, ttl_s=10, clock=lambda: now[0]
    )
    assert [early.add(("j", 0), "b", small) for _ in range(3)][-1] is EarlyRefusal.SENDER_QUOTA
    assert early.bytes_from("b", "j") == 2 * cost
    for job in ("k", "l", "m"):
        early.add((job, 0), "b", small)
        now[0] += 1
    assert early.add(("n", 0), "b", small) is EarlyRefusal.FULL
    assert early.bytes == 5 * cost
    now[0] = 10.5  # j (t=0) is over the TTL, k (t=0) too; l (t=1) and m (t=2) are not
    assert early.expire() == [(("j", 0), 2), (("k", 0), 1)]
    assert len(early.take(("l", 0))) == 1 and early.bytes == cost
    assert early.bytes_from("b", "j") == 0
