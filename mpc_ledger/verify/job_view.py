"""Collecting: an export's job records, read in log order into one `JobView` per job.

The chain verifier hands every record that passed the ledger's rules to
`JobCollector.observe` (and a refused ``job_started`` to `refused`); the
collector only files what each record says, where it sits (`At`) and the
facts a later check needs as of that record (`Start`: the decisions seen
before it, the registration of the starter's dataset at that moment). It
judges nothing: the checks (`mpc_ledger.verify.job_checks`) read the views
afterwards, and the rendering (`mpc_ledger.verify.job_section`) shows them.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from mpc_ledger.identity.genesis import Genesis
from mpc_ledger.jobs.rules import JOB_RULES
from mpc_ledger.ledger.records import ParsedRecord
from mpc_ledger.ledger.state import LEDGER_RULES, LedgerState
from mpc_ledger.timestamps import block_time_text

__all__ = [
    "EMPTY_DIGEST",
    "HASH_BYTES",
    "JOB_RECORD_KINDS",
    "LEDGER_RECORD_KINDS",
    "At",
    "Channel",
    "Channels",
    "JobCollector",
    "JobView",
    "Party",
    "RecordContext",
    "Registration",
    "Start",
    "Verdict",
    "channel_table",
]

# Record kinds that are the ledger's own business, not a job's.
LEDGER_RECORD_KINDS = frozenset(LEDGER_RULES)
# Record kinds this audit reads (protos/mpc_ledger/v1/jobs.proto).
JOB_RECORD_KINDS = frozenset(JOB_RULES)
HASH_BYTES = 32
EMPTY_DIGEST = hashlib.sha256().digest()  # a channel one end never used


@dataclass(frozen=True, slots=True)
class RecordContext:
    """Where a record was committed."""

    height: int
    log_index: int
    block_time_ms: int


@dataclass(frozen=True, slots=True)
class At:
    """A record's place and id (what a failure names)."""

    height: int
    log_index: int
    time_ms: int
    record_id: bytes

    def text(self) -> str:
        return f"height {self.height}, record #{self.log_index} ({self.record_id.hex()[:16]})"


@dataclass(frozen=True, slots=True)
class Channel:
    sender: int
    receiver: int
    digest: bytes
    messages: int
    size_bytes: int
    rounds: int


Channels = dict[tuple[int, int], Channel]
# A dataset_registration: owner, fingerprint, where.
Registration = tuple[str, bytes, At]


@dataclass
class Party:
    rank: int
    member: str
    role: str
    dataset_id: str


@dataclass(frozen=True, slots=True)
class Start:
    """A ``job_started``, with what the checks need as of that record."""

    member: str
    fingerprint: bytes
    at: At
    refused: bool
    decisions_before: int  # how many of the job's decisions came before it
    registered: Registration | None  # the starter's dataset's registration then (data parties)
    seed_commitment: bytes = b""  # to the worker's job seed (b"": none, an older record)


@dataclass(frozen=True, slots=True)
class Verdict:
    """A ``replay_verdict``: ``replayer`` re-ran rank ``rank``'s side of the job."""

    replayer: str
    rank: int
    member: str
    verdict: str  # "correct" or "deviated"
    detail: str
    seed_commitment: bytes
    fingerprint: bytes
    frames_checked: int
    channels_checked: tuple[Channel, ...]  # the receivers' digests it matched, as given
    at: At


@dataclass
class JobView:
    job_id: bytes
    submitter: str
    submitted: At
    name: str
    dataset_ids: tuple[str, ...]
    parties: list[Party]
    epochs: int
    alignment: str = "row-order"
    aligned: dict[str, tuple[Channels, int, At]] = dataclasses.field(default_factory=dict)
    decisions: list[tuple[str, bool, bytes, At]] = dataclasses.field(default_factory=list)
    starts: list[Start] = dataclasses.field(default_factory=list)
    digests: dict[int, dict[str, tuple[Channels, At]]] = dataclasses.field(default_factory=dict)
    proofs: dict[str, tuple[Channels, At]] = dataclasses.field(default_factory=dict)
    completed: list[tuple[bytes, tuple[tuple[str, float], ...], At]] = dataclasses.field(
        default_factory=list
    )
    aborted: tuple[str, str, At] | None = None
    verdicts: list[Verdict] = dataclasses.field(default_factory=list)  # in log order
    status: str = "pending"
    timeline: list[list[str]] = dataclasses.field(default_factory=list)

    @property
    def short(self) -> str:
        return self.job_id.hex()[:16]

    @property
    def participants(self) -> list[str]:
        return [p.member for p in sorted(self.parties, key=lambda p: p.rank)]

    def member_of(self, rank: int) -> str:
        for party in self.parties:
            if party.rank == rank:
                return party.member
        return f"rank {rank}"


def _channel(m: Any) -> Channel:
    return Channel(
        int(m.sender_rank),
        int(m.receiver_rank),
        bytes(m.digest),
        int(m.messages),
        int(m.size_bytes),
        int(m.rounds),
    )


def channel_table(messages: Iterable[Any]) -> Channels:
    """``ChannelDigest`` messages by (sender rank, receiver rank)."""
    out: Channels = {}
    for m in messages:
        channel = _channel(m)
        out[(channel.sender, channel.receiver)] = channel
    return out


class JobCollector:
    """Files an export's job records into views (module docstring); judges nothing."""

    def __init__(self, genesis: Genesis, *, job_id: str | None = None, partial: bool = False):
        self.genesis = genesis
        self.job_id = job_id
        self.partial = partial
        self.not_audited: Counter[str] = Counter()
        self.datasets: dict[str, Registration] = {}
        self.jobs: dict[bytes, JobView] = {}
        self.before_range: dict[bytes, At] = {}  # jobs submitted before a partial export
        self._first_height: int | None = None

    def _wanted(self, job_id: bytes) -> bool:
        if self.job_id is None:
            return True
        wanted = self.job_id.strip().lower()
        return bool(wanted) and job_id.hex().startswith(wanted)

    def observe(self, record: ParsedRecord, at: RecordContext, state: LedgerState) -> None:
        """One record that passed the ledger's rules (called in log order)."""
        if self._first_height is None:
            self._first_height = at.height
        kind = record.kind
        if kind in LEDGER_RECORD_KINDS:
            return
        if kind not in JOB_RECORD_KINDS:
            self.not_audited[kind] += 1
            return
        place = At(at.height, at.log_index, at.block_time_ms, record.id)
        body = record.body
        if kind == "dataset_registration":
            message = body.dataset_registration
            self.datasets[message.dataset_id] = (body.author, bytes(message.fingerprint), place)
        elif kind == "job_submission":
            self._submitted(record, place)
        else:
            self._job_event(record, place, refused=False)

    def refused(self, record: ParsedRecord, at: RecordContext) -> None:
        """A job record the rules refused (already a ``record-permission`` failure).

        It did not change the ledger, but a block that carries it was
        certified: a ``job_started`` here still counts as the job starting,
        so a start without every owner's approval is a ``jobs`` failure too.
        """
        if self._first_height is None:
            self._first_height = at.height
        if record.kind == "job_started":
            place = At(at.height, at.log_index, at.block_time_ms, record.id)
            self._job_event(record, place, refused=True)

    def _submitted(self, record: ParsedRecord, place: At) -> None:
        if not self._wanted(record.id):
            return
        spec = record.body.job_submission.spec
        dataset_ids = tuple(d.dataset_id for d in spec.datasets)
        parties = [
            Party(rank, self.datasets[d][0] if d in self.datasets else "?", "data", d)
            for rank, d in enumerate(dataset_ids)
        ]
        if spec.tuple_provider == "dealer":
            dealer = spec.dealer or next(
                (m.id for m in self.genesis.members if m.has_role("dealer")), "?"
            )
            parties.append(Party(len(parties), dealer, "dealer", ""))
        job = JobView(
            job_id=record.id,
            submitter=record.body.author,
            submitted=place,
            name=spec.name,
            dataset_ids=dataset_ids,
            parties=parties,
            epochs=int(spec.epochs),
            alignment=spec.alignment or "row-order",
        )
        self.jobs[record.id] = job
        _event(job, place, "submitted", record.body.author, f"spec {spec.name!r}")

    def _job_event(self, record: ParsedRecord, place: At, *, refused: bool) -> None:
        body = record.body
        kind = record.kind
        message = getattr(body, kind)
        job_id = bytes(message.job_id)
        if not self._wanted(job_id):
            return
        job = self.jobs.get(job_id)
        if job is None:
            if self.partial and len(job_id) == HASH_BYTES:
                self.before_range.setdefault(job_id, place)
            return
        author = body.author
        if kind == "job_decision":
            approve = bool(message.approve)
            policy = bytes(message.policy_hash)
            job.decisions.append((author, approve, policy, place))
            verdict = "approved" if approve else "rejected: " + "; ".join(message.reasons)
            _event(job, place, "decision", author, f"{verdict} (policy {policy.hex()[:16]})")
            if not approve:
                job.status = "rejected"
        elif kind == "job_started":
            self._started(job, author, message, place, refused)
        elif kind == "job_alignment":
            size = int(message.intersection_size)
            job.aligned[author] = (channel_table(message.channels), size, place)
            _event(job, place, "aligned", author, f"{message.method}: {size} in common")
        elif kind == "job_epoch_digests":
            epoch = int(message.epoch)
            job.digests.setdefault(epoch, {})[author] = (channel_table(message.channels), place)
            _event(job, place, "epoch digests", author, f"epoch {epoch}")
        elif kind == "job_completed":
            metrics = tuple((m.name, float(m.value)) for m in message.metrics)
            job.completed.append((bytes(message.model_hash), metrics, place))
            job.status = "completed"
            _event(job, place, "completed", author, f"model {message.model_hash.hex()[:16]}")
        elif kind == "participation_proof":
            job.proofs[author] = (channel_table(message.final_channels), place)
            _event(job, place, "participation proof", author, f"{message.epochs_completed} epochs")
        elif kind == "job_aborted":
            job.aborted = (author, message.reason, place)
            job.status = "aborted"
            _event(job, place, "aborted", author, message.reason)
        elif kind == "replay_verdict":
            self._verdict(job, author, message, place)

    def _verdict(self, job: JobView, author: str, message: Any, place: At) -> None:
        verdict = Verdict(
            replayer=author,
            rank=int(message.rank),
            member=str(message.member),
            verdict=str(message.verdict),
            detail=str(message.detail),
            seed_commitment=bytes(message.seed_commitment),
            fingerprint=bytes(message.dataset_fingerprint),
            frames_checked=int(message.frames_checked),
            channels_checked=tuple(_channel(m) for m in message.channels_checked),
            at=place,
        )
        job.verdicts.append(verdict)
        _event(job, place, "replay verdict", author, f"{verdict.member}: {verdict.verdict}")

    def _started(self, job: JobView, author: str, message: Any, place: At, refused: bool) -> None:
        fingerprint = bytes(message.dataset_fingerprint)
        party = next((p for p in job.parties if p.member == author), None)
        registered = None
        if party is not None and party.role == "data":
            registered = self.datasets.get(party.dataset_id)
        job.starts.append(
            Start(
                author,
                fingerprint,
                place,
                refused,
                len(job.decisions),
                registered,
                bytes(message.seed_commitment),
            )
        )
        note = " (refused by the ledger's rules)" if refused else ""
        _event(
            job,
            place,
            "started",
            author,
            (f"fingerprint {fingerprint.hex()[:16]}" if fingerprint else "no dataset") + note,
        )
        if job.status == "pending":
            job.status = "running"


def _event(job: JobView, place: At, what: str, author: str, detail: str) -> None:
    job.timeline.append(
        [
            str(place.height),
            block_time_text(place.time_ms, milliseconds=False),
            str(place.log_index),
            what,
            author,
            detail,
        ]
    )
