"""The runner's records (pure builders) and its writes through a fake ledger (`JobLedger`)."""

from __future__ import annotations

import dataclasses
import types

import nacl.signing

from mpc_ledger.identity.signing import Signer
from mpc_ledger.jobs.ledger_writes import (
    JobLedger,
    channel_digests,
    job_alignment,
    job_completed,
    participation_proof,
)
from mpc_ledger.jobs.lifecycle import ABORTED, RUNNING
from mpc_ledger.ledger.records import parse_record
from mpc_ledger.mpc.snapshots import ChannelStats, TranscriptSnapshot
from mpc_ledger.mpc.worker_events import Aligned
from mpc_ledger.proto.v1 import jobs_pb2

JOB_ID = bytes(range(32))
SNAPSHOT = TranscriptSnapshot(
    JOB_ID.hex(), 0, "job-end", (ChannelStats(0, 1, "cd" * 32, 3, 120, 2),)
)


def test_channels_become_digests_and_no_snapshot_none():
    [digest] = channel_digests(SNAPSHOT)
    assert (digest.sender_rank, digest.receiver_rank, digest.digest) == (0, 1, bytes([0xCD]) * 32)
    assert (digest.messages, digest.size_bytes, digest.rounds) == (3, 120, 2)
    assert list(channel_digests(None)) == []


def test_the_alignment_record_is_the_workers_event():
    aligned = Aligned("psi", 50, 40, 10, SNAPSHOT)
    record = job_alignment(JOB_ID, aligned)
    assert (record.job_id, record.method, record.intersection_size) == (JOB_ID, "psi", 50)
    assert (record.train_rows, record.test_rows, len(record.channels)) == (40, 10, 1)


def test_job_completed_takes_the_test_metrics_and_a_hex_model_hash():
    output = {"model_hash": "ab" * 32, "test_accuracy": 0.9, "test_auc": 1, "train_loss": 0.2}
    record = job_completed(JOB_ID, {**output, "test_note": "text"})
    assert record.model_hash == bytes([0xAB]) * 32
    assert [(m.name, m.value) for m in record.metrics] == [
        ("test_accuracy", 0.9),
        ("test_auc", 1.0),
    ]
    assert job_completed(JOB_ID, {"model_hash": "not hex"}).model_hash == b""
    assert job_completed(JOB_ID, {}).model_hash == b""


def test_the_participation_proof_carries_the_final_channels():
    job = types.SimpleNamespace(
        job_id=JOB_ID,
        manifest=types.SimpleNamespace(manifest_hash=b"m" * 32),
        spec=types.SimpleNamespace(epochs=3),
    )
    party = types.SimpleNamespace(dataset_fingerprint=b"f" * 32, rank=1)
    proof = participation_proof(job, party, SNAPSHOT, rows_contributed=40)
    assert (proof.rank, proof.rows_contributed, proof.epochs_completed) == (1, 40, 3)
    assert proof.manifest_hash == b"m" * 32 and len(proof.final_channels) == 1


# -- JobLedger through a fake node ------------------------------------------------------------


@dataclasses.dataclass
class Submitted:
    record_id: bytes
    accepted: bool = True
    reason: str = ""


class FakeLedger:
    def __init__(self, *, accept=True, commit=True, status=RUNNING):
        self.accept, self.commit, self.status = accept, commit, status
        self.records = []

    def submit(self, raw, *, timeout_s=10.0):
        record = parse_record(raw)
        self.records.append(record)
        return Submitted(record.id, self.accept, "" if self.accept else "refused: no")

    def wait_committed(self, record_id, timeout_s):
        return (1, 0) if self.commit else None

    def query(self, read, timeout_s=10.0):
        return read(None)


def writer(ledger, monkeypatch, commit_timeout_s=5.0):
    """A `JobLedger` over ``ledger``, whose job is in ``ledger.status``."""
    monkeypatch.setattr(
        "mpc_ledger.jobs.ledger_writes.job_state",
        lambda _state, job_id: types.SimpleNamespace(job_id=job_id, status=ledger.status),
    )
    signer = Signer(nacl.signing.SigningKey.generate(), b"c" * 32)
    return JobLedger(ledger, signer, "a", commit_timeout_s=commit_timeout_s)


def test_a_record_is_signed_by_the_member_and_waited_for(monkeypatch):
    ledger = FakeLedger()
    records = writer(ledger, monkeypatch)
    assert records.submit("job_aborted", _aborted(), wait=True, job_id=JOB_ID)
    [record] = ledger.records
    assert record.kind == "job_aborted" and record.body.author == "a"


def test_a_refused_or_uncommitted_record_is_false(monkeypatch):
    assert not writer(FakeLedger(accept=False), monkeypatch).submit(
        "job_aborted", _aborted(), wait=True, job_id=JOB_ID
    )
    assert writer(FakeLedger(commit=False), monkeypatch).submit(
        "job_aborted", _aborted(), wait=False, job_id=JOB_ID
    )
    ended = FakeLedger(commit=False, status=ABORTED)  # the job ended: given up at once
    assert not writer(ended, monkeypatch, commit_timeout_s=60.0).submit(
        "job_aborted", _aborted(), wait=True, job_id=JOB_ID
    )


def test_abort_says_who_and_nothing_once_the_job_ended(monkeypatch):
    ledger = FakeLedger()
    writer(ledger, monkeypatch).abort(JOB_ID, "its worker failed")
    [record] = ledger.records
    assert record.body.job_aborted.reason == "a: its worker failed"
    ended = FakeLedger(status=ABORTED)
    writer(ended, monkeypatch).abort(JOB_ID, "too late")
    assert ended.records == []


def _aborted():
    return jobs_pb2.JobAborted(job_id=JOB_ID, reason="x")
