"""The job state machine as data (`mpc_ledger.jobs.lifecycle`), folded over a trail as a
reader of committed blocks does it."""

from __future__ import annotations

from types import SimpleNamespace

from mpc_ledger.jobs import lifecycle


def decision(approve, reasons=()):
    return SimpleNamespace(approve=approve, reasons=list(reasons))


def reason_of(kind, payload):
    return "; ".join(payload.reasons) if kind == "job_decision" else payload.reason


def fold(*trail, owners=("a", "b")):
    return lifecycle.fold_status(list(trail), set(owners), reason_of=reason_of)


def test_a_job_runs_through_the_table():
    approved = [("job_decision", "a", decision(True)), ("job_decision", "b", decision(True))]
    assert fold(approved[0]) == (lifecycle.PENDING, "")
    assert fold(*approved) == (lifecycle.APPROVED, "")
    started = [*approved, ("job_started", "a", None), ("job_started", "b", None)]
    assert fold(*started) == (lifecycle.RUNNING, "")
    done = [*started, ("job_completed", "a", None), ("participation_proof", "b", None)]
    assert fold(*done) == (lifecycle.COMPLETED, "")


def test_the_ending_record_gives_the_reason():
    rejected = ("job_decision", "b", decision(False, ("too few rows", "mlp")))
    assert fold(rejected) == (lifecycle.REJECTED, "too few rows; mlp")
    aborted = ("job_aborted", "a", SimpleNamespace(reason="data changed"))
    assert fold(aborted) == (lifecycle.ABORTED, "data changed")


def test_a_record_the_table_does_not_allow_changes_nothing():
    assert fold(("job_started", "a", None)) == (lifecycle.PENDING, "")
    rejected = ("job_decision", "b", decision(False, ("no",)))
    late = ("job_decision", "a", decision(True))
    assert fold(rejected, late) == (lifecycle.REJECTED, "no")
