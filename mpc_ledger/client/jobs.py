"""A user's job calls: submit, list, trail, watch, and fetch a model checked against the ledger.

`JobMethods` needs ``jobs_stub``, ``sign`` and the ledger calls (`LedgerCalls`);
`mpc_ledger.client.UserClient` provides them over mTLS, a test over blocks it
holds. What the committed records say of a job is read by the pure functions
of `mpc_ledger.client.job_records`; a model hash is taken only from a block
whose certificate checks against the genesis.
"""

from __future__ import annotations

import dataclasses
import hmac
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc

from mpc_ledger.client.job_records import JobSummary, TrailEntry, job_summaries, trail_detail
from mpc_ledger.consensus import Validator, ValidatorSet, verify_certificate
from mpc_ledger.identity.genesis import Genesis
from mpc_ledger.jobs.rules import JOB_RULES, JOB_TRAIL_KINDS
from mpc_ledger.jobs.spec import JobSpec, load_job_spec
from mpc_ledger.ledger.client import LedgerCalls
from mpc_ledger.ledger.records import parse_record
from mpc_ledger.model_kinds import PROGRAM_MODELS
from mpc_ledger.mpc import model_codec, model_file
from mpc_ledger.proto.v1 import jobs_pb2, jobs_service_pb2, jobs_service_pb2_grpc, ledger_pb2
from mpc_ledger.timestamps import block_time_text

__all__ = ["JobError", "JobMethods", "JobProgress", "job_id_bytes"]

_BLOCKS_PER_CALL = 500


class JobError(Exception):
    """A job operation failed: the ledger refused a record, a daemon refused a request."""


@dataclasses.dataclass(frozen=True)
class JobProgress:
    """One `watch` update (see protos/mpc_ledger/v1/jobs_service.proto `JobProgress`)."""

    job_id: str
    state: str
    local_state: str
    epoch: int
    epochs: int
    step: int
    steps: int
    elapsed_s: float
    eta_s: float | None
    loss: float | None
    reason: str
    ended: bool
    metrics: tuple[tuple[str, float], ...]
    phase: str = ""  # e.g. "aligning: private set intersection" (steps is 0 then); "" ended

    @property
    def fraction(self) -> float | None:
        """Steps done of all (0..1); None while the total is not known."""
        return min(1.0, self.step / self.steps) if self.steps else None

    @classmethod
    def from_proto(cls, message: jobs_service_pb2.JobProgress) -> JobProgress:
        return cls(
            job_id=message.job_id.hex(),
            state=message.state,
            local_state=message.local_state,
            epoch=message.epoch,
            epochs=message.epochs,
            step=message.step,
            steps=message.steps,
            elapsed_s=message.elapsed_s,
            eta_s=message.eta_s if message.eta_s >= 0 else None,
            loss=message.loss if message.has_loss else None,
            reason=message.reason,
            ended=message.ended,
            metrics=tuple((m.name, m.value) for m in message.metrics),
            phase=message.phase,
        )


def job_id_bytes(job_id: str | bytes) -> bytes:
    """A job id from its hex text (or bytes); `UserError` if it is not 32 bytes."""
    from mpc_ledger.errors import UserError

    if isinstance(job_id, bytes):
        raw = job_id
    else:
        try:
            raw = bytes.fromhex(job_id.strip())
        except ValueError:
            raw = b""
    if len(raw) != 32:
        raise UserError(f"{job_id!r} is not a job id (64 hex digits)", field="JOB_ID")
    return raw


class JobMethods(LedgerCalls):
    """`UserClient`'s job methods (they need ``jobs_stub`` and ``sign``)."""

    jobs_stub: jobs_service_pb2_grpc.JobsStub
    genesis: Genesis  # the trust root blocks are checked against

    def sign(self, **payload: Any) -> ledger_pb2.Record:
        raise NotImplementedError

    def submit_job(self, spec: JobSpec | Path | str, *, timeout_s: float = 30) -> str:
        """Sign and submit a job, wait until it commits; return its id (hex).

        A path is read with `load_job_spec` (`JobSpecError` lists every problem).
        `JobError` if the ledger refuses the submission (its reason) or it does
        not commit within ``timeout_s``.
        """
        if not isinstance(spec, JobSpec):
            spec = load_job_spec(Path(spec))
        record = self.sign(job_submission=jobs_pb2.JobSubmission(spec=spec.to_proto()))
        reply = self.submit(record)
        if not reply.accepted:
            raise JobError(f"the ledger refused the job: {reply.reason}")
        if not self.wait_committed(reply.record_id, timeout_s).committed:
            raise JobError(f"job {reply.record_id.hex()} was accepted but has not committed yet")
        return str(reply.record_id.hex())

    def _job_records(
        self, job_id: bytes | None = None, kinds: tuple[str, ...] = JOB_TRAIL_KINDS
    ) -> Iterator[tuple[Any, int, Any]]:
        """(block header, log index, parsed record) of every job record, in commit order."""
        for item, log_index, parsed in self._job_items(job_id, kinds):
            yield item.block.header, log_index, parsed

    def _job_items(
        self, job_id: bytes | None = None, kinds: tuple[str, ...] = JOB_TRAIL_KINDS
    ) -> Iterator[tuple[Any, int, Any]]:
        """(committed block, log index, parsed record) of every record of ``kinds`` (every
        job record), in commit order; with ``job_id``, only that job's."""
        height = 1
        while True:
            request_blocks = list(self.blocks(height, _BLOCKS_PER_CALL))
            for item in request_blocks:
                header = item.block.header
                first = header.log_size - header.records_count
                for index, raw in enumerate(item.block.records):
                    parsed = parse_record(raw)
                    if isinstance(parsed, str) or parsed.kind not in kinds:
                        continue
                    if job_id is not None:
                        payload = getattr(parsed.body, parsed.kind)
                        own = parsed.id if parsed.kind == "job_submission" else payload.job_id
                        if own != job_id:
                            continue
                    yield item, first + index, parsed
            if len(request_blocks) < _BLOCKS_PER_CALL:
                return
            height = request_blocks[-1].block.header.height + 1

    def job_trail(self, job_id: str | bytes) -> list[TrailEntry]:
        """Every committed record of the job, in commit order (empty: no such job)."""
        wanted = job_id_bytes(job_id)
        return [
            TrailEntry(
                height=header.height,
                log_index=log_index,
                time=block_time_text(header.time_ms),
                record_id=parsed.id.hex(),
                kind=parsed.kind,
                author=parsed.body.author,
                detail=trail_detail(parsed.kind, getattr(parsed.body, parsed.kind)),
            )
            for header, log_index, parsed in self._job_records(wanted)
        ]

    def jobs(self) -> list[JobSummary]:
        """Every job on the ledger, oldest first, with its state from its committed records."""
        records = self._job_records(kinds=tuple(JOB_RULES))
        return job_summaries(((header, parsed) for header, _, parsed in records), self.genesis)

    def watch(
        self, job_id: str | bytes, *, timeout_s: float | None = None
    ) -> Iterator[JobProgress]:
        """The job's progress, live, from this member's daemon; ends when the job ends."""
        request = jobs_service_pb2.JobRef(job_id=job_id_bytes(job_id))
        for message in self.jobs_stub.Progress(request, timeout=timeout_s):
            yield JobProgress.from_proto(message)

    def model_hash(self, job_id: str | bytes) -> bytes:
        """The model hash the job's committed `job_completed` record carries, in a block
        whose certificate (a quorum of the genesis validators) checks; `JobError` if the
        ledger has none (the job has not completed) or the block's certificate fails."""
        return self._completed_job(job_id)[1]

    def _completed_job(self, job_id: str | bytes) -> tuple[JobSpec | None, bytes]:
        """The spec (None if the ledger served no submission for it) and the model hash of
        a completed job, each from a block whose certificate checks (see `model_hash`)."""
        wanted = job_id_bytes(job_id)
        spec: JobSpec | None = None
        for item, _, parsed in self._job_items(wanted):
            if parsed.kind == "job_submission":
                self._check_certified(item)
                spec = JobSpec.from_proto(parsed.body.job_submission.spec)
            elif parsed.kind == "job_completed":
                self._check_certified(item)
                return spec, bytes(parsed.body.job_completed.model_hash)
        raise JobError(f"job {wanted.hex()[:16]} has not completed on the ledger: no model yet")

    def _check_certified(self, item: Any) -> None:
        genesis = self.genesis
        validators = ValidatorSet(
            [Validator(m.id, m.signing_public_key) for m in genesis.validators]
        )
        rejection = verify_certificate(validators, genesis.chain_id, item.block, item.certificate)
        if rejection is not None:
            raise JobError(
                f"block {item.block.header.height} the daemon served is not certified by the "
                f"genesis validators: {rejection.detail}"
            )

    def fetch_result(self, job_id: str | bytes, path: Path | str, *, timeout_s: float = 60) -> str:
        """Write the job's model file to ``path`` (`mpc_ledger.mpc.model_file`: safetensors,
        the parameters and any preprocessing the job released, and metadata from the job's
        spec on the ledger; 0600); return its model hash (hex), which equals the ledger's.
        Recipients only: anyone else gets `JobError` with the daemon's reason. Bytes that do
        not match the ledger's model hash are refused with `JobError` and nothing is
        written."""
        spec, expected = self._completed_job(job_id)
        if spec is None:  # rules commit a job's completion only after its submission
            raise JobError(
                f"the ledger the daemon served has no submission for job "
                f"{job_id_bytes(job_id).hex()[:16]}; nothing was written"
            )
        encoded = self._download_model(job_id, timeout_s)
        digest = model_codec.model_digest_of_encoding(iter([encoded]))
        if not hmac.compare_digest(digest, expected):
            raise JobError(
                f"the model the daemon served for job "
                f"{job_id_bytes(job_id).hex()[:16]} does not match the ledger's model hash "
                f"(got {digest.hex()[:16]}, the ledger has {expected.hex()[:16]}); "
                "nothing was written"
            )
        try:
            tensors = model_codec.decode_model(encoded)
        except model_codec.ModelFormatError as exc:  # a hash match makes this our own bug
            raise JobError(f"the served model is not a model encoding: {exc}") from None
        info = _model_file_info(job_id_bytes(job_id), spec, digest, tensors)
        try:
            model_file.write_model_file(Path(path).expanduser(), info, tensors)
        except model_file.ModelFileError as exc:  # the ledger's model does not fit its spec
            raise JobError(
                f"the job's model does not fit its spec; nothing written: {exc}"
            ) from None
        return digest.hex()

    def _download_model(self, job_id: str | bytes, timeout_s: float) -> bytes:
        """The bytes the daemon serves for the job's model (at most MODEL_MAX_BYTES)."""
        request = jobs_service_pb2.JobRef(job_id=job_id_bytes(job_id))
        parts: list[bytes] = []
        size = 0
        try:
            for chunk in self.jobs_stub.Result(request, timeout=timeout_s):
                size += len(chunk.data)
                if size > model_codec.MODEL_MAX_BYTES:
                    raise JobError(f"the served model is over {model_codec.MODEL_MAX_BYTES} bytes")
                parts.append(chunk.data)
        except grpc.RpcError as exc:
            code = exc.code()
            if code in (
                grpc.StatusCode.PERMISSION_DENIED,
                grpc.StatusCode.NOT_FOUND,
                grpc.StatusCode.FAILED_PRECONDITION,
            ):
                raise JobError(str(exc.details())) from None
            raise
        return b"".join(parts)


def _model_file_info(
    job_id: bytes, spec: JobSpec, digest: bytes, tensors: dict[str, Any]
) -> model_file.ModelFileInfo:
    """What the model file says of the model: from the job's spec (the features in the
    model's input order: a vertical job's datasets in rank order, which is the spec's)."""
    if spec.layout == "vertical":
        features = tuple(name for ref in spec.datasets for name in ref.features)
    else:
        features = spec.datasets[0].features
    return model_file.ModelFileInfo(
        job_id=job_id.hex(),
        model_hash=digest.hex(),
        kind=PROGRAM_MODELS[spec.model.kind],
        loss=spec.loss,
        features=features,
        label=spec.label,
        # both or neither: a file with one of them is refused when it is written
        standardised=model_file.PREPROCESSING_MEAN in tensors,
        hidden=spec.model.hidden_sizes if spec.model.kind == "mlp" else (),
        classes=spec.model.classes if spec.loss == "cross_entropy" else 0,
    )
