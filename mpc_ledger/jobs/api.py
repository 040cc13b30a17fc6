"""The `Jobs` gRPC service (protos/mpc_ledger/v1/jobs_service.proto): thin.

`Progress` combines the ledger's state of the job (`rules.job_state`, read
on the node's loop thread: its phase and total steps, `mpc_ledger.jobs.progress`;
a PSI job's total is known once its ``job_alignment`` commits) with this
daemon's `ProgressRegistry` (its own worker's epoch, step and elapsed time).
The ETA is only given while both the total and a step are known. The
training loss goes only to the job's submitter, and only when the runner
recorded it (the spec reveals it).

`Result` streams this daemon's ``<data_dir>/jobs/<job>/model.bin`` (the
model's canonical encoding, whose hash the job's `job_completed` record
carries) to a recipient of the job, per its spec on the ledger: a recipient
user (with the certificate their binding pins: the interceptor checks it), or
the member itself when the member is a recipient. Everyone else is refused
with PERMISSION_DENIED, before the file is looked at. The client checks the
bytes against the ledger's model hash before it writes anything.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn, Protocol

import grpc

from mpc_ledger.jobs.progress import LocalProgress, ProgressRegistry, job_phase, job_total_steps
from mpc_ledger.jobs.rules import ABORTED, COMPLETED, REJECTED, JobState, job_state
from mpc_ledger.ledger.state import LedgerState
from mpc_ledger.net import mtls
from mpc_ledger.proto.v1 import jobs_pb2, jobs_service_pb2, jobs_service_pb2_grpc

__all__ = [
    "CHUNK_BYTES",
    "ENDED_STATES",
    "MODEL_FILE",
    "JobsApi",
    "JobsBackend",
    "build_progress",
]

CHUNK_BYTES = 1 << 20
# The model's canonical encoding (`mpc_ledger.mpc.model_codec`), which the worker writes
# beside model.pt: the client checks it against the ledger's model hash and never
# unpickles what it downloads.
MODEL_FILE = "model.bin"
ENDED_STATES = (COMPLETED, ABORTED, REJECTED)
_POLL_S = 0.25
_HEARTBEAT_S = 1.0


class JobsBackend(Protocol):
    """What the servicer needs of `mpc_ledger.jobs.service.JobsService`."""

    party: Any

    @property
    def progress(self) -> ProgressRegistry: ...

    def query(self, read: Callable[[LedgerState], Any]) -> Any: ...


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


def _job_id(request: jobs_service_pb2.JobRef, context: grpc.ServicerContext) -> bytes:
    if len(request.job_id) != 32:
        _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "job_id must be 32 bytes")
    return bytes(request.job_id)


def _abort(context: grpc.ServicerContext, code: grpc.StatusCode, message: str) -> NoReturn:
    context.abort(code, message)
    raise AssertionError("unreachable")  # context.abort raises


class JobsApi(jobs_service_pb2_grpc.JobsServicer):
    """Thin: authenticate, read the ledger and the registry, encode."""

    def __init__(self, backend: JobsBackend) -> None:
        self._backend = backend

    def _job(self, job_id: bytes, context: grpc.ServicerContext) -> JobState:
        job: JobState | None = self._backend.query(lambda state: job_state(state, job_id))
        if job is None:
            _abort(context, grpc.StatusCode.NOT_FOUND, f"no job {job_id.hex()} on the ledger")
        return job

    def Progress(
        self, request: jobs_service_pb2.JobRef, context: grpc.ServicerContext
    ) -> Iterator[jobs_service_pb2.JobProgress]:
        job_id = _job_id(request, context)
        caller = mtls.caller_of(self._backend.party.genesis, context)
        job = self._job(job_id, context)
        show_loss = caller.name == job.submitter
        last: bytes | None = None
        sent_at = 0.0
        while context.is_active():
            now = time.monotonic()
            message = build_progress(
                job, self._backend.progress.get(job_id.hex()), show_loss=show_loss, now=now
            )
            # elapsed/eta change every poll: compare without them, send at most each heartbeat
            key = jobs_service_pb2.JobProgress()
            key.CopyFrom(message)
            key.ClearField("elapsed_s")
            key.ClearField("eta_s")
            encoded = key.SerializeToString(deterministic=True)
            if encoded != last or now - sent_at >= _HEARTBEAT_S or message.ended:
                yield message
                last, sent_at = encoded, now
            if message.ended:
                return
            time.sleep(_POLL_S)
            job = self._job(job_id, context)

    def Result(
        self, request: jobs_service_pb2.JobRef, context: grpc.ServicerContext
    ) -> Iterator[jobs_service_pb2.ModelChunk]:
        job_id = _job_id(request, context)
        caller = mtls.caller_of(self._backend.party.genesis, context)
        job = self._job(job_id, context)
        recipients = job.spec.recipients
        if caller.name not in recipients:
            _abort(
                context,
                grpc.StatusCode.PERMISSION_DENIED,
                f"{caller.name} is not a recipient of job {job_id.hex()[:16]} "
                f"(recipients: {', '.join(recipients)})",
            )
        if job.status != COMPLETED:
            _abort(
                context,
                grpc.StatusCode.FAILED_PRECONDITION,
                f"job {job_id.hex()[:16]} is {job.status}, not completed",
            )
        path = Path(self._backend.party.config.data_dir) / "jobs" / job_id.hex() / MODEL_FILE
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            _abort(
                context,
                grpc.StatusCode.NOT_FOUND,
                f"{self._backend.party.identity.member.id} holds no model for job "
                f"{job_id.hex()[:16]} (a recipient's model is on its own member's daemon)",
            )
        with handle:
            total = path.stat().st_size
            while chunk := handle.read(CHUNK_BYTES):
                yield jobs_service_pb2.ModelChunk(data=chunk, total_bytes=total)
