"""The Python API for a member's users (scientists, compliance officers).

A user has a profile folder made by `mpc-ledger user keygen` on the user's
own machine:

    keys/signing.key   Ed25519 key that signs every request (0600)
    keys/tls.key       TLS client key (0600)
    keys/tls.crt       TLS client certificate, issued by the member's CA
                       (`mpc-ledger user add` on the member's side)
    genesis.json       the consortium's genesis (from the member's operator)
    user.json          the public half, sent to the member's operator
    user.toml          this profile

`UserClient` talks to the user's own member's daemon over mTLS as the user.
Every record it writes is signed with the user's key; the daemon accepts the
connection only while the ledger holds the user's key, not revoked.

    from mpc_ledger.client import UserClient
    with UserClient.from_profile("~/alice") as client:
        print(client.tip().height)

A scientist's jobs, e.g. in a notebook:

    job_id = client.submit_job("job.toml")       # signed by the user; waits for the commit
    for progress in client.watch(job_id):        # live, until the job ends
        print(progress.state, progress.phase, progress.step, progress.steps, progress.loss)
    client.fetch_result(job_id, "model.safetensors")  # recipients; checked against the ledger
    client.jobs(); client.job_trail(job_id)      # from the committed blocks

`steps` is 0 and `fraction` None until the total is known: a job aligned by
PSI learns its training rows from its committed ``job_alignment``, and says
its phase ("aligning: private set intersection") meanwhile. `jobs()` counts
progress from the same records, once per committed epoch; a job's data owners
are its datasets' registrants, read from their registrations as the ledger's
rules read them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hmac
import json
import secrets
import time
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import grpc
import nacl.signing
import tomli_w
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mpc_ledger.consensus import Validator, ValidatorSet, verify_certificate
from mpc_ledger.documents import NestingError, parse_toml
from mpc_ledger.errors import ConfigError
from mpc_ledger.identity import keys
from mpc_ledger.identity.genesis import Genesis, Member, load_genesis
from mpc_ledger.identity.signing import Signer
from mpc_ledger.jobs.datasets import RegisteredDataset
from mpc_ledger.jobs.progress import phase_of, total_steps
from mpc_ledger.jobs.rules import JOB_RULES, JOB_TRAIL_KINDS
from mpc_ledger.jobs.spec import JobSpec, load_job_spec, resolve_dealer, split_rows
from mpc_ledger.jobs.worker_bridge import PROGRAM_MODELS
from mpc_ledger.ledger.client import LedgerCalls
from mpc_ledger.ledger.records import make_record, member_of_user, parse_record
from mpc_ledger.mpc import model_codec, model_file
from mpc_ledger.net import mtls
from mpc_ledger.proto.v1 import (
    jobs_pb2,
    jobs_service_pb2,
    jobs_service_pb2_grpc,
    ledger_pb2,
    ledger_service_pb2_grpc,
)

__all__ = [
    "USER_FORMAT",
    "JobError",
    "JobProgress",
    "JobSummary",
    "TrailEntry",
    "UserClient",
    "UserProfile",
    "create_user_profile",
]

USER_FORMAT = "mpc-ledger/user/v1"


@dataclasses.dataclass(frozen=True)
class UserProfile:
    path: Path
    user_id: str
    signing_key: nacl.signing.SigningKey = dataclasses.field(repr=False)
    tls_key_pem: bytes = dataclasses.field(repr=False)
    tls_certificate: x509.Certificate
    genesis: Genesis
    endpoint: str | None

    @property
    def member(self) -> Member:
        member_id = member_of_user(self.user_id) or ""
        member = self.genesis.member(member_id)
        if member is None:
            raise ConfigError(f"member {member_id!r} is not in the genesis", path=self.path)
        return member

    @classmethod
    def load(cls, path: Path | str) -> UserProfile:
        path = Path(path).expanduser()
        if path.is_dir():
            path = path / "user.toml"
        try:
            raw = parse_toml(path.read_text())
        except FileNotFoundError:
            raise ConfigError("user profile not found", path=path) from None
        except (tomllib.TOMLDecodeError, NestingError) as exc:
            raise ConfigError(f"not valid TOML: {exc}", path=path) from None
        base = path.parent

        def file(field: str) -> Path:
            value = raw.get(field)
            if not isinstance(value, str) or not value:
                raise ConfigError("required path", path=path, field=field)
            return (base / value).resolve()

        user_id = raw.get("user_id")
        if not isinstance(user_id, str) or member_of_user(user_id) is None:
            raise ConfigError("must be '<member id>/<name>'", path=path, field="user_id")
        certificate_path = file("tls_certificate")
        if not certificate_path.is_file():
            raise ConfigError(
                f"{certificate_path} is missing: ask your organisation's operator to run "
                f"`mpc-ledger user add` with your user.json and put the certificate there",
                path=path,
                field="tls_certificate",
            )
        genesis_path = file("genesis")
        if not genesis_path.is_file():
            raise ConfigError(
                f"{genesis_path} is missing: get genesis.json from your organisation's operator",
                path=path,
                field="genesis",
            )
        try:
            certificate = x509.load_pem_x509_certificate(certificate_path.read_bytes())
        except ValueError as exc:
            raise ConfigError(
                f"not a PEM certificate: {exc}", path=path, field="tls_certificate"
            ) from None
        endpoint = raw.get("endpoint") or None
        return cls(
            path=path,
            user_id=user_id,
            signing_key=keys.load_signing_key(file("signing_key"), field="signing_key"),
            tls_key_pem=keys.tls_key_pem(keys.load_tls_key(file("tls_key"), field="tls_key")),
            tls_certificate=certificate,
            genesis=load_genesis(genesis_path),
            endpoint=endpoint if isinstance(endpoint, str) else None,
        )


def create_user_profile(out: Path, user_id: str) -> dict[str, Any]:
    """Make a user's keys and profile under ``out``; return the public user document."""
    if member_of_user(user_id) is None:
        raise ConfigError(f"{user_id!r} must be '<member id>/<name>'", field="--id")
    for name in ("keys/signing.key", "keys/tls.key", "user.json", "user.toml"):
        if (out / name).exists():
            raise ConfigError("already exists; refusing to overwrite", path=out / name)
    (out / "keys").mkdir(parents=True, exist_ok=True, mode=0o700)
    signing_key = keys.generate_signing_key()
    tls_key = keys.generate_tls_key()
    keys.write_private_file(out / "keys" / "signing.key", keys.signing_key_pem(signing_key))
    keys.write_private_file(out / "keys" / "tls.key", keys.tls_key_pem(tls_key))
    public = {
        "format": USER_FORMAT,
        "user_id": user_id,
        "signing_public_key": bytes(signing_key.verify_key).hex(),
        "tls_public_key": tls_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode(),
    }
    keys.write_public_file(out / "user.json", (json.dumps(public, indent=2) + "\n").encode())
    profile = {
        "user_id": user_id,
        "signing_key": "keys/signing.key",
        "tls_key": "keys/tls.key",
        "tls_certificate": "keys/tls.crt",
        "genesis": "genesis.json",
        "endpoint": "",
    }
    header = (
        "# mpc-ledger user profile. `endpoint` empty: your organisation's daemon as the\n"
        "# genesis lists it; set host:port to reach it another way.\n"
    )
    keys.write_public_file(out / "user.toml", (header + tomli_w.dumps(profile)).encode())
    return public


# -- jobs --------------------------------------------------------------------------------------

_BLOCKS_PER_CALL = 500


class JobError(Exception):
    """A job operation failed: the ledger refused a record, a daemon refused a request."""


@dataclasses.dataclass(frozen=True)
class TrailEntry:
    """One committed record of a job, in commit order."""

    height: int
    log_index: int
    time: str  # the block's time, UTC ISO 8601
    record_id: str  # hex
    kind: str
    author: str
    detail: str

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class JobSummary:
    """A job as its committed records describe it."""

    job_id: str  # hex
    name: str
    submitter: str
    state: str  # pending, approved, rejected, running, completed, aborted
    submitted: str  # the submission block's time
    height: int
    recipients: tuple[str, ...]
    reason: str = ""
    metrics: tuple[tuple[str, float], ...] = ()
    # From the committed records, so per epoch, not per step (`watch` has the live step):
    # epochs every data owner's digests are on the ledger for, the steps they make, the
    # job's total (0: not known yet, a PSI job's before its alignment) and its phase.
    epoch: int = 0
    epochs: int = 0
    step: int = 0
    steps: int = 0
    phase: str = ""

    @property
    def fraction(self) -> float | None:
        """Committed epochs' steps of all (0..1); None while the total is not known."""
        return min(1.0, self.step / self.steps) if self.steps else None

    def to_json(self) -> dict[str, Any]:
        document = dataclasses.asdict(self)
        document["recipients"] = list(self.recipients)
        document["metrics"] = dict(self.metrics)
        return document


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


def _block_time(time_ms: int) -> str:
    moment = dt.datetime.fromtimestamp(time_ms / 1000, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{time_ms % 1000:03d}Z"


def _detail(kind: str, payload: Any) -> str:
    if kind == "job_submission":
        spec = payload.spec
        return (
            f"{spec.name}: {spec.model.kind}, {spec.layout}"
            f"{f' ({spec.alignment})' if spec.layout == 'vertical' else ''}, {spec.epochs} epochs, "
            f"datasets {', '.join(d.dataset_id for d in spec.datasets)}, "
            f"recipients {', '.join(spec.recipients)}"
        )
    if kind == "job_decision":
        verdict = "approve" if payload.approve else "reject: " + "; ".join(payload.reasons)
        return f"{verdict} (policy {payload.policy_hash.hex()[:16]})"
    if kind == "job_started":
        fingerprint = payload.dataset_fingerprint.hex()[:16] or "-"
        return f"manifest {payload.manifest_hash.hex()[:16]}, data {fingerprint}"
    if kind == "job_alignment":
        return (
            f"{payload.method}: {payload.intersection_size} entities in common "
            f"({payload.train_rows} train, {payload.test_rows} test)"
        )
    if kind == "job_epoch_digests":
        return f"epoch {payload.epoch}, {len(payload.channels)} channel digests"
    if kind == "job_aborted":
        return str(payload.reason)
    if kind == "job_completed":
        metrics = ", ".join(f"{m.name} {m.value:.4f}" for m in payload.metrics)
        return f"model {payload.model_hash.hex()[:16]}; {metrics}"
    if kind == "participation_proof":
        return (
            f"rank {payload.rank}, {payload.rows_contributed} rows, "
            f"{payload.epochs_completed} epochs, {len(payload.final_channels)} channels"
        )
    return ""


def _dataset_owners(spec: JobSpec, datasets: Mapping[str, RegisteredDataset]) -> set[str]:
    """The members whose registered datasets ``spec`` uses: each registration's author,
    as the ledger's rules take it (`mpc_ledger.jobs.manifest`), not the member part of
    the id, which agrees only while the two id patterns do."""
    return {datasets[d.dataset_id].owner for d in spec.datasets if d.dataset_id in datasets}


def _ledger_progress(
    spec: JobSpec,
    state: str,
    trail: list[tuple[str, str, Any]],
    datasets: Mapping[str, RegisteredDataset],
    genesis: Genesis,
) -> dict[str, Any]:
    """`JobSummary`'s progress fields from a job's records (kind, author, payload) and
    the registered datasets by id, by the rules the daemons use (`mpc_ledger.jobs.progress`)."""
    owners = _dataset_owners(spec, datasets)
    alignments = [payload for kind, _, payload in trail if kind == "job_alignment"]
    if spec.alignment == "psi":
        train_rows = [alignments[0].train_rows] if alignments else []
    else:
        counts = [
            datasets[d.dataset_id].row_count if d.dataset_id in datasets else 0
            for d in spec.datasets
        ]
        train_rows = [split_rows(n, spec.test_fraction)[0] for n in counts]
    steps = total_steps(spec.layout, spec.batch_size, spec.epochs, train_rows)
    digests: dict[str, int] = {}
    for kind, author, payload in trail:
        if kind == "job_epoch_digests" and author in owners:
            digests[author] = max(digests.get(author, 0), payload.epoch)
    epoch = min((digests.get(o, 0) for o in owners), default=0)
    if state == "completed":
        epoch = spec.epochs
    dealer, _ = resolve_dealer(spec, genesis)
    started = {author for kind, author, _ in trail if kind == "job_started"}
    return {
        "epoch": epoch,
        "epochs": spec.epochs,
        "step": steps * epoch // spec.epochs if spec.epochs else 0,
        "steps": steps,
        "phase": phase_of(
            state,
            started_by_all=owners | ({dealer} if dealer else set()) <= started,
            psi_unaligned=spec.alignment == "psi" and not alignments,
        ),
    }


def _state_of(trail: list[tuple[str, str, Any]], owners: set[str]) -> tuple[str, str]:
    """(state, reason) of a job from its records (kind, author, payload), as the rules decide."""
    state, reason, approved = "pending", "", set()
    for kind, author, payload in trail:
        if kind == "job_decision":
            if not payload.approve:
                return "rejected", "; ".join(payload.reasons)
            approved.add(author)
            if owners <= approved and state == "pending":
                state = "approved"
        elif kind == "job_started":
            state = "running"
        elif kind == "job_aborted":
            return "aborted", str(payload.reason)
        elif kind == "job_completed":
            state = "completed"
    return state, reason


class _JobMethods(LedgerCalls):
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
                time=_block_time(header.time_ms),
                record_id=parsed.id.hex(),
                kind=parsed.kind,
                author=parsed.body.author,
                detail=_detail(parsed.kind, getattr(parsed.body, parsed.kind)),
            )
            for header, log_index, parsed in self._job_records(wanted)
        ]

    def jobs(self) -> list[JobSummary]:
        """Every job on the ledger, oldest first, with its state from its committed records."""
        submissions: dict[bytes, tuple[Any, Any]] = {}
        trails: dict[bytes, list[tuple[str, str, Any]]] = {}
        # a job's owners and total steps come from its datasets' registrations
        datasets: dict[str, RegisteredDataset] = {}
        for header, _, parsed in self._job_records(kinds=tuple(JOB_RULES)):
            payload = getattr(parsed.body, parsed.kind)
            if parsed.kind == "dataset_registration":
                datasets[payload.dataset_id] = RegisteredDataset.from_registration(
                    parsed.body.author, payload, parsed.id
                )
            elif parsed.kind == "job_submission":
                submissions[parsed.id] = (header, parsed)
                trails[parsed.id] = []
            elif payload.job_id in trails:
                trails[payload.job_id].append((parsed.kind, parsed.body.author, payload))
        summaries = []
        for job_id, (header, parsed) in submissions.items():
            spec = JobSpec.from_proto(parsed.body.job_submission.spec)
            state, reason = _state_of(trails[job_id], _dataset_owners(spec, datasets))
            metrics = tuple(
                (m.name, m.value)
                for kind, _, payload in trails[job_id]
                if kind == "job_completed"
                for m in payload.metrics
            )
            summaries.append(
                JobSummary(
                    job_id=job_id.hex(),
                    name=spec.name,
                    submitter=parsed.body.author,
                    state=state,
                    submitted=_block_time(header.time_ms),
                    height=header.height,
                    recipients=tuple(spec.recipients),
                    reason=reason,
                    metrics=metrics,
                    **_ledger_progress(spec, state, trails[job_id], datasets, self.genesis),
                )
            )
        return summaries

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


class UserClient(_JobMethods):
    """A user's connection to their own member's daemon (see the module docstring)."""

    def __init__(self, profile: UserProfile) -> None:
        self.profile = profile
        self.genesis = profile.genesis
        member = profile.member
        leaf = profile.tls_certificate.public_bytes(serialization.Encoding.PEM)
        credentials = grpc.ssl_channel_credentials(
            root_certificates=member.tls_ca_certificate_pem,
            private_key=profile.tls_key_pem,
            certificate_chain=leaf + member.tls_ca_certificate_pem,
        )
        self._tls_channel = mtls.secure_channel_to(member, credentials, endpoint=profile.endpoint)
        # the daemon runs users' calls on their own share; the header says whose
        self._channel = mtls.user_channel(self._tls_channel, profile.user_id)
        self.stub = ledger_service_pb2_grpc.LedgerStub(self._channel)
        self.jobs_stub = jobs_service_pb2_grpc.JobsStub(self._channel)
        self.signer = Signer(profile.signing_key, profile.genesis.chain_id)

    @classmethod
    def from_profile(cls, path: Path | str) -> UserClient:
        return cls(UserProfile.load(path))

    def close(self) -> None:
        self._tls_channel.close()

    def __enter__(self) -> UserClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def sign(self, **payload: Any) -> ledger_pb2.Record:
        """A record with ``payload`` (e.g. ``note=Note(text=...)``) signed by this user."""
        body = ledger_pb2.RecordBody(
            author=self.profile.user_id,
            nonce=secrets.randbits(63),
            created_ms=int(time.time() * 1000),
            **payload,
        )
        return make_record(self.signer, body)
