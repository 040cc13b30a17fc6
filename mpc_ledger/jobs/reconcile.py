"""What this member owes a job in its committed state: the runner's decision, without I/O.

Every daemon sees the same committed ledger state and acts on it alone. For
one job, `reconcile` says what this member does now, given that state and
what this process already did (it decided here; it has a run of the job, and
whether that run is still alive). The job runner (`mpc_ledger.jobs.runner`)
carries the action out; nothing here reads the ledger, a clock or a file.

* pending, this member owns one of its datasets and has not decided (neither
  on the ledger nor in this process): `Decide`.
* approved or running, this member is a participant and this process has no
  run of it: `StartRun`; ``resume`` when the ledger says this member already
  started the job (an earlier life of this daemon, whose worker is gone).
* aborted or rejected, this member's run of it still alive: `StopRun`, with
  the reason the ledger gives.
* anything else: None (nothing to do).
"""

from __future__ import annotations

import dataclasses

from mpc_ledger.jobs.lifecycle import ABORTED, APPROVED, PENDING, REJECTED, RUNNING
from mpc_ledger.jobs.state import JobState

__all__ = ["ENDED", "Action", "Decide", "StartRun", "StopRun", "reconcile"]

ENDED = (ABORTED, REJECTED)  # the states in which no record of this member's is wanted


@dataclasses.dataclass(frozen=True)
class Decide:
    """Evaluate this member's policy and write its ``job_decision``."""


@dataclasses.dataclass(frozen=True)
class StartRun:
    """Run this member's part of the job; ``resume``: it started in an earlier life."""

    resume: bool


@dataclasses.dataclass(frozen=True)
class StopRun:
    """Kill this member's worker for the job."""

    reason: str


Action = Decide | StartRun | StopRun


def reconcile(
    job: JobState, member_id: str, *, decided_here: bool, has_run: bool, run_alive: bool
) -> Action | None:
    """This member's action on ``job`` (see the module docstring); None: nothing to do."""
    if job.status == PENDING and member_id in job.owners:
        if not decided_here and all(owner != member_id for owner, _ in job.decisions):
            return Decide()
    elif job.status in (APPROVED, RUNNING) and member_id in job.participants:
        if not has_run:
            return StartRun(resume=member_id in job.started)
    elif job.status in ENDED and run_alive:
        return StopRun(f"the job was {job.status} by {job.ended_by}: {job.reason}")
    return None
