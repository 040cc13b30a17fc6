"""Transcript digests: both ends of an honest link agree; any difference names the link."""

from mpc_ledger.mpc.transcript import Transcript, TranscriptSnapshot, compare_transcripts
from mpc_ledger.proto.v1 import mpc_pb2


def frame(seq, sender, receiver, data=b"abc"):
    return mpc_pb2.MpcFrame(
        job_id="job",
        seq=seq,
        sender_rank=sender,
        receiver_rank=receiver,
        kind=mpc_pb2.FRAME_KIND_TENSORS,
        tensors=[mpc_pb2.TensorSpec(dtype="uint8", shape=[len(data)])],
        data=data,
    )


def honest_pair():
    a, b = Transcript("job", 0), Transcript("job", 1)
    for seq in range(3):
        a.record(frame(seq, 0, 1))
        b.record(frame(seq, 0, 1))
        b.record(frame(seq, 1, 0, b"reply"))
        a.record(frame(seq, 1, 0, b"reply"))
        a.end_round()
        b.end_round()
    return a, b


def test_honest_ends_agree_and_count():
    a, b = honest_pair()
    snapshots = {0: a.snapshot("epoch-1"), 1: b.snapshot("epoch-1")}
    assert compare_transcripts(snapshots) == []
    sent = snapshots[0].channel(0, 1)
    assert (sent.messages, sent.size_bytes, sent.rounds) == (3, 9, 3)
    assert snapshots[0].channel(0, 1) == snapshots[1].channel(0, 1)


def test_snapshot_json_round_trips_and_hashing_continues():
    a, _ = honest_pair()
    first = a.snapshot("epoch-1")
    assert TranscriptSnapshot.from_json(first.to_json()) == first
    a.record(frame(3, 0, 1))
    assert a.snapshot("epoch-2").channel(0, 1).digest != first.channel(0, 1).digest


def test_a_changed_payload_is_caught_on_its_link_only():
    a, b = Transcript("job", 0), Transcript("job", 1)
    a.record(frame(0, 0, 1, b"what a hashed"))
    b.record(frame(0, 0, 1, b"what b got!!!"))
    b.record(frame(0, 1, 0))
    a.record(frame(0, 1, 0))
    mismatches = compare_transcripts({0: a.snapshot("end"), 1: b.snapshot("end")})
    assert [(m.sender, m.receiver) for m in mismatches] == [(0, 1)]
    assert "link 0->1: digest" in str(mismatches[0])


def test_frames_claimed_but_never_received_and_missing_parties():
    a, b = Transcript("job", 0), Transcript("job", 1)
    a.record(frame(0, 0, 1))
    mismatches = compare_transcripts({0: a.snapshot("end"), 1: b.snapshot("end")})
    assert "1 messages sent, 0 received" in str(mismatches[0])
    lonely = compare_transcripts({0: a.snapshot("end")})
    assert "no transcript from rank 1" in str(lonely[0])
    other_job = Transcript("other", 1)
    assert "different jobs" in str(
        compare_transcripts({0: a.snapshot("e"), 1: other_job.snapshot("e")})[0]
    )
