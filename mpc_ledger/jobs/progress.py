"""How far a job is: the ledger's view (total steps, phase) and this daemon's own worker's.

Pure functions of committed facts, shared by the daemon's `Progress` RPC
(`mpc_ledger.jobs.handlers`), the job runner's gauges (`mpc_ledger.jobs.job_run`)
and the user client's `jobs()` (`mpc_ledger.client`, which reads the same
facts from committed blocks), so the three never disagree on a total.

A job trains ``epochs`` x ceil(training rows / ``batch_size``) steps (the
worker's loop in `mpc_ledger.mpc.training.run_training`); its training rows
are the datasets' (the manifest's split: summed for a horizontal job, the
common count for a vertical one) or, for alignment "psi", the
intersection's, which no one knows until the private set intersection ran:
the first committed ``job_alignment`` says it (the rules make every data
owner's agree). Until then the total is 0 ("not known") and the phase says
why.

`ProgressRegistry` holds the other half, in memory only: what this daemon's
own worker last reported for each job it takes part in (`LocalProgress`),
written by the job runner from the worker's events and read by the
`Progress` RPC, which joins it with the ledger's view.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Sequence
from typing import Any

from mpc_ledger.jobs.lifecycle import APPROVED, PENDING, RUNNING
from mpc_ledger.jobs.spec import JobSpec, split_rows
from mpc_ledger.jobs.state import JobState

__all__ = [
    "PHASE_ALIGNING",
    "PHASE_STARTING",
    "PHASE_TRAINING",
    "PHASE_WAITING",
    "LocalProgress",
    "ProgressRegistry",
    "job_phase",
    "job_total_steps",
    "phase_of",
    "total_steps",
    "train_rows",
]

PHASE_WAITING = "waiting: the data owners decide"
PHASE_STARTING = "starting: every party checks its data"
PHASE_ALIGNING = "aligning: private set intersection"
PHASE_TRAINING = "training"


def total_steps(layout: str, batch_size: int, epochs: int, train_rows: Sequence[int]) -> int:
    """The job's training steps in all, for its parties' training rows (0: rows unknown)."""
    if not train_rows or batch_size <= 0:
        return 0
    rows = sum(train_rows) if layout == "horizontal" else max(train_rows)
    return math.ceil(rows / batch_size) * epochs


def phase_of(status: str, *, started_by_all: bool, psi_unaligned: bool) -> str:
    """The phase of a job in ``status`` ("" once it ended): the one place that orders them."""
    if status == PENDING:
        return PHASE_WAITING
    if status not in (APPROVED, RUNNING):
        return ""
    if not started_by_all:
        return PHASE_STARTING
    return PHASE_ALIGNING if psi_unaligned else PHASE_TRAINING


def train_rows(spec: JobSpec, row_counts: Sequence[int], psi_train_rows: int | None) -> list[int]:
    """Each data party's training rows, as `total_steps` takes them: of its dataset's
    ``row_counts`` (in the spec's order), or for alignment "psi" the first committed
    alignment's ``psi_train_rows`` (none yet: empty, the total is not known)."""
    if spec.alignment == "psi":
        return [psi_train_rows] if psi_train_rows is not None else []
    return [split_rows(rows, spec.test_fraction)[0] for rows in row_counts]


def _train_rows(job: JobState) -> list[int]:
    psi_train_rows = job.alignments[0].train_rows if job.alignments else None
    row_counts = [p.row_count for p in job.manifest.parties if p.role == "data"]
    return train_rows(job.spec, row_counts, psi_train_rows)


def job_total_steps(job: JobState) -> int:
    """`total_steps` of a job as the ledger holds it (0 for a PSI job before its alignment)."""
    spec = job.spec
    return total_steps(spec.layout, spec.batch_size, spec.epochs, _train_rows(job))


def job_phase(job: JobState) -> str:
    """`phase_of` a job as the ledger holds it."""
    return phase_of(
        job.status,
        started_by_all=all(p in job.started for p in job.participants),
        psi_unaligned=job.spec.alignment == "psi" and not job.alignments,
    )


@dataclasses.dataclass(frozen=True)
class LocalProgress:
    """This daemon's own worker's progress on one job, as its events say (the client's
    `mpc_ledger.client.JobProgress` is what `job watch` receives: this joined with the
    ledger's view by `mpc_ledger.jobs.api`)."""

    job_id: str  # hex
    status: str  # starting, running, finishing, completed, aborted
    epochs: int
    epoch: int = 0
    step: int = 0
    elapsed_s: float = 0.0
    loss: float | None = None  # only when the job's spec reveals it to the submitter
    detail: str = ""  # why it was aborted
    updated_s: float = 0.0  # time.monotonic() of the last change


class ProgressRegistry:
    """This daemon's view of the jobs it takes part in; thread-safe, never persisted."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, LocalProgress] = {}

    def begin(self, job_id: str, epochs: int) -> None:
        with self._lock:
            started = LocalProgress(job_id, "starting", epochs, updated_s=time.monotonic())
            self._jobs[job_id] = started

    def update(self, job_id: str, **changes: Any) -> None:
        with self._lock:
            current = self._jobs.get(job_id)
            if current is not None:
                changes["updated_s"] = time.monotonic()
                self._jobs[job_id] = dataclasses.replace(current, **changes)

    def get(self, job_id: str) -> LocalProgress | None:
        with self._lock:
            return self._jobs.get(job_id)

    def all(self) -> list[LocalProgress]:
        with self._lock:
            return list(self._jobs.values())
