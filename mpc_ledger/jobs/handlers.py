"""What the `Jobs` RPCs do, without gRPC: the servicer (`mpc_ledger.jobs.api`) only decodes,
calls one of these and encodes.

`JobsHandler.progress` combines the ledger's state of the job
(`state.job_state`, read on the node's loop thread: its phase and total
steps, `mpc_ledger.jobs.progress`; a PSI job's total is known once its
``job_alignment`` commits) with this daemon's `ProgressRegistry` (its own
worker's epoch, step and elapsed time). The ETA is only given while both the
total and a step are known. The training loss goes only to the job's
submitter, and only when the runner recorded it (the spec reveals it).

`JobsHandler.result` streams this daemon's model file of the job
(`mpc_ledger.jobs.job_folder.model_file`: the model's canonical encoding,
whose hash the job's `job_completed` record carries) to a recipient of the
job, per its spec on the ledger: a recipient user (with the certificate their
binding pins: the interceptor checks it), or the member itself when the
member is a recipient. Everyone else is refused, before the file is looked
at. The client checks the bytes against the ledger's model hash before it
writes anything.

A request the handler cannot serve raises `JobsRefusal` with a `Refusal`
code and a message for the caller; the servicer maps the code to a gRPC
status. Time is an input (``clock``, ``sleep``), so a test replays a stream
without waiting.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from mpc_ledger.jobs.job_folder import model_file
from mpc_ledger.jobs.lifecycle import ABORTED, COMPLETED, REJECTED
from mpc_ledger.jobs.progress import LocalProgress, ProgressRegistry, job_phase, job_total_steps
from mpc_ledger.jobs.state import JobState, job_state
from mpc_ledger.ledger.state import LedgerState
from mpc_ledger.proto.v1 import jobs_pb2, jobs_service_pb2

__all__ = [
    "CHUNK_BYTES",
    "ENDED_STATES",
    "JOB_ID_BYTES",
    "JobsBackend",
    "JobsHandler",
    "JobsRefusal",
    "Refusal",
    "build_progress",
    "checked_job_id",
]

CHUNK_BYTES = 1 << 20
JOB_ID_BYTES = 32
ENDED_STATES = (COMPLETED, ABORTED, REJECTED)
POLL_S = 0.25  # how often a progress stream reads the ledger and the registry again
HEARTBEAT_S = 1.0  # a stream sends at least this often, changed or not


class Refusal(enum.Enum):
    """Why a request is not served (the servicer's gRPC status for each: `jobs.api`)."""

    BAD_REQUEST = "bad request"
    NO_SUCH_JOB = "no such job"
    NOT_A_RECIPIENT = "not a recipient"
    NOT_COMPLETED = "not completed"
    NO_MODEL_HERE = "no model here"


class JobsRefusal(Exception):
    """A request refused with ``code``; the message is for the caller."""

    def __init__(self, code: Refusal, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class JobsBackend(Protocol):
    """What the handler needs of `mpc_ledger.jobs.service.JobsService`."""

    party: Any

    @property
    def progress(self) -> ProgressRegistry: ...

    def query(self, read: Callable[[LedgerState], Any]) -> Any: ...


def checked_job_id(raw: bytes) -> bytes:
    if len(raw) != JOB_ID_BYTES:
        raise JobsRefusal(Refusal.BAD_REQUEST, f"job_id must be {JOB_ID_BYTES} bytes")
    return bytes(raw)


def build_progress(
    job: JobState, local: LocalProgress | None, *, show_loss: bool, now: float
) -> jobs_service_pb2.JobProgress:
    """One progress message from the ledger's job state and this daemon's worker, if any."""
    epochs = job.spec.epochs
    steps = job_total_steps(job)  # 0 for a PSI job until its alignment commits
    message = jobs_service_pb2.JobProgress(
        job_id=job.job_id,
        state=job.status,
        epochs=epochs,
        steps=steps,
        eta_s=-1.0,
        reason=job.reason,
        ended=job.status in ENDED_STATES,
        metrics=[jobs_pb2.Metric(name=n, value=v) for n, v in job.metrics],
        phase=job_phase(job),
    )
    if local is not None:
        message.local_state = local.status
        message.epoch = local.epoch
        message.step = local.step
        elapsed = local.elapsed_s
        if local.status == "running" and local.step:
            elapsed += max(0.0, now - local.updated_s)  # time since the worker's last report
        message.elapsed_s = elapsed
        if steps and local.step and local.status == "running":
            message.eta_s = max(0.0, elapsed * (steps - local.step) / local.step)
        if show_loss and local.loss is not None:
            message.has_loss = True
            message.loss = local.loss
    if job.status == COMPLETED:
        message.epoch = epochs
        message.step = max(message.step, steps)
        message.eta_s = 0.0
    return message


class JobsHandler:
    """The `Jobs` RPCs on domain values (see the module docstring)."""

    def __init__(
        self,
        backend: JobsBackend,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._backend = backend
        self._clock = clock
        self._sleep = sleep

    def job(self, job_id: bytes) -> JobState:
        job: JobState | None = self._backend.query(lambda state: job_state(state, job_id))
        if job is None:
            raise JobsRefusal(Refusal.NO_SUCH_JOB, f"no job {job_id.hex()} on the ledger")
        return job

    def progress(
        self, job_id: bytes, caller: str, *, is_active: Callable[[], bool]
    ) -> Iterator[jobs_service_pb2.JobProgress]:
        """The job's progress while ``is_active()``: each change, a heartbeat at least each
        `HEARTBEAT_S`, and the message that says it ended, last."""
        job = self.job(job_id)
        show_loss = caller == job.submitter
        last: bytes | None = None
        sent_at = 0.0
        while is_active():
            now = self._clock()
            message = build_progress(
                job, self._backend.progress.get(job_id.hex()), show_loss=show_loss, now=now
            )
            # elapsed/eta change every poll: compare without them, send at most each heartbeat
            key = jobs_service_pb2.JobProgress()
            key.CopyFrom(message)
            key.ClearField("elapsed_s")
            key.ClearField("eta_s")
            encoded = key.SerializeToString(deterministic=True)
            if encoded != last or now - sent_at >= HEARTBEAT_S or message.ended:
                yield message
                last, sent_at = encoded, now
            if message.ended:
                return
            self._sleep(POLL_S)
            job = self.job(job_id)

    def model_path(self, job_id: bytes, caller: str) -> Path:
        """The job's model file here, for ``caller`` (a member or user id) if it may have it."""
        job = self.job(job_id)
        recipients = job.spec.recipients
        if caller not in recipients:
            raise JobsRefusal(
                Refusal.NOT_A_RECIPIENT,
                f"{caller} is not a recipient of job {job_id.hex()[:16]} "
                f"(recipients: {', '.join(recipients)})",
            )
        if job.status != COMPLETED:
            raise JobsRefusal(
                Refusal.NOT_COMPLETED, f"job {job_id.hex()[:16]} is {job.status}, not completed"
            )
        return model_file(Path(self._backend.party.config.data_dir), job_id)

    def result(self, job_id: bytes, caller: str) -> Iterator[jobs_service_pb2.ModelChunk]:
        """The model file in chunks of `CHUNK_BYTES`, each with the file's size."""
        path = self.model_path(job_id, caller)
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            raise JobsRefusal(
                Refusal.NO_MODEL_HERE,
                f"{self._backend.party.identity.member.id} holds no model for job "
                f"{job_id.hex()[:16]} (a recipient's model is on its own member's daemon)",
            ) from None
        with handle:
            total = path.stat().st_size
            while chunk := handle.read(CHUNK_BYTES):
                yield jobs_service_pb2.ModelChunk(data=chunk, total_bytes=total)
