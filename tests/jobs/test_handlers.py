"""The `Jobs` handlers without gRPC: who may have a model, where it is, the progress stream."""

from __future__ import annotations

import types

import pytest

from mpc_ledger.jobs import handlers
from mpc_ledger.jobs.api import STATUS_OF
from mpc_ledger.jobs.handlers import (
    CHUNK_BYTES,
    HEARTBEAT_S,
    POLL_S,
    JobsHandler,
    JobsRefusal,
    Refusal,
    checked_job_id,
)
from mpc_ledger.jobs.lifecycle import ABORTED, COMPLETED, RUNNING
from mpc_ledger.jobs.progress import ProgressRegistry
from mpc_ledger.proto.v1 import jobs_service_pb2

JOB_ID = bytes(range(32))


class Backend:
    """A `JobsBackend` whose ledger holds ``job`` (None: no such job), whatever is asked."""

    def __init__(self, data_dir, job=None):
        self.party = types.SimpleNamespace(
            config=types.SimpleNamespace(data_dir=data_dir),
            identity=types.SimpleNamespace(member=types.SimpleNamespace(id="b")),
        )
        self.progress = ProgressRegistry()
        self.job = job

    def query(self, read):
        return self.job


def job(status=COMPLETED, recipients=("a", "b/bob"), submitter="a/alice"):
    spec = types.SimpleNamespace(recipients=recipients)
    return types.SimpleNamespace(job_id=JOB_ID, status=status, spec=spec, submitter=submitter)


def refused(call, *args, **kwargs) -> JobsRefusal:
    with pytest.raises(JobsRefusal) as raised:
        result = call(*args, **kwargs)
        if hasattr(result, "__next__"):
            next(result)
    return raised.value


def test_every_refusal_has_a_grpc_status():
    assert set(STATUS_OF) == set(Refusal)


def test_a_job_id_is_32_bytes():
    assert checked_job_id(JOB_ID) == JOB_ID
    refusal = refused(checked_job_id, JOB_ID[:31])
    assert (refusal.code, refusal.message) == (Refusal.BAD_REQUEST, "job_id must be 32 bytes")


def test_an_unknown_job_is_not_found(tmp_path):
    handler = JobsHandler(Backend(tmp_path))
    refusal = refused(handler.model_path, JOB_ID, "a")
    assert (refusal.code, refusal.message) == (
        Refusal.NO_SUCH_JOB,
        f"no job {JOB_ID.hex()} on the ledger",
    )
    assert refused(handler.progress, JOB_ID, "a", is_active=lambda: True).code is (
        Refusal.NO_SUCH_JOB
    )


def test_only_a_recipient_gets_the_model_and_only_of_a_completed_job(tmp_path):
    refusal = refused(JobsHandler(Backend(tmp_path, job())).model_path, JOB_ID, "b/carol")
    assert refusal.code is Refusal.NOT_A_RECIPIENT
    assert refusal.message == (
        f"b/carol is not a recipient of job {JOB_ID.hex()[:16]} (recipients: a, b/bob)"
    )
    refusal = refused(JobsHandler(Backend(tmp_path, job(RUNNING))).model_path, JOB_ID, "b/bob")
    assert refusal.code is Refusal.NOT_COMPLETED
    assert refusal.message == f"job {JOB_ID.hex()[:16]} is running, not completed"
    path = JobsHandler(Backend(tmp_path, job())).model_path(JOB_ID, "b/bob")
    assert path == tmp_path / "jobs" / JOB_ID.hex() / "model.bin"


def test_the_refusal_comes_before_the_file_is_looked_at(tmp_path, monkeypatch):
    monkeypatch.setattr(handlers, "model_file", lambda *_: pytest.fail("looked at the file"))
    handler = JobsHandler(Backend(tmp_path, job()))
    assert refused(handler.result, JOB_ID, "c").code is Refusal.NOT_A_RECIPIENT


def test_the_model_streams_in_chunks_and_a_missing_one_says_whose_it_is(tmp_path):
    handler = JobsHandler(Backend(tmp_path, job()))
    refusal = refused(handler.result, JOB_ID, "b/bob")
    assert refusal.code is Refusal.NO_MODEL_HERE
    assert refusal.message.startswith(f"b holds no model for job {JOB_ID.hex()[:16]}")
    model = tmp_path / "jobs" / JOB_ID.hex() / "model.bin"
    model.parent.mkdir(parents=True)
    data = bytes(range(256)) * (CHUNK_BYTES // 256 * 2 + 3)
    model.write_bytes(data)
    chunks = list(handler.result(JOB_ID, "a"))
    assert [len(c.data) for c in chunks] == [CHUNK_BYTES, CHUNK_BYTES, 768]
    assert {c.total_bytes for c in chunks} == {len(data)}
    assert b"".join(c.data for c in chunks) == data


class FakeTime:
    def __init__(self):
        self.now = 100.0

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_the_progress_stream_sends_changes_heartbeats_and_the_end(tmp_path, monkeypatch):
    """Unchanged polls are not sent until a heartbeat is due; the end is sent, then no more.
    The loss is shown only to the submitter."""
    backend = Backend(tmp_path, job(RUNNING))
    polls = []

    def build(job, local, *, show_loss, now):
        polls.append(show_loss)
        if len(polls) == 8:  # the job ends on the ledger; the next poll reads it
            backend.job = job_ended
        return jobs_service_pb2.JobProgress(
            job_id=job.job_id,
            state=job.status,
            ended=job.status == ABORTED,
            elapsed_s=now,  # changes every poll: not a change by itself
        )

    job_ended = job(ABORTED)
    monkeypatch.setattr(handlers, "build_progress", build)
    fake = FakeTime()
    handler = JobsHandler(backend, clock=fake.clock, sleep=fake.sleep)
    sent = list(handler.progress(JOB_ID, "a/alice", is_active=lambda: True))
    heartbeat_polls = int(HEARTBEAT_S / POLL_S)
    assert [m.state for m in sent] == ["running", "running", "aborted"]
    assert sent[1].elapsed_s - sent[0].elapsed_s == pytest.approx(heartbeat_polls * POLL_S)
    assert sent[-1].ended and len(polls) == 9
    assert set(polls) == {True}
    polls.clear()
    backend.job = job(RUNNING)
    stream = handler.progress(JOB_ID, "b/bob", is_active=lambda: len(polls) < 3)
    assert len(list(stream)) == 1 and polls == [False, False, False]  # until inactive
