"""A job's committed records, read from blocks: its trail, and its summary (state, progress).

Pure: the caller hands in the parsed records (`mpc_ledger.client.jobs` reads
them from the daemon's blocks). A job's state is its trail folded through the
job state machine the ledger's rules use (`mpc_ledger.jobs.lifecycle`), its
progress comes from the functions the daemons use (`mpc_ledger.jobs.progress`),
so a user's `jobs()` and the daemons never disagree. A job's data owners are
its datasets' registrants, read from their registrations as the rules read them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from mpc_ledger.identity.genesis import Genesis
from mpc_ledger.jobs.datasets import RegisteredDataset
from mpc_ledger.jobs.lifecycle import fold_status
from mpc_ledger.jobs.progress import phase_of, total_steps, train_rows
from mpc_ledger.jobs.spec import JobSpec, resolve_dealer
from mpc_ledger.timestamps import block_time_text

__all__ = [
    "JobSummary",
    "TrailEntry",
    "job_state_of",
    "job_summaries",
    "ledger_progress",
    "trail_detail",
]

# A job's trail after its submission: (kind, author, payload), in commit order.
Trail = list[tuple[str, str, Any]]


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


def _program_detail(spec: JobSpec) -> str:
    """What the training program approximates, as a compliance officer reads it: the
    sigmoid of a bce job and SGD's gradient threshold (a spec from before the fields: the
    exact sigmoid, threshold 100)."""
    parts = []
    if spec.loss == "bce":
        parts.append(f"sigmoid {spec.sigmoid or 'exact'}")
    threshold = spec.effective_gradient_threshold
    parts.append(f"gradient threshold {threshold:g}" if threshold else "no gradient threshold")
    return "".join(f"{part}, " for part in parts)


def trail_detail(kind: str, payload: Any) -> str:
    if kind == "job_submission":
        spec = JobSpec.from_proto(payload.spec)
        return (
            f"{spec.name}: {spec.model.kind}, {spec.layout}"
            f"{f' ({spec.alignment})' if spec.layout == 'vertical' else ''}, {spec.epochs} epochs, "
            f"{_program_detail(spec)}"
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
    if kind == "replay_verdict":
        # the author (the replayer) is the entry's own column; this names the replayed party
        outcome = f"{payload.verdict} ({payload.detail})" if payload.detail else payload.verdict
        return (
            f"replay of {payload.member}: {outcome}; rank {payload.rank}, "
            f"{payload.frames_checked} frames, {len(payload.channels_checked)} channel digests"
        )
    return ""


def dataset_owners(spec: JobSpec, datasets: Mapping[str, RegisteredDataset]) -> set[str]:
    """The members whose registered datasets ``spec`` uses: each registration's author,
    as the ledger's rules take it (`mpc_ledger.jobs.manifest`), not the member part of
    the id, which agrees only while the two id patterns do."""
    return {datasets[d.dataset_id].owner for d in spec.datasets if d.dataset_id in datasets}


def ledger_progress(
    spec: JobSpec,
    state: str,
    trail: Trail,
    datasets: Mapping[str, RegisteredDataset],
    genesis: Genesis,
) -> dict[str, Any]:
    """`JobSummary`'s progress fields from a job's records (kind, author, payload) and
    the registered datasets by id, by the rules the daemons use (`mpc_ledger.jobs.progress`)."""
    owners = dataset_owners(spec, datasets)
    alignments = [payload for kind, _, payload in trail if kind == "job_alignment"]
    counts = [
        datasets[d.dataset_id].row_count if d.dataset_id in datasets else 0 for d in spec.datasets
    ]
    rows = train_rows(spec, counts, alignments[0].train_rows if alignments else None)
    steps = total_steps(spec.layout, spec.batch_size, spec.epochs, rows)
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


def _reason(kind: str, payload: Any) -> str:
    """Why a job ended rejected (the decision's reasons) or aborted (the abort's reason)."""
    if kind == "job_decision":
        return "; ".join(payload.reasons)
    return str(payload.reason)


def job_state_of(trail: Trail, owners: set[str]) -> tuple[str, str]:
    """(state, reason) of a job from its records, through the rules' state machine."""
    return fold_status(trail, owners, reason_of=_reason)


def job_summaries(records: Iterable[tuple[Any, Any]], genesis: Genesis) -> list[JobSummary]:
    """Every job among ``records`` (block header, parsed record: dataset registrations and
    job records, in commit order), oldest first, with its state and progress."""
    submissions: dict[bytes, tuple[Any, Any]] = {}
    trails: dict[bytes, Trail] = {}
    # a job's owners and total steps come from its datasets' registrations
    datasets: dict[str, RegisteredDataset] = {}
    for header, parsed in records:
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
        state, reason = job_state_of(trails[job_id], dataset_owners(spec, datasets))
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
                submitted=block_time_text(header.time_ms),
                height=header.height,
                recipients=tuple(spec.recipients),
                reason=reason,
                metrics=metrics,
                **ledger_progress(spec, state, trails[job_id], datasets, genesis),
            )
        )
    return summaries
