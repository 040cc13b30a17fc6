"""What the job rules keep in the ledger's state: its tables, their values, and queries.

The rules (`mpc_ledger.jobs.rules`) are the only writers; everyone else (the
runner, the job service, the CLI, the verifier) reads through the queries
here. Values are immutable: each record that changes a job replaces its
`JobState` (a block's records are checked against an overlay exactly as they
will be applied).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from mpc_ledger.jobs.datasets import RegisteredDataset
from mpc_ledger.jobs.lifecycle import PENDING
from mpc_ledger.jobs.manifest import JobManifest
from mpc_ledger.jobs.spec import JobSpec
from mpc_ledger.ledger.state import StateView
from mpc_ledger.proto.v1 import jobs_pb2

__all__ = [
    "DATASETS_TABLE",
    "EPOCHS_TABLE",
    "JOBS_TABLE",
    "REPLAY_DETAIL_MAX_CHARS",
    "REPLAY_VERDICTS",
    "Alignment",
    "ChannelDigest",
    "EpochDigests",
    "JobState",
    "Replay",
    "epoch_digests",
    "job_state",
    "registered_dataset",
    "registered_datasets",
]

DATASETS_TABLE = "jobs/datasets"  # dataset id -> RegisteredDataset
JOBS_TABLE = "jobs/jobs"  # job id (hex) -> JobState
EPOCHS_TABLE = "jobs/epochs"  # "<job id hex>/<member>/<epoch>" -> EpochDigests

REPLAY_VERDICTS = ("correct", "deviated")  # a `Replay`'s verdict
REPLAY_DETAIL_MAX_CHARS = 500  # its detail: the first differing channel and checkpoint


@dataclasses.dataclass(frozen=True)
class ChannelDigest:
    sender_rank: int
    receiver_rank: int
    digest: bytes
    messages: int
    size_bytes: int
    rounds: int

    @classmethod
    def from_proto(cls, message: jobs_pb2.ChannelDigest) -> ChannelDigest:
        return cls(
            message.sender_rank,
            message.receiver_rank,
            bytes(message.digest),
            message.messages,
            message.size_bytes,
            message.rounds,
        )


@dataclasses.dataclass(frozen=True)
class EpochDigests:
    job_id: bytes
    member_id: str
    epoch: int
    channels: tuple[ChannelDigest, ...]


@dataclasses.dataclass(frozen=True)
class Alignment:
    """A data owner's `JobAlignment` record (alignment "psi")."""

    member_id: str
    intersection_size: int
    train_rows: int
    test_rows: int
    channels: tuple[ChannelDigest, ...]


@dataclasses.dataclass(frozen=True)
class Replay:
    """A ``replay_verdict`` record: ``replayer`` re-ran ``member``'s side (rank ``rank``)."""

    replayer: str
    rank: int
    member: str
    verdict: str  # "correct" or "deviated"
    detail: str


@dataclasses.dataclass(frozen=True)
class JobState:
    """A job as the ledger knows it (immutable; each record replaces it)."""

    job_id: bytes
    submitter: str
    manifest: JobManifest
    status: str = PENDING
    decisions: tuple[tuple[str, bool], ...] = ()  # (owner, approve), in commit order
    started: tuple[str, ...] = ()
    proofs: tuple[str, ...] = ()
    reason: str = ""  # why it was rejected or aborted
    ended_by: str = ""
    model_hash: bytes = b""
    metrics: tuple[tuple[str, float], ...] = ()
    alignments: tuple[Alignment, ...] = ()  # alignment "psi": in commit order
    # (member, commitment to its job seed) from each job_started; b"": started before
    # seeds were committed
    seed_commitments: tuple[tuple[str, bytes], ...] = ()
    replays: tuple[Replay, ...] = ()  # replay verdicts, in commit order

    @property
    def spec(self) -> JobSpec:
        return self.manifest.spec

    @property
    def owners(self) -> tuple[str, ...]:
        return tuple(p.member_id for p in self.manifest.parties if p.role == "data")

    @property
    def participants(self) -> tuple[str, ...]:
        return self.manifest.participants

    def alignment_of(self, member_id: str) -> Alignment | None:
        for alignment in self.alignments:
            if alignment.member_id == member_id:
                return alignment
        return None

    def seed_commitment_of(self, member_id: str) -> bytes:
        """The commitment ``member_id`` started with (b"": none, or not started)."""
        for member, commitment in self.seed_commitments:
            if member == member_id:
                return commitment
        return b""

    def replay_by(self, replayer: str, rank: int) -> Replay | None:
        for replay in self.replays:
            if (replay.replayer, replay.rank) == (replayer, rank):
                return replay
        return None

    def rows_of(self, member_id: str) -> int:
        """The rows ``member_id`` puts into the job: its dataset's, or (psi) the intersection's
        once it is known (0 before, and for the dealer)."""
        party = self.manifest.party(member_id)
        if party is None or party.role != "data":
            return 0
        if self.spec.alignment != "psi":
            return party.row_count
        alignment = self.alignment_of(member_id)
        return alignment.intersection_size if alignment is not None else 0


# -- queries (for the runner, the CLI and the verifier) -------------------------------------


def registered_dataset(view: StateView, dataset_id: str) -> RegisteredDataset | None:
    value = view.get(DATASETS_TABLE, dataset_id)
    return value if isinstance(value, RegisteredDataset) else None


def registered_datasets(view: StateView, ids: Iterable[str]) -> dict[str, RegisteredDataset]:
    """The registry for ``ids`` (those registered), as the spec checks take it."""
    found = {dataset_id: registered_dataset(view, dataset_id) for dataset_id in ids}
    return {k: v for k, v in found.items() if v is not None}


def job_state(view: StateView, job_id: bytes) -> JobState | None:
    value = view.get(JOBS_TABLE, job_id.hex())
    return value if isinstance(value, JobState) else None


def epoch_digests(
    view: StateView, job_id: bytes, member_id: str, epoch: int
) -> EpochDigests | None:
    value = view.get(EPOCHS_TABLE, f"{job_id.hex()}/{member_id}/{epoch}")
    return value if isinstance(value, EpochDigests) else None
