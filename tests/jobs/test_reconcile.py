"""What the runner does for a job in each committed state (`jobs.reconcile`, no ledger)."""

from __future__ import annotations

import dataclasses

import pytest

from mpc_ledger.jobs.lifecycle import ABORTED, APPROVED, COMPLETED, PENDING, REJECTED, RUNNING
from mpc_ledger.jobs.reconcile import Decide, StartRun, StopRun, reconcile


@dataclasses.dataclass(frozen=True)
class Job:
    """The part of a `state.JobState` that `reconcile` reads."""

    status: str = PENDING
    owners: tuple[str, ...] = ("a", "b")
    participants: tuple[str, ...] = ("a", "b", "dealer")
    decisions: tuple[tuple[str, bool], ...] = ()
    started: tuple[str, ...] = ()
    ended_by: str = ""
    reason: str = ""


def act(job, member="a", *, decided_here=False, has_run=False, run_alive=False):
    return reconcile(job, member, decided_here=decided_here, has_run=has_run, run_alive=run_alive)


def test_an_owner_decides_a_pending_job_once():
    assert act(Job()) == Decide()
    assert act(Job(), decided_here=True) is None  # this process submitted its decision
    assert act(Job(decisions=(("a", True),))) is None  # the ledger has it (a restart)
    assert act(Job(decisions=(("b", False),))) == Decide()  # another owner's is not ours


def test_who_is_no_owner_has_nothing_to_decide():
    assert act(Job(), "dealer") is None
    assert act(Job(), "c") is None


@pytest.mark.parametrize("status", [APPROVED, RUNNING])
def test_a_participant_starts_its_run_once(status):
    assert act(Job(status=status)) == StartRun(resume=False)
    assert act(Job(status=status), "dealer") == StartRun(resume=False)
    assert act(Job(status=status), has_run=True, run_alive=True) is None
    assert act(Job(status=status), has_run=True, run_alive=False) is None  # it ran here
    assert act(Job(status=status), "c") is None  # no participant


def test_a_job_this_member_started_in_an_earlier_life_resumes_to_be_aborted():
    job = Job(status=RUNNING, started=("a", "b"))
    assert act(job) == StartRun(resume=True)
    assert act(job, "dealer") == StartRun(resume=False)


@pytest.mark.parametrize("status", [ABORTED, REJECTED])
def test_an_ended_job_stops_a_live_run_with_the_ledgers_reason(status):
    job = Job(status=status, ended_by="b", reason="b: its worker failed")
    assert act(job, has_run=True, run_alive=True) == StopRun(
        f"the job was {status} by b: b: its worker failed"
    )
    assert act(job, has_run=True, run_alive=False) is None
    assert act(job) is None


def test_a_completed_job_needs_nothing():
    assert act(Job(status=COMPLETED), has_run=True, run_alive=True) is None
