"""Deterministic labels: early frames wait, duplicates and replays are refused, naming the peer."""

import pytest

from mpc_ledger.mpc.labels import LabelError, Mailbox
from mpc_ledger.proto.v1 import mpc_pb2


def frame(seq, sender=0, receiver=1, job_id="job", data=b"x"):
    return mpc_pb2.MpcFrame(
        job_id=job_id, seq=seq, sender_rank=sender, receiver_rank=receiver, data=data
    )


@pytest.fixture
def mailbox():
    return Mailbox("job", 1, (0, 1, 2), name_of=lambda r: "abc"[r])


def test_send_labels_count_per_receiver(mailbox):
    assert [mailbox.next_send_seq(0) for _ in range(3)] == [0, 1, 2]
    assert mailbox.next_send_seq(2) == 0


def test_early_frames_wait_for_their_receive_in_any_order(mailbox):
    mailbox.offer(frame(1))
    mailbox.offer(frame(0))
    first, second = mailbox.reserve(0), mailbox.reserve(0)
    assert mailbox.take(0, second).seq == 1  # irecv waited out of order
    assert mailbox.take(0, first).seq == 0
    assert mailbox.take(0, mailbox.reserve(0)) is None  # not here yet


def test_duplicate_of_a_buffered_frame_is_refused(mailbox):
    mailbox.offer(frame(0))
    with pytest.raises(LabelError, match="duplicated frame from a: seq 0"):
        mailbox.offer(frame(0))


def test_replay_of_a_consumed_frame_is_refused(mailbox):
    for seq in (0, 1, 3):
        mailbox.offer(frame(seq))
    for seq in (0, 1):
        assert mailbox.take(0, seq) is not None
    assert mailbox.take(0, 3) is not None
    for seq in (0, 1, 3):
        with pytest.raises(LabelError, match=f"replayed frame from a: seq {seq}"):
            mailbox.offer(frame(seq))
    mailbox.offer(frame(2))  # the gap is still welcome


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (frame(0, job_id="other"), "for job 'other'"),
        (frame(0, receiver=2), "addressed to rank 2"),
        (frame(0, sender=7), "rank 7, which is not a peer"),
        (frame(0, sender=1), "rank 1, which is not a peer"),
        (frame(1 << 40), "implausibly far ahead"),
    ],
)
def test_mislabelled_frames_are_refused(mailbox, bad, reason):
    with pytest.raises(LabelError, match=reason):
        mailbox.offer(bad)


def test_buffering_is_bounded():
    mailbox = Mailbox("job", 1, (0, 1), max_buffered_bytes=10)
    mailbox.offer(frame(0, data=b"x" * 8))
    with pytest.raises(LabelError, match="more than 10 bytes ahead"):
        mailbox.offer(frame(1, data=b"x" * 8))
