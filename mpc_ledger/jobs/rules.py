"""The ledger's rules for dataset and job records: who may write what, and when.

Theory of operation
-------------------
Each record kind of jobs.proto is a `Rule` of the ledger's deterministic
state machine (`mpc_ledger.ledger.state`): the state machine checks the
author's signature and kind of author (member, user with a role); the
functions here check the payload against the state so far and apply it.
State lives in the `StateView` feature tables as immutable values
(`mpc_ledger.jobs.state`, whose names this module re-exports), so a block's
records are checked in order against an overlay exactly as they will be
applied.

A job's life is a small explicit state machine, kept as data in
`mpc_ledger.jobs.lifecycle.TRANSITIONS` (h11 style): (status, event) ->
next status; an event that is not in the table is refused with the job's
status as the reason. Every `_apply_*` takes a job's next status from the
table, never from a constant, so the table is the whole state machine.

Who may write what (participants = the owners of the job's datasets, ranks
0..n-1 in the spec's order, and the dealer member, rank n, when the tuple
provider is "dealer"; see `mpc_ledger.jobs.manifest.build_manifest`):

* ``dataset_registration``: a member with the data role, in its own
  namespace, once per dataset id; the hashes must agree with each other.
* ``job_submission``: a user with the scientist role; the spec must pass
  every check of `mpc_ledger.jobs.spec` against the registered datasets
  and the genesis; user recipients must be bound. Job id = record id.
* ``job_decision``: each data owner of the job, once, while it is pending.
* ``job_started``: each participant, once, with the job's manifest hash
  and (data owners) the registered fingerprint, once the job is approved;
  its ``seed_commitment`` (to the worker's job seed) is 32 bytes, or empty
  in records written before replays existed.
* ``job_alignment``: with alignment "psi", each data owner that started,
  once, while the job runs: the intersection's size (the same in every
  data owner's record), its train/test split and the transcript after the
  PSI; its test rows at least the genesis's ``min_test_rows``.
* ``job_epoch_digests``: a participant that started, once per epoch
  (1..epochs), while the job runs (with "psi", a data owner only after its
  ``job_alignment``); every channel has the author at one end.
* ``job_completed``: the participant with rank 0, while the job runs and
  once every participant has started.
* ``participation_proof``: each participant that started, once, while the
  job runs or after it completed.
* ``job_aborted``: any participant or the submitter, until the job ends.
* ``replay_verdict``: any member (the replayer, who signs), once per
  replayed rank, after the job completed: the rank is a party of the job
  and ``member`` holds it; verdict "correct" or "deviated", detail at most
  500 characters; the seed commitment is the one that party started with
  (a party that committed none cannot be replayed) and the fingerprint the
  one it started with; the channels checked are the party's outbound ones.
  It changes no status: a verdict is a fact about one party, not the job's.

The rules are data: `JOB_RULES` (a `Rulebook`) is what this package adds
to the ledger's own rules; `mpc_ledger.rulebook` merges the two into the
rulebook nodes and the verifier build their state with. Importing this
module registers nothing. `JOB_TRAIL_KINDS` and `JOB_STATUS_KINDS` name the
kinds that readers of job records (runner, service, client) filter by.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable, Sequence

from mpc_ledger.jobs.datasets import RegisteredDataset, registration_problems
from mpc_ledger.jobs.lifecycle import (
    TRANSITIONS,
)
from mpc_ledger.jobs.manifest import build_manifest
from mpc_ledger.jobs.spec import JobSpec, ledger_problems, spec_problems, split_rows
from mpc_ledger.jobs.state import (
    DATASETS_TABLE,
    EPOCHS_TABLE,
    JOBS_TABLE,
    REPLAY_DETAIL_MAX_CHARS,
    REPLAY_VERDICTS,
    Alignment,
    ChannelDigest,
    EpochDigests,
    JobState,
    Replay,
    epoch_digests,
    job_state,
    registered_dataset,
    registered_datasets,
)
from mpc_ledger.ledger.records import ParsedRecord, member_of_user
from mpc_ledger.ledger.state import Rule, Rulebook, StateView
from mpc_ledger.merkle import HASH_SIZE_BYTES
from mpc_ledger.proto.v1 import jobs_pb2

__all__ = [
    "JOB_RULES",
    "JOB_STATUS_KINDS",
    "JOB_TRAIL_KINDS",
]

# The table, under a name of this module: every rule looks it up here, so a test can
# watch each transition the rules take (tests/jobs/test_rules.py).
_TRANSITIONS = TRANSITIONS

REASON_MAX_CHARS = 2000
REASONS_MAX = 64
METRICS_MAX = 32
_METRIC_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


# -- datasets -------------------------------------------------------------------------------


def _check_registration(view: StateView, record: ParsedRecord) -> str | None:
    author = record.body.author
    member = view.genesis.member(author)
    if member is None or not member.has_role("data"):
        return f"member {author!r} lacks the data role; only data members register datasets"
    message = record.body.dataset_registration
    problems = registration_problems(message, author)
    if problems:
        return "; ".join(problems)
    if registered_dataset(view, message.dataset_id) is not None:
        return f"dataset {message.dataset_id!r} is already registered"
    return None


def _apply_registration(view: StateView, record: ParsedRecord) -> None:
    message = record.body.dataset_registration
    dataset = RegisteredDataset.from_registration(record.body.author, message, record.id)
    view.put(DATASETS_TABLE, dataset.dataset_id, dataset)


# -- submissions ----------------------------------------------------------------------------


def _check_submission(view: StateView, record: ParsedRecord) -> str | None:
    spec = JobSpec.from_proto(record.body.job_submission.spec)
    problems = spec_problems(spec)
    if not problems:
        registry = registered_datasets(view, spec.dataset_ids)
        problems = ledger_problems(spec, registry, view.genesis)
    for index, recipient in enumerate(spec.recipients):
        if member_of_user(recipient) is not None:
            user = view.user(recipient)
            if user is None or not user.active:
                problems.append(f"recipients[{index}]: user {recipient!r} has no active key")
    if problems:
        return "job spec: " + "; ".join(problems)
    return None


def _apply_submission(view: StateView, record: ParsedRecord) -> None:
    spec = JobSpec.from_proto(record.body.job_submission.spec)
    registry = registered_datasets(view, spec.dataset_ids)
    manifest = build_manifest(record.id, record.body.author, spec, registry, view.genesis)
    state = JobState(job_id=record.id, submitter=record.body.author, manifest=manifest)
    view.put(JOBS_TABLE, record.id.hex(), state)


# -- the job's life -------------------------------------------------------------------------


def _job_for(view: StateView, job_id: bytes) -> tuple[JobState | None, str | None]:
    if len(job_id) != HASH_SIZE_BYTES:
        return None, f"job_id must be {HASH_SIZE_BYTES} bytes (the submission's record id)"
    job = job_state(view, job_id)
    if job is None:
        return None, f"no job {job_id.hex()[:16]} on the ledger"
    return job, None


def _transition(job: JobState, event: str, kind: str) -> str | None:
    if (job.status, event) in _TRANSITIONS:
        return None
    return f"job {job.job_id.hex()[:16]} is {job.status}; a {kind} record is not allowed now"


def _participant(job: JobState, author: str, kind: str) -> str | None:
    if author not in job.participants:
        return (
            f"{author!r} is not a participant of job {job.job_id.hex()[:16]} "
            f"({', '.join(job.participants)}); it may not write {kind} records"
        )
    return None


def _reason_text(reason: str, field: str = "reason") -> str | None:
    if not reason.strip():
        return f"{field}: required"
    if len(reason) > REASON_MAX_CHARS:
        return f"{field}: longer than {REASON_MAX_CHARS} characters"
    return None


def _first(*problems: str | None) -> str | None:
    for problem in problems:
        if problem is not None:
            return problem
    return None


def _check_decision(view: StateView, record: ParsedRecord) -> str | None:
    message = record.body.job_decision
    author = record.body.author
    job, problem = _job_for(view, message.job_id)
    if job is None:
        return problem
    if author not in job.owners:
        return f"{author!r} owns no dataset of job {job.job_id.hex()[:16]}; it does not decide"
    problem = _transition(job, "approve" if message.approve else "reject", "job_decision")
    if problem is not None:
        return problem
    if any(owner == author for owner, _ in job.decisions):
        return f"{author!r} has already decided on job {job.job_id.hex()[:16]}"
    if len(message.policy_hash) != HASH_SIZE_BYTES:
        return f"policy_hash must be a {HASH_SIZE_BYTES}-byte SHA-256"
    if not message.approve and not message.reasons:
        return "a rejection gives at least one reason"
    if len(message.reasons) > REASONS_MAX:
        return f"at most {REASONS_MAX} reasons"
    for index, reason in enumerate(message.reasons):
        problem = _reason_text(reason, f"reasons[{index}]")
        if problem is not None:
            return problem
    return None


def _apply_decision(view: StateView, record: ParsedRecord) -> None:
    message = record.body.job_decision
    job = job_state(view, message.job_id)
    assert job is not None  # checked before
    decisions = (*job.decisions, (record.body.author, message.approve))
    if not message.approve:
        status = _TRANSITIONS[(job.status, "reject")]
        reason = f"{record.body.author}: " + "; ".join(message.reasons)
        job = dataclasses.replace(job, reason=reason, ended_by=record.body.author)
    elif {owner for owner, approve in decisions if approve} == set(job.owners):
        status = _TRANSITIONS[(job.status, "approve-last")]
    else:
        status = _TRANSITIONS[(job.status, "approve")]
    view.put(
        JOBS_TABLE, job.job_id.hex(), dataclasses.replace(job, decisions=decisions, status=status)
    )


def _fingerprint_problem(job: JobState, author: str, fingerprint: bytes) -> str | None:
    party = job.manifest.party(author)
    assert party is not None  # a participant
    if bytes(fingerprint) != party.dataset_fingerprint:
        if party.role == "dealer":
            return "the dealer holds no dataset; dataset_fingerprint must be empty"
        return (
            f"dataset_fingerprint differs from {party.dataset_id!r}'s registered fingerprint; "
            "the data changed: abort the job instead"
        )
    return None


def _check_started(view: StateView, record: ParsedRecord) -> str | None:
    message = record.body.job_started
    author = record.body.author
    job, problem = _job_for(view, message.job_id)
    if job is None:
        return problem
    problem = _first(
        _participant(job, author, "job_started"), _transition(job, "start", "job_started")
    )
    if problem is not None:
        return problem
    if author in job.started:
        return f"{author!r} has already started job {job.job_id.hex()[:16]}"
    if message.manifest_hash != job.manifest.manifest_hash:
        return "manifest_hash is not the hash of the job's manifest"
    if len(message.seed_commitment) not in (0, HASH_SIZE_BYTES):
        return (
            f"seed_commitment must be a {HASH_SIZE_BYTES}-byte SHA-256 "
            "(or empty: a worker without a committed seed)"
        )
    return _fingerprint_problem(job, author, message.dataset_fingerprint)


def _apply_started(view: StateView, record: ParsedRecord) -> None:
    message = record.body.job_started
    job = job_state(view, message.job_id)
    assert job is not None
    status = _TRANSITIONS[(job.status, "start")]
    author = record.body.author
    commitments = (*job.seed_commitments, (author, bytes(message.seed_commitment)))
    changed = dataclasses.replace(
        job, started=(*job.started, author), status=status, seed_commitments=commitments
    )
    view.put(JOBS_TABLE, job.job_id.hex(), changed)


def _channel_problem(
    job: JobState, author: str, channels: Sequence[jobs_pb2.ChannelDigest]
) -> str | None:
    party = job.manifest.party(author)
    assert party is not None
    size = len(job.manifest.parties)
    if not 1 <= len(channels) <= 2 * (size - 1):
        return f"give 1 to {2 * (size - 1)} channels (this job has {size} parties)"
    seen: set[tuple[int, int]] = set()
    for index, channel in enumerate(channels):
        field = f"channels[{index}]"
        pair = (channel.sender_rank, channel.receiver_rank)
        if max(pair) >= size or channel.sender_rank == channel.receiver_rank:
            return f"{field}: {pair[0]}->{pair[1]} is not a channel between two of {size} ranks"
        if party.rank not in pair:
            return f"{field}: {pair[0]}->{pair[1]} does not end at the author's rank {party.rank}"
        if pair in seen:
            return f"{field}: {pair[0]}->{pair[1]} is given twice"
        seen.add(pair)
        if len(channel.digest) != HASH_SIZE_BYTES:
            return f"{field}.digest: must be a {HASH_SIZE_BYTES}-byte SHA-256"
    return None


def _started_participant(
    view: StateView, job_id: bytes, author: str, event: str, kind: str
) -> tuple[JobState | None, str | None]:
    """The job, when ``author`` takes part, has started it, and ``event`` may happen now."""
    job, problem = _job_for(view, job_id)
    if job is None:
        return None, problem
    problem = _first(_participant(job, author, kind), _transition(job, event, kind))
    if problem is None and author not in job.started:
        problem = f"{author!r} has not started job {job.job_id.hex()[:16]}"
    return (None, problem) if problem is not None else (job, None)


def _check_alignment(view: StateView, record: ParsedRecord) -> str | None:
    message = record.body.job_alignment
    author = record.body.author
    job, problem = _started_participant(view, message.job_id, author, "align", "job_alignment")
    if job is None:
        return problem
    party = job.manifest.party(author)
    assert party is not None
    if job.spec.alignment != "psi":
        return f"job {job.job_id.hex()[:16]} aligns by {job.spec.alignment}; it has no PSI"
    if party.role != "data":
        return "only the job's data owners take part in its private set intersection"
    if message.method != "psi":
        return f"method: {message.method!r} is not the job's alignment 'psi'"
    if job.alignment_of(author) is not None:
        return f"{author!r} has already written its alignment for job {job.job_id.hex()[:16]}"
    size = message.intersection_size
    if not 1 <= size <= party.row_count:
        return f"intersection_size: must be 1 to {author!r}'s {party.row_count} rows"
    if job.alignments and job.alignments[0].intersection_size != size:
        first = job.alignments[0]
        return (
            f"intersection_size: {first.member_id!r} found {first.intersection_size} "
            f"entities in common, {author!r} {size}"
        )
    if (message.train_rows, message.test_rows) != split_rows(size, job.spec.test_fraction):
        train, test = split_rows(size, job.spec.test_fraction)
        return f"train_rows/test_rows: {size} rows split {train}/{test} for this job"
    least = view.genesis.mpc.min_test_rows
    if job.spec.test_fraction > 0 and message.test_rows < least:
        # The submission was checked against the registered rows; the intersection is known
        # only now, and the job's test metric would describe these rows.
        return (
            f"test_rows: the intersection leaves {message.test_rows} test rows; this "
            f"consortium's minimum is {least} (min_test_rows)"
        )
    return _channel_problem(job, author, message.channels)


def _apply_alignment(view: StateView, record: ParsedRecord) -> None:
    message = record.body.job_alignment
    job = job_state(view, message.job_id)
    assert job is not None
    alignment = Alignment(
        record.body.author,
        message.intersection_size,
        message.train_rows,
        message.test_rows,
        tuple(ChannelDigest.from_proto(c) for c in message.channels),
    )
    view.put(
        JOBS_TABLE,
        job.job_id.hex(),
        dataclasses.replace(job, alignments=(*job.alignments, alignment)),
    )


def _unaligned(job: JobState, members: Iterable[str]) -> list[str]:
    """The data owners among ``members`` that have yet to write a psi job's alignment."""
    if job.spec.alignment != "psi":
        return []
    return [m for m in members if m in job.owners and job.alignment_of(m) is None]


def _check_epoch_digests(view: StateView, record: ParsedRecord) -> str | None:
    message = record.body.job_epoch_digests
    author = record.body.author
    job, problem = _started_participant(
        view, message.job_id, author, "epoch-digests", "job_epoch_digests"
    )
    if job is None:
        return problem
    if not 1 <= message.epoch <= job.spec.epochs:
        return f"epoch must be 1 to {job.spec.epochs}"
    if _unaligned(job, [author]):
        return f"{author!r} has not written its job_alignment (the PSI comes first)"
    if epoch_digests(view, job.job_id, author, message.epoch) is not None:
        return f"{author!r} has already written epoch {message.epoch}'s digests"
    return _channel_problem(job, author, message.channels)


def _apply_epoch_digests(view: StateView, record: ParsedRecord) -> None:
    message = record.body.job_epoch_digests
    job = job_state(view, message.job_id)
    assert job is not None
    author = record.body.author
    digests = EpochDigests(
        job.job_id,
        author,
        message.epoch,
        tuple(ChannelDigest.from_proto(c) for c in message.channels),
    )
    view.put(EPOCHS_TABLE, f"{job.job_id.hex()}/{author}/{message.epoch}", digests)


def _check_aborted(view: StateView, record: ParsedRecord) -> str | None:
    message = record.body.job_aborted
    author = record.body.author
    job, problem = _job_for(view, message.job_id)
    if job is None:
        return problem
    if author not in job.participants and author != job.submitter:
        return (
            f"{author!r} is neither a participant nor the submitter of job "
            f"{job.job_id.hex()[:16]}; it may not abort it"
        )
    return _first(_transition(job, "abort", "job_aborted"), _reason_text(message.reason))


def _apply_aborted(view: StateView, record: ParsedRecord) -> None:
    message = record.body.job_aborted
    job = job_state(view, message.job_id)
    assert job is not None
    ended = dataclasses.replace(
        job,
        status=_TRANSITIONS[(job.status, "abort")],
        reason=message.reason,
        ended_by=record.body.author,
    )
    view.put(JOBS_TABLE, job.job_id.hex(), ended)


def _check_completed(view: StateView, record: ParsedRecord) -> str | None:
    message = record.body.job_completed
    author = record.body.author
    job, problem = _job_for(view, message.job_id)
    if job is None:
        return problem
    reporter = job.participants[0]
    if author != reporter:
        return f"only rank 0 ({reporter!r}) writes job_completed for job {job.job_id.hex()[:16]}"
    problem = _transition(job, "complete", "job_completed")
    if problem is not None:
        return problem
    missing = [p for p in job.participants if p not in job.started]
    if missing:
        return f"{', '.join(map(repr, missing))} never started job {job.job_id.hex()[:16]}"
    unaligned = _unaligned(job, job.owners)
    if unaligned:
        return f"{', '.join(map(repr, unaligned))} wrote no job_alignment"
    if len(message.model_hash) != HASH_SIZE_BYTES:
        return f"model_hash must be a {HASH_SIZE_BYTES}-byte SHA-256"
    if not 1 <= len(message.metrics) <= METRICS_MAX:
        return f"give 1 to {METRICS_MAX} test metrics"
    names: set[str] = set()
    for index, metric in enumerate(message.metrics):
        if not _METRIC_NAME.match(metric.name) or metric.name in names:
            return f"metrics[{index}].name: {metric.name!r} is not a new snake_case name"
        names.add(metric.name)
        if not math.isfinite(metric.value):
            return f"metrics[{index}].value: must be a finite number"
    return None


def _apply_completed(view: StateView, record: ParsedRecord) -> None:
    message = record.body.job_completed
    job = job_state(view, message.job_id)
    assert job is not None
    done = dataclasses.replace(
        job,
        status=_TRANSITIONS[(job.status, "complete")],
        ended_by=record.body.author,
        model_hash=bytes(message.model_hash),
        metrics=tuple((m.name, m.value) for m in message.metrics),
    )
    view.put(JOBS_TABLE, job.job_id.hex(), done)


def _check_proof(view: StateView, record: ParsedRecord) -> str | None:
    message = record.body.participation_proof
    author = record.body.author
    job, problem = _started_participant(
        view, message.job_id, author, "proof", "participation_proof"
    )
    if job is None:
        return problem
    if author in job.proofs:
        return f"{author!r} has already proved its participation in job {job.job_id.hex()[:16]}"
    party = job.manifest.party(author)
    assert party is not None
    if message.rank != party.rank:
        return f"rank: {author!r} is rank {party.rank} in this job, not {message.rank}"
    if message.manifest_hash != job.manifest.manifest_hash:
        return "manifest_hash is not the hash of the job's manifest"
    if _unaligned(job, [author]):
        return f"{author!r} has not written its job_alignment"
    if message.rows_contributed != job.rows_of(author):
        return f"rows_contributed: {author!r} puts {job.rows_of(author)} rows into this job"
    if message.epochs_completed > job.spec.epochs:
        return f"epochs_completed: the job has {job.spec.epochs} epochs"
    return _first(
        _fingerprint_problem(job, author, message.dataset_fingerprint),
        _channel_problem(job, author, message.final_channels),
    )


def _apply_proof(view: StateView, record: ParsedRecord) -> None:
    job = job_state(view, record.body.participation_proof.job_id)
    assert job is not None
    proofs = (*job.proofs, record.body.author)
    view.put(JOBS_TABLE, job.job_id.hex(), dataclasses.replace(job, proofs=proofs))


# -- replays -------------------------------------------------------------------------------


def _check_replay_verdict(view: StateView, record: ParsedRecord) -> str | None:
    message = record.body.replay_verdict
    author = record.body.author
    job, problem = _job_for(view, message.job_id)
    if job is None:
        return problem
    problem = _transition(job, "replay-verdict", "replay_verdict")
    if problem is not None:
        return problem
    short = job.job_id.hex()[:16]
    party = next((p for p in job.manifest.parties if p.rank == message.rank), None)
    if party is None:
        last = len(job.manifest.parties) - 1
        return f"rank: job {short} has ranks 0 to {last}, not {message.rank}"
    if message.member != party.member_id:
        return (
            f"member: rank {party.rank} of job {short} is {party.member_id!r}, "
            f"not {message.member!r}"
        )
    if message.verdict not in REPLAY_VERDICTS:
        return f"verdict: {message.verdict!r} is not one of {', '.join(REPLAY_VERDICTS)}"
    if len(message.detail) > REPLAY_DETAIL_MAX_CHARS:
        return f"detail: longer than {REPLAY_DETAIL_MAX_CHARS} characters"
    committed = job.seed_commitment_of(party.member_id)
    if not committed:
        return (
            f"{party.member_id!r} started job {short} without a seed commitment; "
            "its side cannot be replayed"
        )
    if message.seed_commitment != committed:
        return (
            f"seed_commitment differs from the one {party.member_id!r} committed in its "
            "job_started: the replay did not run with that party's seed"
        )
    if message.dataset_fingerprint != party.dataset_fingerprint:
        if party.role == "dealer":
            return "the dealer holds no dataset; dataset_fingerprint must be empty"
        return (
            f"dataset_fingerprint differs from {party.dataset_id!r}'s fingerprint that "
            f"{party.member_id!r} started job {short} with: the replay ran on other data"
        )
    if job.replay_by(author, party.rank) is not None:
        return (
            f"{author!r} has already written a replay verdict for rank {party.rank} "
            f"({party.member_id!r}) of job {short}"
        )
    return _checked_channels_problem(job, party.rank, message.channels_checked)


def _checked_channels_problem(
    job: JobState, rank: int, channels: Sequence[jobs_pb2.ChannelDigest]
) -> str | None:
    """The digests a replay matched are the party's outbound channels' (what it sent), at
    most one per other party and checkpoint (the PSI's end, each epoch's, the final)."""
    size = len(job.manifest.parties)
    most = (size - 1) * (job.spec.epochs + 2)
    if len(channels) > most:
        return f"channels_checked: at most {most} for this job ({size} parties)"
    for index, channel in enumerate(channels):
        field = f"channels_checked[{index}]"
        pair = (channel.sender_rank, channel.receiver_rank)
        if channel.sender_rank != rank:
            return f"{field}: {pair[0]}->{pair[1]} is not sent by the replayed rank {rank}"
        if channel.receiver_rank >= size or channel.receiver_rank == rank:
            return f"{field}: {pair[0]}->{pair[1]} is not a channel between two of {size} ranks"
        if len(channel.digest) != HASH_SIZE_BYTES:
            return f"{field}.digest: must be a {HASH_SIZE_BYTES}-byte SHA-256"
    return None


def _apply_replay_verdict(view: StateView, record: ParsedRecord) -> None:
    message = record.body.replay_verdict
    job = job_state(view, message.job_id)
    assert job is not None  # checked before
    replay = Replay(
        record.body.author, message.rank, message.member, message.verdict, message.detail
    )
    # The table keeps the status (a verdict moves no job); looked up all the same, so the
    # table stays the whole state machine.
    status = _TRANSITIONS[(job.status, "replay-verdict")]
    changed = dataclasses.replace(job, replays=(*job.replays, replay), status=status)
    view.put(JOBS_TABLE, job.job_id.hex(), changed)


# A dataset's registration, which jobs then name.
_DATASET_RULES: dict[str, Rule] = {
    "dataset_registration": Rule(
        authors="member", check=_check_registration, apply=_apply_registration
    ),
}
# One job's own records (its trail): its submission, and those naming it by job_id.
_JOB_TRAIL_RULES: dict[str, Rule] = {
    "job_submission": Rule(
        authors="user", user_role="scientist", check=_check_submission, apply=_apply_submission
    ),
    "job_decision": Rule(authors="member", check=_check_decision, apply=_apply_decision),
    "job_started": Rule(authors="member", check=_check_started, apply=_apply_started),
    "job_alignment": Rule(authors="member", check=_check_alignment, apply=_apply_alignment),
    "job_epoch_digests": Rule(
        authors="member", check=_check_epoch_digests, apply=_apply_epoch_digests
    ),
    "job_aborted": Rule(authors="any", check=_check_aborted, apply=_apply_aborted),
    "job_completed": Rule(authors="member", check=_check_completed, apply=_apply_completed),
    "participation_proof": Rule(authors="member", check=_check_proof, apply=_apply_proof),
    "replay_verdict": Rule(
        authors="member", check=_check_replay_verdict, apply=_apply_replay_verdict
    ),
}

# What this package adds to the ledger's rules (`mpc_ledger.rulebook` merges them).
JOB_RULES = Rulebook(_DATASET_RULES, _JOB_TRAIL_RULES)
JOB_TRAIL_KINDS = tuple(_JOB_TRAIL_RULES)
# The trail's kinds whose records can move a job to another status in `_TRANSITIONS`
# besides the submission, which makes the job (alignments, digests, proofs and
# replay verdicts never do).
JOB_STATUS_KINDS = ("job_decision", "job_started", "job_aborted", "job_completed")
