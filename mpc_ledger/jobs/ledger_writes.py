"""The records the job runner writes, and how it writes them (`JobLedger`).

The record builders are pure: domain values in (the job, this party's
manifest entry, a worker's transcript snapshot and output), protobuf out.
`JobLedger` is the I/O: it signs a record as this member, submits it and,
when asked, waits (bounded) until it is committed, in slices, so that a
record the job's end made void (the job aborted meanwhile) is given up on
at once instead of at the deadline. Nothing here raises on a refusal or a
timeout: the caller learns False and says why the job cannot go on.

The ledger gets only hashes, digests, counts, metrics and reasons; never a
value of the data or a local path.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from mpc_ledger.identity.signing import Signer
from mpc_ledger.jobs.approval import REASON_MAX_CHARS
from mpc_ledger.jobs.lifecycle import APPROVED, PENDING, RUNNING
from mpc_ledger.jobs.manifest import ManifestParty
from mpc_ledger.jobs.reconcile import ENDED
from mpc_ledger.jobs.state import REPLAY_DETAIL_MAX_CHARS, JobState, job_state
from mpc_ledger.ledger.records import make_record
from mpc_ledger.ledger.state import LedgerState
from mpc_ledger.mpc.snapshots import TranscriptSnapshot
from mpc_ledger.mpc.worker_events import Aligned
from mpc_ledger.proto.v1 import jobs_pb2, ledger_pb2

__all__ = [
    "JobLedger",
    "LedgerAccess",
    "channel_digests",
    "job_alignment",
    "job_completed",
    "job_epoch_digests",
    "job_started",
    "participation_proof",
    "replay_verdict",
]

log = logging.getLogger(__name__)
T = TypeVar("T")


class LedgerAccess(Protocol):
    """What the runner needs of `mpc_ledger.ledger.node.LedgerNode`."""

    def submit(self, raw: bytes, *, timeout_s: float = 10.0) -> Any: ...

    def wait_committed(self, record_id: bytes, timeout_s: float) -> tuple[int, int] | None: ...

    def query(self, read: Callable[[LedgerState], T], timeout_s: float = 10.0) -> T: ...


class JobLedger:
    """This member's reads of a job and writes of its records (see the module docstring)."""

    def __init__(
        self, ledger: LedgerAccess, signer: Signer, member_id: str, *, commit_timeout_s: float
    ) -> None:
        self.ledger = ledger
        self.member_id = member_id
        self._signer = signer
        self._commit_timeout_s = commit_timeout_s

    def job(self, job_id: bytes) -> JobState | None:
        return self.ledger.query(lambda state: job_state(state, job_id))

    def submit(self, kind: str, message: Any, *, wait: bool, job_id: bytes) -> bool:
        """Sign and submit one record; with ``wait``, True only once it is committed."""
        body = ledger_pb2.RecordBody(
            author=self.member_id,
            nonce=secrets.randbits(63),
            created_ms=int(time.time() * 1000),
            **{kind: message},
        )
        raw = make_record(self._signer, body).SerializeToString(deterministic=True)
        try:
            result = self.ledger.submit(raw, timeout_s=self._commit_timeout_s)
        except Exception as exc:  # the node stopping, a timeout
            log.warning("job %s: %s not submitted: %s", job_id.hex()[:16], kind, exc)
            return False
        if not result.accepted:
            log.warning("job %s: the ledger refused %s: %s", job_id.hex()[:16], kind, result.reason)
            return False
        if not wait:
            return True
        # In slices: a record the job's end made void is dropped, never committed.
        deadline = time.monotonic() + self._commit_timeout_s
        while time.monotonic() < deadline:
            slice_s = min(1.0, max(0.0, deadline - time.monotonic()))
            if self.ledger.wait_committed(result.record_id, slice_s) is not None:
                return True
            job = self.job(job_id)
            if job is None or job.status in ENDED:
                return False
        log.warning("job %s: %s not committed in time", job_id.hex()[:16], kind)
        return False

    def abort(self, job_id: bytes, reason: str) -> None:
        """Write job_aborted unless the job already ended (then there is nothing to say)."""
        job = self.job(job_id)
        if job is None or job.status not in (PENDING, APPROVED, RUNNING):
            return
        text = f"{self.member_id}: {reason}"[:REASON_MAX_CHARS]
        log.warning("job %s: aborting: %s", job_id.hex()[:16], text)
        self.submit(
            "job_aborted",
            jobs_pb2.JobAborted(job_id=job_id, reason=text),
            wait=False,
            job_id=job_id,
        )


# -- the records (pure) ---------------------------------------------------------------------


def channel_digests(transcript: TranscriptSnapshot | None) -> Sequence[jobs_pb2.ChannelDigest]:
    """A transcript snapshot's channels as the records carry them (none: no snapshot)."""
    if transcript is None:
        return []
    return [
        jobs_pb2.ChannelDigest(
            sender_rank=channel.sender,
            receiver_rank=channel.receiver,
            digest=bytes.fromhex(channel.digest),
            messages=channel.messages,
            size_bytes=channel.size_bytes,
            rounds=channel.rounds,
        )
        for channel in transcript.channels
    ]


def job_started(
    job: JobState, fingerprint: bytes, seed_commitment: bytes = b""
) -> jobs_pb2.JobStarted:
    """This member starts ``job`` with its data's ``fingerprint`` just recomputed (b"": none)
    and the commitment to its worker's job seed (`mpc_ledger.mpc.job_seed.seed_commitment`;
    b"": none, and this party's side can then never be replayed)."""
    return jobs_pb2.JobStarted(
        job_id=job.job_id,
        manifest_hash=job.manifest.manifest_hash,
        dataset_fingerprint=fingerprint,
        seed_commitment=seed_commitment,
    )


def job_alignment(job_id: bytes, event: Aligned) -> jobs_pb2.JobAlignment:
    """The worker's PSI outcome."""
    return jobs_pb2.JobAlignment(
        job_id=job_id,
        method=event.method,
        intersection_size=event.intersection_size,
        train_rows=event.train_rows,
        test_rows=event.test_rows,
        channels=channel_digests(event.transcript),
    )


def job_epoch_digests(
    job_id: bytes, epoch: int, channels: Sequence[jobs_pb2.ChannelDigest]
) -> jobs_pb2.JobEpochDigests:
    return jobs_pb2.JobEpochDigests(job_id=job_id, epoch=epoch, channels=channels)


def job_completed(job_id: bytes, output: Mapping[str, Any]) -> jobs_pb2.JobCompleted:
    """Rank 0's end of the job from the worker's output: the model hash the first recipient
    broadcast (none if it is not hex) and the test metrics (``test_*`` numbers)."""
    metrics = [
        jobs_pb2.Metric(name=name, value=float(value))
        for name, value in sorted(output.items())
        if name.startswith("test_") and isinstance(value, int | float)
    ]
    try:
        model_hash = bytes.fromhex(str(output.get("model_hash", "")))
    except ValueError:
        model_hash = b""
    return jobs_pb2.JobCompleted(job_id=job_id, model_hash=model_hash, metrics=metrics)


def participation_proof(
    job: JobState,
    party: ManifestParty,
    transcript: TranscriptSnapshot | None,
    rows_contributed: int,
) -> jobs_pb2.ParticipationProof:
    """This member's proof of its part: the final channel digests of its worker."""
    return jobs_pb2.ParticipationProof(
        job_id=job.job_id,
        manifest_hash=job.manifest.manifest_hash,
        dataset_fingerprint=party.dataset_fingerprint,
        rank=party.rank,
        final_channels=channel_digests(transcript),
        rows_contributed=rows_contributed,
        epochs_completed=job.spec.epochs,
    )


def replay_verdict(
    job: JobState,
    rank: int,
    verdict: str,
    detail: str,
    *,
    seed_commitment: bytes,
    frames_checked: int,
    channels_checked: Sequence[jobs_pb2.ChannelDigest],
) -> jobs_pb2.ReplayVerdict:
    """The outcome of replaying rank ``rank``'s side of ``job``: ``verdict`` "correct" or
    "deviated" (``detail``: the first channel and checkpoint that differ, clipped to what
    the rules take), the commitment of the seed the replay ran with, and the receivers'
    digests it matched. The member and its fingerprint are the manifest's for ``rank``
    (`KeyError` if the job has no such rank: the caller's mistake, not the ledger's)."""
    party = next((p for p in job.manifest.parties if p.rank == rank), None)
    if party is None:
        raise KeyError(f"job {job.job_id.hex()[:16]} has no rank {rank}")
    return jobs_pb2.ReplayVerdict(
        job_id=job.job_id,
        rank=rank,
        member=party.member_id,
        verdict=verdict,
        detail=detail[:REPLAY_DETAIL_MAX_CHARS],
        seed_commitment=seed_commitment,
        dataset_fingerprint=party.dataset_fingerprint,
        frames_checked=frames_checked,
        channels_checked=channels_checked,
    )
