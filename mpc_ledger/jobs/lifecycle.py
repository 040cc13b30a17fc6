"""A job's life as data: its statuses and the table of what may happen in each (h11 style).

`TRANSITIONS` maps (status, event) to the next status; an event that is not
in the table may not happen now. It is the whole state machine: the ledger's
rules (`mpc_ledger.jobs.rules`) refuse a record whose event is not in it and
take the next status from it, and a reader of committed records (the user
client's `jobs()`) folds a job's trail through the same table
(`fold_status`), so no one keeps a second copy.

    pending --approve (last owner)--> approved --start--> running --complete--> completed
       |  \\--reject--> rejected          |                  |
       \\------------- abort ------------+------------------+--> aborted

Each trail record kind is one event (`KIND_EVENTS`), except a decision,
whose event depends on whether it approves and is the last owner's
(`decision_event`). Pure: no ledger state, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = [
    "ABORTED",
    "APPROVED",
    "COMPLETED",
    "KIND_EVENTS",
    "PENDING",
    "REJECTED",
    "RUNNING",
    "STATUSES",
    "TRANSITIONS",
    "decision_event",
    "fold_status",
    "next_status",
]

PENDING, APPROVED, REJECTED = "pending", "approved", "rejected"
RUNNING, COMPLETED, ABORTED = "running", "completed", "aborted"
STATUSES = (PENDING, APPROVED, REJECTED, RUNNING, COMPLETED, ABORTED)

# (status, event) -> next status. Anything else is refused.
TRANSITIONS: Mapping[tuple[str, str], str] = {
    (PENDING, "approve"): PENDING,
    (PENDING, "approve-last"): APPROVED,
    (PENDING, "reject"): REJECTED,
    (PENDING, "abort"): ABORTED,
    (APPROVED, "start"): RUNNING,
    (APPROVED, "abort"): ABORTED,
    (RUNNING, "start"): RUNNING,
    (RUNNING, "align"): RUNNING,
    (RUNNING, "epoch-digests"): RUNNING,
    (RUNNING, "complete"): COMPLETED,
    (RUNNING, "proof"): RUNNING,
    (RUNNING, "abort"): ABORTED,
    (COMPLETED, "proof"): COMPLETED,
    # A replay re-runs a party's side of a finished job from its records: only a
    # completed job has every checkpoint and final digest to compare with.
    (COMPLETED, "replay-verdict"): COMPLETED,
}

# The event of each trail record kind but the decision (`decision_event`); a submission
# makes the job (pending) and is no event.
KIND_EVENTS: Mapping[str, str] = {
    "job_started": "start",
    "job_alignment": "align",
    "job_epoch_digests": "epoch-digests",
    "job_completed": "complete",
    "participation_proof": "proof",
    "job_aborted": "abort",
    "replay_verdict": "replay-verdict",
}


def decision_event(approve: bool, *, every_owner_approved: bool) -> str:
    """A ``job_decision``'s event: a rejection, an approval, or the last owner's approval
    (``every_owner_approved``: counting this one)."""
    if not approve:
        return "reject"
    return "approve-last" if every_owner_approved else "approve"


def next_status(status: str, event: str) -> str | None:
    """The status after ``event`` in ``status``; None where the event may not happen."""
    return TRANSITIONS.get((status, event))


def fold_status(
    trail: Iterable[tuple[str, str, Any]],
    owners: set[str],
    *,
    reason_of: Callable[[str, Any], str],
) -> tuple[str, str]:
    """(status, reason) of a job from its committed trail records (kind, author, payload)
    after its submission, ``owners`` being its data owners. A record whose event the
    table does not allow changes nothing (the rules refuse such a record); the reason is
    ``reason_of(kind, payload)`` of the record that ended the job as rejected or aborted."""
    status, reason, approved = PENDING, "", set()
    for kind, author, payload in trail:
        if kind == "job_decision":
            if payload.approve:
                approved.add(author)
            event = decision_event(bool(payload.approve), every_owner_approved=owners <= approved)
        elif kind in KIND_EVENTS:
            event = KIND_EVENTS[kind]
        else:
            continue
        following = next_status(status, event)
        if following is None:
            continue
        status = following
        if status in (REJECTED, ABORTED):
            reason = reason_of(kind, payload)
    return status, reason
