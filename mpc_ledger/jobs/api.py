"""The `Jobs` gRPC service (protos/mpc_ledger/v1/jobs_service.proto): thin.

Each method decodes the request and its caller (the member or user its
certificate establishes: `mpc_ledger.net.mtls`), calls the handler
(`mpc_ledger.jobs.handlers`, which has the contract: who may have what, and
where it is) and encodes; a `JobsRefusal` becomes the gRPC status of its
code (`STATUS_OF`), with its message.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NoReturn

import grpc

from mpc_ledger.jobs.handlers import (
    CHUNK_BYTES,
    ENDED_STATES,
    JobsBackend,
    JobsHandler,
    JobsRefusal,
    Refusal,
    build_progress,
    checked_job_id,
)
from mpc_ledger.jobs.job_folder import MODEL_FILE
from mpc_ledger.net import mtls
from mpc_ledger.proto.v1 import jobs_service_pb2, jobs_service_pb2_grpc

__all__ = [
    "CHUNK_BYTES",
    "ENDED_STATES",
    "MODEL_FILE",
    "STATUS_OF",
    "JobsApi",
    "JobsBackend",
    "build_progress",
]

STATUS_OF: dict[Refusal, grpc.StatusCode] = {
    Refusal.BAD_REQUEST: grpc.StatusCode.INVALID_ARGUMENT,
    Refusal.NO_SUCH_JOB: grpc.StatusCode.NOT_FOUND,
    Refusal.NOT_A_RECIPIENT: grpc.StatusCode.PERMISSION_DENIED,
    Refusal.NOT_COMPLETED: grpc.StatusCode.FAILED_PRECONDITION,
    Refusal.NO_MODEL_HERE: grpc.StatusCode.NOT_FOUND,
}


def _abort(context: grpc.ServicerContext, refusal: JobsRefusal) -> NoReturn:
    context.abort(STATUS_OF[refusal.code], refusal.message)
    raise AssertionError("unreachable")  # context.abort raises


class JobsApi(jobs_service_pb2_grpc.JobsServicer):
    """Thin: decode, call the handler, encode."""

    def __init__(self, backend: JobsBackend) -> None:
        self._backend = backend
        self._handler = JobsHandler(backend)

    def Progress(
        self, request: jobs_service_pb2.JobRef, context: grpc.ServicerContext
    ) -> Iterator[jobs_service_pb2.JobProgress]:
        try:
            job_id = checked_job_id(request.job_id)
            caller = mtls.caller_of(self._backend.party.genesis, context)
            yield from self._handler.progress(job_id, caller.name, is_active=context.is_active)
        except JobsRefusal as refusal:
            _abort(context, refusal)

    def Result(
        self, request: jobs_service_pb2.JobRef, context: grpc.ServicerContext
    ) -> Iterator[jobs_service_pb2.ModelChunk]:
        try:
            job_id = checked_job_id(request.job_id)
            caller = mtls.caller_of(self._backend.party.genesis, context)
            yield from self._handler.result(job_id, caller.name)
        except JobsRefusal as refusal:
            _abort(context, refusal)
