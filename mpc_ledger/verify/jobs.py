"""Job checks of the export verifier (DESIGN.md "Jobs").

Theory of operation
-------------------
The chain verifier (:mod:`mpc_ledger.verify.chain`) replays every record
through the ledger's rules and hands each record that passed them, in log
order, to :meth:`JobAudit.observe` together with where it sits
(:class:`RecordContext`) and the ledger state as of that record. After the
last block it calls :meth:`JobAudit.finish`, which checks each job it saw
and fills the report: one :class:`~mpc_ledger.verify.report.Section` per job
(who submitted, datasets and fingerprints, the test metrics, approvals and
policy hashes, timeline, the transcript table, the result) and a ``jobs`` failure for each
broken rule, naming the job, the block height and the record.

The audit restates the job rules from the records themselves rather than
trusting the state machine's bookkeeping, so it is a second, independent
reading of the same facts:

1. every data owner of the job's datasets approved it (``job_decision``
   with approve and a 32-byte policy hash) before the job's first
   ``job_started`` in log order;
2. each data owner's ``job_started`` fingerprint equals the fingerprint of
   its dataset's ``dataset_registration``;
3. transcript digests agree pairwise for every epoch present: rank A's
   record of channel A->B (what A sent) equals rank B's record of the same
   channel (what B received), digest, message count and bytes, as
   :func:`mpc_ledger.mpc.transcript.compare_transcripts` compares them; a
   channel one end does not list counts as empty at that end;
4. a completed job has a ``participation_proof`` by every participant, and
   the proofs' final channel digests agree pairwise the same way;
5. a completed job's model hash is recorded (32 bytes), and is the same in
   every record that carries it;
6. a job aligned by private set intersection (alignment "psi"): every data
   owner of a completed job wrote a ``job_alignment``, they all state the
   same intersection size, and their transcripts at the PSI's end agree
   pairwise as in check 3.

Records the rules refused are reported by the chain verifier
(``record-permission``) and never reach :meth:`observe`; a chain verifier
that also wants them audited as job events (a start without every approval
shows up only there) hands them to :meth:`refused`.

Partial exports: a job submitted before the export's first height cannot be
audited; it is named as a limitation, not a failure. Records of kinds that
are neither the ledger's own nor job kinds are counted and named as not
audited. Which kinds are which comes from the rules themselves
(`mpc_ledger.ledger.state.LEDGER_RULES`, `mpc_ledger.jobs.rules.JOB_RULES`),
the two halves of the rulebook the chain verifier replays records with, so
a kind gains an audit here only by being added to one of them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mpc_ledger.identity.genesis import Genesis
from mpc_ledger.jobs.rules import JOB_RULES
from mpc_ledger.ledger.records import ParsedRecord
from mpc_ledger.ledger.state import LEDGER_RULES, LedgerState
from mpc_ledger.verify.report import Report, Section, Table

__all__ = [
    "JOB_RECORD_KINDS",
    "LEDGER_RECORD_KINDS",
    "JobAudit",
    "RecordContext",
]

# Record kinds that are the ledger's own business, not a job's.
LEDGER_RECORD_KINDS = frozenset(LEDGER_RULES)
# Record kinds this audit reads (protos/mpc_ledger/v1/jobs.proto).
JOB_RECORD_KINDS = frozenset(JOB_RULES)
_HASH_BYTES = 32
_EMPTY_DIGEST = hashlib.sha256().digest()  # a channel one end never used


@dataclass(frozen=True, slots=True)
class RecordContext:
    """Where a record was committed."""

    height: int
    log_index: int
    block_time_ms: int


@dataclass(frozen=True, slots=True)
class _At:
    """A record's place and id (what a failure names)."""

    height: int
    log_index: int
    time_ms: int
    record_id: bytes

    def text(self) -> str:
        return f"height {self.height}, record #{self.log_index} ({self.record_id.hex()[:16]})"


@dataclass(frozen=True, slots=True)
class _Channel:
    sender: int
    receiver: int
    digest: bytes
    messages: int
    size_bytes: int
    rounds: int


_Channels = dict[tuple[int, int], _Channel]


@dataclass
class _Party:
    rank: int
    member: str
    role: str
    dataset_id: str


@dataclass
class _Job:
    job_id: bytes
    submitter: str
    submitted: _At
    name: str
    dataset_ids: tuple[str, ...]
    parties: list[_Party]
    epochs: int
    alignment: str = "row-order"
    aligned: dict[str, tuple[_Channels, int, _At]] = dataclasses.field(default_factory=dict)
    decisions: list[tuple[str, bool, bytes, _At]] = dataclasses.field(default_factory=list)
    starts: list[tuple[str, bytes, _At, bool]] = dataclasses.field(default_factory=list)
    digests: dict[int, dict[str, tuple[_Channels, _At]]] = dataclasses.field(default_factory=dict)
    proofs: dict[str, tuple[_Channels, _At]] = dataclasses.field(default_factory=dict)
    completed: list[tuple[bytes, tuple[tuple[str, float], ...], _At]] = dataclasses.field(
        default_factory=list
    )
    aborted: tuple[str, str, _At] | None = None
    status: str = "pending"
    timeline: list[list[str]] = dataclasses.field(default_factory=list)
    failures: list[tuple[str, _At | None]] = dataclasses.field(default_factory=list)

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


def _time_text(time_ms: int) -> str:
    try:
        moment = dt.datetime.fromtimestamp(time_ms / 1000, dt.UTC)
    except (OverflowError, ValueError, OSError):
        return f"{time_ms} ms since 1970"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _channels(messages: Iterable[Any]) -> _Channels:
    """``ChannelDigest`` messages by (sender rank, receiver rank)."""
    out: _Channels = {}
    for m in messages:
        channel = _Channel(
            int(m.sender_rank),
            int(m.receiver_rank),
            bytes(m.digest),
            int(m.messages),
            int(m.size_bytes),
            int(m.rounds),
        )
        out[(channel.sender, channel.receiver)] = channel
    return out


def _end(channels: _Channels, link: tuple[int, int]) -> _Channel:
    return channels.get(link) or _Channel(link[0], link[1], _EMPTY_DIGEST, 0, 0, 0)


def _differences(sent: _Channel, got: _Channel) -> list[str]:
    problems = []
    if sent.digest != got.digest:
        problems.append(f"digest {sent.digest.hex()[:16]}… sent, {got.digest.hex()[:16]}… received")
    if sent.messages != got.messages:
        problems.append(f"{sent.messages} messages sent, {got.messages} received")
    if sent.size_bytes != got.size_bytes:
        problems.append(f"{sent.size_bytes} bytes sent, {got.size_bytes} received")
    return problems


class JobAudit:
    """Collects an export's job records and checks each job at the end (module docstring)."""

    def __init__(self, genesis: Genesis, *, job_id: str | None = None, partial: bool = False):
        self.genesis = genesis
        self.job_id = job_id
        self.partial = partial
        self._not_audited: Counter[str] = Counter()
        self._datasets: dict[str, tuple[str, bytes, _At]] = {}  # id -> owner, fingerprint, at
        self._jobs: dict[bytes, _Job] = {}
        self._before_range: dict[bytes, _At] = {}  # jobs submitted before a partial export
        self._first_height: int | None = None

    # -- collecting ------------------------------------------------------------------------

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
            self._not_audited[kind] += 1
            return
        place = _At(at.height, at.log_index, at.block_time_ms, record.id)
        body = record.body
        if kind == "dataset_registration":
            message = body.dataset_registration
            self._datasets[message.dataset_id] = (body.author, bytes(message.fingerprint), place)
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
            place = _At(at.height, at.log_index, at.block_time_ms, record.id)
            self._job_event(record, place, refused=True)

    def _submitted(self, record: ParsedRecord, place: _At) -> None:
        if not self._wanted(record.id):
            return
        spec = record.body.job_submission.spec
        dataset_ids = tuple(d.dataset_id for d in spec.datasets)
        parties = [
            _Party(rank, self._datasets[d][0] if d in self._datasets else "?", "data", d)
            for rank, d in enumerate(dataset_ids)
        ]
        if spec.tuple_provider == "dealer":
            dealer = spec.dealer or next(
                (m.id for m in self.genesis.members if m.has_role("dealer")), "?"
            )
            parties.append(_Party(len(parties), dealer, "dealer", ""))
        job = _Job(
            job_id=record.id,
            submitter=record.body.author,
            submitted=place,
            name=spec.name,
            dataset_ids=dataset_ids,
            parties=parties,
            epochs=int(spec.epochs),
            alignment=spec.alignment or "row-order",
        )
        self._jobs[record.id] = job
        self._event(job, place, "submitted", record.body.author, f"spec {spec.name!r}")

    def _job_event(self, record: ParsedRecord, place: _At, *, refused: bool) -> None:
        body = record.body
        kind = record.kind
        message = getattr(body, kind)
        job_id = bytes(message.job_id)
        if not self._wanted(job_id):
            return
        job = self._jobs.get(job_id)
        if job is None:
            if self.partial and len(job_id) == _HASH_BYTES:
                self._before_range.setdefault(job_id, place)
            return
        author = body.author
        if kind == "job_decision":
            approve = bool(message.approve)
            policy = bytes(message.policy_hash)
            job.decisions.append((author, approve, policy, place))
            verdict = "approved" if approve else "rejected: " + "; ".join(message.reasons)
            self._event(job, place, "decision", author, f"{verdict} (policy {policy.hex()[:16]})")
            if not approve:
                job.status = "rejected"
        elif kind == "job_started":
            self._started(job, author, bytes(message.dataset_fingerprint), place, refused)
        elif kind == "job_alignment":
            size = int(message.intersection_size)
            job.aligned[author] = (_channels(message.channels), size, place)
            self._event(job, place, "aligned", author, f"{message.method}: {size} in common")
        elif kind == "job_epoch_digests":
            epoch = int(message.epoch)
            job.digests.setdefault(epoch, {})[author] = (_channels(message.channels), place)
            self._event(job, place, "epoch digests", author, f"epoch {epoch}")
        elif kind == "job_completed":
            metrics = tuple((m.name, float(m.value)) for m in message.metrics)
            job.completed.append((bytes(message.model_hash), metrics, place))
            job.status = "completed"
            self._event(job, place, "completed", author, f"model {message.model_hash.hex()[:16]}")
        elif kind == "participation_proof":
            job.proofs[author] = (_channels(message.final_channels), place)
            self._event(
                job, place, "participation proof", author, f"{message.epochs_completed} epochs"
            )
        elif kind == "job_aborted":
            job.aborted = (author, message.reason, place)
            job.status = "aborted"
            self._event(job, place, "aborted", author, message.reason)

    def _started(
        self, job: _Job, author: str, fingerprint: bytes, place: _At, refused: bool
    ) -> None:
        first = not job.starts
        job.starts.append((author, fingerprint, place, refused))
        note = " (refused by the ledger's rules)" if refused else ""
        self._event(
            job,
            place,
            "started",
            author,
            (f"fingerprint {fingerprint.hex()[:16]}" if fingerprint else "no dataset") + note,
        )
        if job.status == "pending":
            job.status = "running"
        if first:  # check 1: every owner approved before the first start
            approved = {
                owner
                for owner, approve, policy, _ in job.decisions
                if approve and len(policy) == _HASH_BYTES
            }
            owners = [p.member for p in job.parties if p.role == "data"]
            missing = [owner for owner in dict.fromkeys(owners) if owner not in approved]
            if missing:
                job.failures.append(
                    (
                        f"job {job.short} started ({author}) without the approval of "
                        f"{', '.join(map(repr, missing))}, owner of its data",
                        place,
                    )
                )
        party = next((p for p in job.parties if p.member == author), None)
        if party is not None and party.role == "data":  # check 2: the registered fingerprint
            registered = self._datasets.get(party.dataset_id)
            if registered is not None and registered[1] != fingerprint:
                job.failures.append(
                    (
                        f"job {job.short}: {author} started with dataset fingerprint "
                        f"{fingerprint.hex()[:16]}…, but {party.dataset_id!r} is registered "
                        f"with {registered[1].hex()[:16]}… ({registered[2].text()})",
                        place,
                    )
                )

    @staticmethod
    def _event(job: _Job, place: _At, what: str, author: str, detail: str) -> None:
        job.timeline.append(
            [
                str(place.height),
                _time_text(place.time_ms),
                str(place.log_index),
                what,
                author,
                detail,
            ]
        )

    # -- checking --------------------------------------------------------------------------

    def _compare(
        self,
        job: _Job,
        label: str,
        ends: Mapping[str, tuple[_Channels, _At]],
        rows: list[list[str]],
    ) -> None:
        """Checks 3 and 4: A's record of A->B equals B's record of A->B, for every link."""
        ranks = {p.member: p.rank for p in job.parties}
        by_rank = {ranks[m]: (channels, at) for m, (channels, at) in ends.items() if m in ranks}
        links = sorted({link for channels, _ in by_rank.values() for link in channels})
        for link in links:
            sender, receiver = link
            name = f"{sender}->{receiver} ({job.member_of(sender)} -> {job.member_of(receiver)})"
            if sender not in by_rank or receiver not in by_rank:
                reported = by_rank.get(sender) or by_rank.get(receiver)
                assert reported is not None
                one = _end(reported[0], link)
                rows.append([label, name, "one end only", str(one.messages), str(one.size_bytes)])
                continue
            (sent_channels, sent_at), (got_channels, got_at) = by_rank[sender], by_rank[receiver]
            sent, got = _end(sent_channels, link), _end(got_channels, link)
            problems = _differences(sent, got)
            messages = (
                str(sent.messages)
                if sent.messages == got.messages
                else (f"{sent.messages}/{got.messages}")
            )
            size = (
                str(sent.size_bytes)
                if sent.size_bytes == got.size_bytes
                else (f"{sent.size_bytes}/{got.size_bytes}")
            )
            rows.append([label, name, "no" if problems else "yes", messages, size])
            if problems:
                later = max(sent_at, got_at, key=lambda a: a.log_index)
                job.failures.append(
                    (
                        f"job {job.short} {label}: link {name} disagrees: {'; '.join(problems)} "
                        f"(sender's record at {sent_at.text()}, receiver's at {got_at.text()})",
                        later,
                    )
                )

    def _check(self, job: _Job) -> Section:
        transcript: list[list[str]] = []
        self._check_alignment(job, transcript)
        for epoch in sorted(job.digests):
            self._compare(job, f"epoch {epoch}", job.digests[epoch], transcript)
        if job.completed:
            model_hash, _, done = job.completed[0]
            for member in job.participants:  # check 4
                if member not in job.proofs:
                    job.failures.append(
                        (
                            f"job {job.short} completed but {member!r} wrote no "
                            "participation_proof",
                            done,
                        )
                    )
            self._compare(job, "final", job.proofs, transcript)
            if len(model_hash) != _HASH_BYTES:  # check 5
                job.failures.append(
                    (f"job {job.short} completed without a 32-byte model hash", done)
                )
            for other, _, at in job.completed[1:]:
                if other != model_hash:
                    job.failures.append(
                        (
                            f"job {job.short}: model hash {other.hex()[:16]}… differs from "
                            f"{model_hash.hex()[:16]}… ({done.text()})",
                            at,
                        )
                    )
        return self._section(job, transcript)

    def _check_alignment(self, job: _Job, transcript: list[list[str]]) -> None:
        """Check 6 (alignment "psi")."""
        if not job.aligned:
            if job.alignment == "psi" and job.completed:
                job.failures.append(
                    (f"job {job.short} completed without any job_alignment", job.completed[0][2])
                )
            return
        sizes = {member: size for member, (_, size, _) in job.aligned.items()}
        first_member, first_size = next(iter(sizes.items()))
        for member, (_, size, at) in job.aligned.items():
            if size != first_size:
                job.failures.append(
                    (
                        f"job {job.short}: {member} states {size} ids in common, "
                        f"{first_member} {first_size}",
                        at,
                    )
                )
        if job.completed:
            owners = [p.member for p in job.parties if p.role == "data"]
            for member in owners:
                if member not in job.aligned:
                    job.failures.append(
                        (
                            f"job {job.short} completed but {member!r} wrote no job_alignment",
                            job.completed[0][2],
                        )
                    )
        ends = {member: (channels, at) for member, (channels, _, at) in job.aligned.items()}
        self._compare(job, "psi", ends, transcript)

    def _section(self, job: _Job, transcript: list[list[str]]) -> Section:
        fields = [
            ("job id", job.job_id.hex()),
            ("name", job.name),
            ("submitter", job.submitter),
            ("submitted", f"{job.submitted.text()}, {_time_text(job.submitted.time_ms)}"),
            ("status", job.status),
        ]
        for dataset_id in job.dataset_ids:
            registered = self._datasets.get(dataset_id)
            fields.append(
                (
                    f"dataset {dataset_id}",
                    "not registered in this export"
                    if registered is None
                    else f"owner {registered[0]}, fingerprint {registered[1].hex()} "
                    f"(registered at height {registered[2].height})",
                )
            )
        fields.append(("participants", ", ".join(job.participants)))
        if job.aligned:
            size = next(iter(job.aligned.values()))[1]
            fields.append(("alignment", f"{job.alignment}: {size} ids in common"))
        else:
            fields.append(("alignment", job.alignment))
        metrics: list[list[str]] = []
        if job.completed:
            model_hash, completed_metrics, _ = job.completed[0]
            fields.append(("model hash", model_hash.hex()))
            metrics = [[name, f"{value:.6g}"] for name, value in completed_metrics]
        if job.aborted is not None:
            author, reason, _ = job.aborted
            fields.append(("aborted", f"by {author}: {reason}"))
        fields.append(("proofs", f"{len(job.proofs)} of {len(job.parties)} participants"))
        fields.append(("result", "FAILED" if job.failures else "ok"))
        approvals = [
            [owner, "approve" if approve else "reject", policy.hex(), str(at.height)]
            for owner, approve, policy, at in job.decisions
        ]
        # the test metrics as the job_completed record states them (each already clipped to
        # its range by the workers); an aborted job has none
        tables = [Table("Test metrics", ["metric", "value"], metrics)] if metrics else []
        return Section(
            title=f"Job {job.short} ({job.name})",
            fields=fields,
            tables=[
                *tables,
                Table("Approvals", ["owner", "decision", "policy hash", "height"], approvals),
                Table(
                    "Timeline",
                    ["height", "time", "record #", "event", "author", "detail"],
                    job.timeline,
                ),
                Table(
                    "Transcripts",
                    ["epoch", "link", "agree", "messages", "bytes"],
                    transcript,
                ),
            ],
        )

    def finish(self, report: Report) -> None:
        """Check every job seen; add its section and its failures to ``report``."""
        if self._not_audited:
            kinds = ", ".join(f"{kind} ({n})" for kind, n in sorted(self._not_audited.items()))
            report.limitations.append(
                f"records of kinds this verifier has no job checks for were checked for "
                f"signature and permission only: {kinds}"
            )
        for job_id, first in self._before_range.items():
            report.limitations.append(
                f"job {job_id.hex()[:16]} was submitted before this export's first height; "
                f"its records from height {first.height} on were not audited as a job"
            )
        audited = 0
        for job in self._jobs.values():
            report.jobs.append(self._check(job))
            audited += 1
            for message, at in job.failures:
                if at is None:
                    report.fail("jobs", message)
                else:
                    report.fail(
                        "jobs",
                        message,
                        height=at.height,
                        log_index=at.log_index,
                        record_id=at.record_id,
                    )
        if audited:
            report.ran("jobs")
            report.chain["jobs"] = f"{audited} audited"
        elif self._not_audited:
            report.chain["jobs"] = "not audited by this version"
        elif self._before_range:
            report.chain["jobs"] = "none audited (submitted before this export)"
        else:
            report.chain["jobs"] = "none in this export"
        if self.job_id is not None and not audited and not self._before_range:
            report.fail("jobs", f"job {self.job_id!r} is not in this export")
